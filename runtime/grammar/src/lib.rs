//! The grammar of list queries, as regular expressions written once. The generator puts them in
//! every OpenAPI document (each filter parameter's `pattern`, the `sort` and `or` patterns), and
//! the runtime checks every request against the very same expressions, so a client generated
//! from the document is never surprised: what the pattern accepts the server accepts, and what
//! it refuses the server refuses.
//!
//! The expressions use only what every engine involved shares (ECMA-262, Python `re`, Rust
//! `regex`): classes, groups, alternation and bounded repetition; no look-around.

#![deny(missing_docs)]

/// How the values of a filterable field are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind<'a> {
    /// A 32-bit integer: at most 9 digits.
    Int32,
    /// A 64-bit integer: at most 18 digits.
    Int64,
    /// A double: at most 15 digits on each side of the point, a two-digit exponent.
    Float,
    /// An exact decimal: at most 14 digits on each side of the point.
    Decimal,
    /// `true` or `false`.
    Bool,
    /// A UUID with its hyphens.
    Uuid,
    /// A calendar date from 0001-01-01 to 9999-12-31.
    Date,
    /// An RFC 3339 date-time from year 0001 to 9999, without leap seconds.
    DateTime,
    /// Any text without NUL.
    Text,
    /// One of these values.
    Enum(&'a [&'a str]),
}

/// The most conditions one filter parameter may repeat.
pub const MAX_PER_FIELD: usize = 10;
/// The most conditions of an `or` group.
pub const MAX_OR: usize = 50;
/// The most values of an `in` list or a set (`cs`, `cd`, `ov`).
pub const MAX_LIST: usize = 100;
/// The most values an `in` list or a set holds inside an `or` group, which keeps the group's
/// documented pattern small enough for contract tools to compile.
pub const MAX_OR_LIST: usize = 10;

/// A cursor, as the API makes them: unpadded base64url.
pub const CURSOR: &str = "^[A-Za-z0-9_-]+$";

const YEAR: &str = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])";
const LEAP_YEAR: &str =
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
const MONTH_DAY: &str = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";

fn date() -> String {
    format!("(?:{YEAR}-{MONTH_DAY}|{LEAP_YEAR}-02-29)")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if "\\.+*?()|[]{}^$".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// One value of `kind` where it may hold anything but NUL (after `eq.` and the like).
pub fn value(kind: ValueKind<'_>) -> String {
    match kind {
        ValueKind::Int32 => "-?[0-9]{1,9}".into(),
        ValueKind::Int64 => "-?[0-9]{1,18}".into(),
        ValueKind::Float => "-?[0-9]{1,15}(?:\\.[0-9]{1,15})?(?:[eE][-+]?[0-9]{1,2})?".into(),
        ValueKind::Decimal => "-?[0-9]{1,14}(?:\\.[0-9]{1,14})?".into(),
        ValueKind::Bool => "(?:true|false)".into(),
        ValueKind::Uuid => {
            "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".into()
        }
        ValueKind::Date => date(),
        ValueKind::DateTime => format!(
            "{}[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{{1,9}})?(?:[Zz]|[-+](?:[01][0-9]|2[0-3]):[0-5][0-9])",
            date()
        ),
        ValueKind::Text => "[^\\u0000]*".into(),
        ValueKind::Enum(values) => format!(
            "(?:{})",
            values
                .iter()
                .map(|v| escape(v))
                .collect::<Vec<_>>()
                .join("|")
        ),
    }
}

/// One value of `kind` inside a list or an `or` group, where `,` `(` `)` and `"` separate: text
/// is quoted (`"a,b"`) or holds none of them.
pub fn item(kind: ValueKind<'_>) -> String {
    match kind {
        // Quoted (and then possibly empty), or at least one character that separates nothing.
        ValueKind::Text => "(?:\"[^\"\\u0000]*\"|[^,(){}\"\\u0000]+)".into(),
        other => value(other),
    }
}

/// How many more times a repeated part may appear: exactly `max - 1` in the document; without
/// a bound (`*`) where the runtime counts the parts itself, which keeps its expressions small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `{0,max-1}`, as the document states it.
    Counted,
    /// `*`, the count checked apart.
    Open,
}

impl Bound {
    fn more(self, max: usize) -> String {
        match self {
            Bound::Counted => format!("{{0,{}}}", max.max(1) - 1),
            Bound::Open => "*".into(),
        }
    }
}

fn list(item: &str, min: usize, max: usize, bound: Bound) -> String {
    let more = bound.more(max);
    if min == 0 {
        format!("(?:{item}(?:,{item}){more})?")
    } else {
        format!("{item}(?:,{item}){more}")
    }
}

/// The conditions a field takes, `op.value` alternatives without anchors; `inside` when the
/// condition sits in an `or` group (text values cannot hold `,` `(` `)` unquoted there).
/// `items` is the kind of an array field's items.
pub fn condition(
    kind: ValueKind<'_>,
    nullable: bool,
    items: Option<ValueKind<'_>>,
    inside: bool,
    bound: Bound,
) -> String {
    let mut alternatives = Vec::new();
    let max = if inside { MAX_OR_LIST } else { MAX_LIST };
    if let Some(items) = items {
        let one = item(items);
        let set = format!("\\{{{}\\}}", list(&one, 0, max, bound));
        let set1 = format!("\\{{{}\\}}", list(&one, 1, max, bound));
        alternatives.push(format!("cs\\.(?:{one}|{set1})"));
        alternatives.push(format!("ov\\.(?:{one}|{set1})"));
        alternatives.push(format!("cd\\.(?:{one}|{set})"));
    } else {
        let single = if inside { item(kind) } else { value(kind) };
        let ops = match kind {
            ValueKind::Bool | ValueKind::Enum(_) => "(?:eq|ne)",
            ValueKind::Text => "(?:eq|ne|lt|lte|gt|gte|like|ilike)",
            _ => "(?:eq|ne|lt|lte|gt|gte)",
        };
        alternatives.push(format!("{ops}\\.{single}"));
        if kind != ValueKind::Bool {
            alternatives.push(format!("in\\.\\({}\\)", list(&item(kind), 1, max, bound)));
        }
    }
    if nullable {
        alternatives.push("is\\.(?:null|notnull)".into());
    }
    format!("(?:{})", alternatives.join("|"))
}

/// The pattern of a filter parameter's value.
pub fn filter(
    kind: ValueKind<'_>,
    nullable: bool,
    items: Option<ValueKind<'_>>,
    bound: Bound,
) -> String {
    format!("^{}$", condition(kind, nullable, items, false, bound))
}

/// A filterable field, for the `or` pattern.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The member name.
    pub name: &'a str,
    /// How its values are written.
    pub kind: ValueKind<'a>,
    /// Whether it may be null.
    pub nullable: bool,
    /// For an array: its items' kind.
    pub items: Option<ValueKind<'a>>,
}

/// One condition of an `or` group: `field.op.value` for any filterable field, unanchored.
pub fn or_condition(fields: &[Field<'_>], bound: Bound) -> String {
    let conditions: Vec<String> = fields
        .iter()
        .map(|f| {
            format!(
                "{}\\.{}",
                escape(f.name),
                condition(f.kind, f.nullable, f.items, true, bound)
            )
        })
        .collect();
    format!("(?:{})", conditions.join("|"))
}

/// The pattern of the `or` parameter: `(field.op.value,...)`, one to [`MAX_OR`] conditions.
pub fn or_group(fields: &[Field<'_>]) -> String {
    let one = or_condition(fields, Bound::Counted);
    format!("^\\({one}(?:,{one}){}\\)$", Bound::Counted.more(MAX_OR))
}

/// The pattern of the `sort` parameter: sortable fields, `-` for descending, comma-separated.
pub fn sort(fields: &[&str]) -> String {
    let one = format!(
        "-?(?:{})",
        fields
            .iter()
            .map(|f| escape(f))
            .collect::<Vec<_>>()
            .join("|")
    );
    format!("^{one}(?:,{one}){{0,{}}}$", fields.len().max(1) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, yes: &[&str], no: &[&str]) {
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 26)
            .build()
            .unwrap();
        for text in yes {
            assert!(regex.is_match(text), "{pattern} should match {text:?}");
        }
        for text in no {
            assert!(!regex.is_match(text), "{pattern} should not match {text:?}");
        }
    }

    #[test]
    fn filters_follow_their_field_type() {
        check(
            &filter(ValueKind::Int32, false, None, Bound::Counted),
            &["eq.5", "gt.-123456789", "in.(1,2,3)"],
            &[
                "5",
                "eq.1234567890",
                "eq.+5",
                "like.5",
                "is.null",
                "in.()",
                "eq.1.5",
            ],
        );
        check(
            &filter(ValueKind::Date, true, None, Bound::Counted),
            &[
                "lt.2024-02-29",
                "eq.0001-01-01",
                "is.null",
                "in.(2000-02-29,2023-12-31)",
            ],
            &[
                "lt.2023-02-29",
                "lt.1900-02-29",
                "eq.0000-01-01",
                "eq.10000-01-01",
                "eq.2023-13-01",
                "is.x",
            ],
        );
        check(
            &filter(ValueKind::DateTime, false, None, Bound::Counted),
            &[
                "gt.2026-01-02T03:04:05Z",
                "gt.2026-01-02t03:04:05.123+01:00",
            ],
            &[
                "gt.2026-01-02T24:00:00Z",
                "gt.2026-01-02T23:59:60Z",
                "gt.2026-01-02",
            ],
        );
        check(
            &filter(
                ValueKind::Enum(&["won", "lost"]),
                false,
                None,
                Bound::Counted,
            ),
            &["eq.won", "in.(won,lost)"],
            &["won", "eq.draw", "lt.won", "like.w*"],
        );
        check(
            &filter(ValueKind::Text, false, None, Bound::Counted),
            &[
                "eq.",
                "eq.a,b(c)",
                "like.*x*",
                "in.(\"a,b\",c)",
                "in.(\"\")",
            ],
            &["abc", "is.null", "in.(a,,b)", "in.()", "cs.a", "eq.a\u{0}"],
        );
        check(
            &filter(
                ValueKind::Text,
                false,
                Some(ValueKind::Text),
                Bound::Counted,
            ),
            &["cs.a", "cs.{a,b}", "cd.{}", "ov.{a}"],
            &["cs.{}", "eq.a", "in.(a)", "cs.{a", "cs."],
        );
    }

    #[test]
    fn or_groups_sort_and_cursors() {
        let fields = [
            Field {
                name: "name",
                kind: ValueKind::Text,
                nullable: false,
                items: None,
            },
            Field {
                name: "tags",
                kind: ValueKind::Text,
                nullable: false,
                items: Some(ValueKind::Text),
            },
            Field {
                name: "n",
                kind: ValueKind::Int64,
                nullable: true,
                items: None,
            },
        ];
        check(
            &or_group(&fields),
            &[
                "(name.eq.a)",
                "(name.eq.\"a,b\",n.is.null)",
                "(tags.cs.{a,b},n.in.(1,2))",
            ],
            &[
                "()",
                "(name.eq.a,)",
                "(other.eq.a)",
                "name.eq.a",
                "(name.eq.a,b)",
            ],
        );
        check(
            &sort(&["a", "b_c"]),
            &["a", "-a,b_c", "a,a"],
            &["", "c", "a,", "+a"],
        );
        check(CURSOR, &["eyJzIjoiIn0"], &["", "a b", "a=", "a+b"]);
    }
}
