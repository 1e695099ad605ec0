//! Names: case conversion, plurals, and the reserved words of every language we emit.

use heck::{ToPascalCase, ToSnakeCase};

/// Rust keywords (strict, reserved and edition-2024): usable as raw identifiers (`r#type`).
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; fields named so get a trailing `_` in Rust.
const RUST_UNRAWABLE: &[&str] = &["crate", "self", "Self", "super", "_"];

/// Type names the generated code or the standard prelude already uses.
const RESERVED_TYPE_NAMES: &[&str] = &[
    "Self",
    "Option",
    "Result",
    "Some",
    "None",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Box",
    "Value",
    "Error",
    "Problem",
    "Db",
    "Row",
    "EntityChange",
    "EventName",
    "EventData",
];

/// The Rust field name for a JSON member, without `r#` (the emitter adds it for keywords).
pub(crate) fn rust_field(name: &str) -> String {
    let snake = name.to_snake_case();
    let snake = if snake.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{snake}")
    } else {
        snake
    };
    if RUST_UNRAWABLE.contains(&snake.as_str()) {
        format!("{snake}_")
    } else {
        snake
    }
}

/// Whether a Rust identifier needs the raw prefix.
pub(crate) fn is_rust_keyword(ident: &str) -> bool {
    RUST_KEYWORDS.contains(&ident)
}

/// Whether a PascalCase type name clashes with names generated code relies on.
pub(crate) fn is_reserved_type_name(name: &str) -> bool {
    RESERVED_TYPE_NAMES.contains(&name)
}

/// The indefinite article of a type name, by its first letter: `an` before a vowel
/// (`an Activity`), `a` otherwise.
pub(crate) fn article(name: &str) -> &'static str {
    if name.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// A type name with its indefinite article: `a Company`, `an Activity`.
pub(crate) fn a(name: &str) -> String {
    format!("{} {name}", article(name))
}

/// `text` with its first letter upper-case, to start a sentence: `An Activity`.
pub(crate) fn capital(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// PascalCase for types and variants, never starting with a digit.
pub(crate) fn pascal(text: &str) -> String {
    let pascal = text.to_pascal_case();
    if pascal.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{pascal}")
    } else if pascal == "Self" {
        "Self_".to_owned()
    } else {
        pascal
    }
}

/// snake_case for columns, tables and modules.
pub(crate) fn snake(text: &str) -> String {
    text.to_snake_case()
}

/// English plural of a snake_case name, for default table names (`company` → `companies`).
pub(crate) fn plural(word: &str) -> String {
    let (head, last) = match word.rfind('_') {
        Some(cut) => word.split_at(cut + 1),
        None => ("", word),
    };
    let irregular = match last {
        "person" => Some("people"),
        "child" => Some("children"),
        "man" => Some("men"),
        "woman" => Some("women"),
        "data" | "info" | "series" | "news" | "equipment" | "money" | "metadata" => Some(last),
        _ => None,
    };
    let plural = match irregular {
        Some(p) => p.to_owned(),
        None if last.ends_with('y')
            && !last.ends_with("ay")
            && !last.ends_with("ey")
            && !last.ends_with("oy")
            && !last.ends_with("uy") =>
        {
            format!("{}ies", &last[..last.len() - 1])
        }
        None if ["s", "x", "z", "ch", "sh"]
            .iter()
            .any(|s| last.ends_with(s)) =>
        {
            format!("{last}es")
        }
        None => format!("{last}s"),
    };
    format!("{head}{plural}")
}

/// Whether `name` can be a JSON member that every output language can carry.
pub(crate) fn is_valid_member(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `name` is a valid PascalCase type name.
pub(crate) fn is_valid_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Whether `name` is a valid SQL identifier we generate (lower-case, digits, `_`).
pub(crate) fn is_valid_sql_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// The known name closest to `name`, if close enough to be a likely typo.
pub(crate) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&name.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_follow_english_rules() {
        for (one, many) in [
            ("company", "companies"),
            ("deal", "deals"),
            ("activity", "activities"),
            ("address", "addresses"),
            ("sales_day", "sales_days"),
            ("person", "people"),
            ("box", "boxes"),
            ("line_item", "line_items"),
        ] {
            assert_eq!(plural(one), many);
        }
    }

    #[test]
    fn rust_names_survive_keywords() {
        assert_eq!(rust_field("type"), "type");
        assert!(is_rust_keyword("type") && is_rust_keyword("async"));
        assert_eq!(rust_field("self"), "self_");
        assert_eq!(rust_field("firstName"), "first_name");
        assert_eq!(rust_field("2fa"), "_2fa");
        assert_eq!(pascal("closed-won"), "ClosedWon");
        assert_eq!(pascal("1st"), "V1st");
    }

    #[test]
    fn typos_find_their_keyword() {
        assert_eq!(
            closest("maxLenght", &["maxLength", "minLength", "pattern"]),
            Some("maxLength")
        );
        assert_eq!(closest("zzz", &["maxLength"]), None);
    }
}
