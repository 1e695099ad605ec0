// graphile-worker, for `cargo xtask bench jobs`: a worker process with `concurrency` jobs at once
// on DATABASE_URL, its tasks `noop` (nothing) and `stamp` (records when it started, for the
// enqueue-to-start latency). With MIGRATE_ONLY=1 it installs its schema and exits.
import { Logger, run, runMigrations } from "graphile-worker";

const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error("set DATABASE_URL");
if (process.env.MIGRATE_ONLY === "1") {
  await runMigrations({ connectionString });
  process.exit(0);
}
const runner = await run({
  connectionString,
  concurrency: Number(process.env.CONCURRENCY ?? 10),
  noHandleSignals: false,
  pollInterval: 2000,
  // Errors only: a line per job would measure the terminal, not the queue.
  logger: new Logger(() => (level, message) => {
    if (level === "error") console.error(message);
  }),
  taskList: {
    noop: async () => {},
    stamp: async (_payload, helpers) => {
      await helpers.query(
        "INSERT INTO bench_latency (created_at, started_at) VALUES ($1, clock_timestamp())",
        [helpers.job.created_at],
      );
    },
  },
});
console.log("working");
await runner.promise;
