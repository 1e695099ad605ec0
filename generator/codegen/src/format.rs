//! Generated TypeScript, formatted the way a reader expects: dprint's TypeScript formatter
//! (the engine behind `dprint fmt` and Deno's `deno fmt`) lays out the code, then comments too
//! long for a line are wrapped, which no code formatter does ([`wrap_comments`], which generated
//! Rust gets after prettyplease too).
//!
//! Emitters write TypeScript without caring for line length; [`typescript`] is applied to every
//! generated `.ts` and `.tsx` file in one place ([`crate::output::GeneratedFile::new`]). A test
//! holds every generated file to [`MAX_LINE`] columns, long string literals excepted.

use std::path::Path;

use dprint_plugin_typescript::configuration::{Configuration, ConfigurationBuilder, QuoteStyle};

/// The longest line a generated file may have, unless a string literal alone makes it longer.
pub const MAX_LINE: usize = 120;

/// The width code and comments are laid out to.
const WIDTH: u32 = 100;

fn configuration() -> Configuration {
    ConfigurationBuilder::new()
        .line_width(WIDTH)
        .indent_width(2)
        .quote_style(QuoteStyle::PreferDouble)
        .build()
}

/// `source`, the TypeScript of the file at `path` (`.ts` or `.tsx`), formatted. TypeScript the
/// formatter cannot parse is returned as it is: that is an emitter's bug, which `tsc` and the
/// line-length test report with the file, rather than a panic in the middle of a run.
pub fn typescript(path: &str, source: &str) -> String {
    let formatted =
        dprint_plugin_typescript::format_text(dprint_plugin_typescript::FormatTextOptions {
            path: Path::new(path),
            extension: None,
            text: source.to_owned(),
            config: &configuration(),
            external_formatter: None,
        });
    let code = match formatted {
        Ok(Some(text)) => text,
        Ok(None) | Err(_) => source.to_owned(),
    };
    wrap_comments(&code)
}

/// Wraps comment lines longer than the width: a one-line `/** … */` becomes a block, and a
/// `* …`, `// …`, `/// …` or `//! …` line continues on lines with the same prefix. Code is
/// left alone. Rust's formatter leaves comments as they are too, so generated Rust comes here.
pub fn wrap_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 16);
    // Whether the line is inside a `/* … */` block, where a `* ` line is a comment (elsewhere
    // it may be code: an operand continued on the next line).
    let mut in_block = false;
    for line in code.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let body = line.trim_start();
        let width = WIDTH as usize;
        let block_line = in_block;
        if body.starts_with("/*") {
            in_block = true;
        }
        if body.contains("*/") {
            in_block = false;
        }
        let prefixes: &[&str] = if block_line {
            &["* "]
        } else {
            &["/// ", "//! ", "// "]
        };
        if line.len() <= width {
            out.push_str(line);
        } else if let Some(text) = body
            .strip_prefix("/** ")
            .and_then(|b| b.strip_suffix(" */"))
        {
            out.push_str(indent);
            out.push_str("/**\n");
            push_wrapped(&mut out, &format!("{indent} * "), text, width);
            out.push_str(indent);
            out.push_str(" */");
        } else if let Some((prefix, text)) = prefixes
            .iter()
            .find_map(|prefix| Some((*prefix, body.strip_prefix(*prefix)?)))
        {
            push_wrapped(&mut out, &format!("{indent}{prefix}"), text, width);
            out.pop();
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !code.ends_with('\n') {
        out.pop();
    }
    out
}

/// `text` as lines of at most `width` columns, each starting with `prefix` and ending with a
/// newline; a word longer than the width stays whole on a line of its own.
fn push_wrapped(out: &mut String, prefix: &str, text: &str, width: usize) {
    let mut line = String::from(prefix);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if line.len() > prefix.len() && line.len() + 1 + word.len() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(prefix);
        }
        if line.len() > prefix.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Whether `line` keeps to [`MAX_LINE`] columns, counting each string literal (`"…"`, `'…'`,
/// `` `…` ``) as two columns: a long literal may run past the limit, nothing else may.
pub fn fits(line: &str) -> bool {
    if line.chars().count() <= MAX_LINE {
        return true;
    }
    let mut width = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for ch in line.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if ch == '\\' {
                    escaped = true;
                } else if ch == q {
                    quote = None;
                    width += 2;
                }
            }
            None if matches!(ch, '"' | '\'' | '`') => quote = Some(ch),
            None => width += 1,
        }
    }
    width <= MAX_LINE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_laid_out_and_long_comments_wrapped() {
        let long = "word ".repeat(40);
        let source = format!(
            "/** {long} */\nexport const values = {{\"a\":1,\"b\":[1,2,3],\"c\":{{\"d\":\"e\"}}, \"f\": \"{}\", \"g\": 2}};\n",
            "x".repeat(90)
        );
        let formatted = typescript("a.ts", &source);
        let code = format!("const a = b\n  * {};\n", "c".repeat(120));
        assert_eq!(
            wrap_comments(&code),
            code,
            "a `* ` line outside a comment is code"
        );
        let block = format!("/**\n * {long}\n */\n");
        assert!(
            wrap_comments(&block).lines().count() > 3,
            "a long line in a block wraps"
        );
        let rust = wrap_comments(&format!("    /// {long}\n    fn f() {{}}\n"));
        assert!(rust.lines().all(|l| l.len() <= WIDTH as usize), "{rust}");
        assert!(
            rust.lines()
                .filter(|l| l.starts_with("    /// word"))
                .count()
                > 1,
            "{rust}"
        );
        assert!(formatted.starts_with("/**\n * word"), "{formatted}");
        assert!(formatted.lines().all(fits), "{formatted}");
        assert!(formatted.contains("\"a\": 1"), "{formatted}");
        assert_eq!(
            typescript("a.ts", &formatted),
            formatted,
            "formatting is stable"
        );
    }

    #[test]
    fn what_does_not_parse_comes_back_as_it_was() {
        assert_eq!(
            typescript("a.ts", "export const = ;\n"),
            "export const = ;\n"
        );
    }

    #[test]
    fn only_string_literals_may_run_past_the_limit() {
        assert!(fits(&format!("const a = \"{}\";", "x".repeat(200))));
        assert!(!fits(&format!("const {} = 1;", "a".repeat(130))));
        assert!(fits(&format!("const a = 'it\\'s {}';", "y".repeat(150))));
    }
}
