// Parses each AsyncAPI document named on the command line with @asyncapi/parser (the
// reference parser) and prints its diagnostics; exits 1 if any is an error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const path of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
  for (const d of diagnostics) {
    // Severity 0 is an error; 1 a warning, 2 information, 3 a hint.
    console.log(`${path}: ${["error", "warning", "info", "hint"][d.severity]} ${d.code}: ${d.message} at /${d.path.join("/")}`);
    failed ||= d.severity === 0;
  }
  if (!document) {
    console.log(`${path}: no document`);
    failed = true;
  } else {
    console.log(`${path}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.messages().length} messages`);
  }
}
process.exit(failed ? 1 : 0);
