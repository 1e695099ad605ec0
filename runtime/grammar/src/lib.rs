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

/// A filter's operator: the one list of them. The document's patterns, the runtime's parser and
/// SQL, and the generated documentation all read it, so none can accept what another refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `eq.v`: equal.
    Eq,
    /// `ne.v`: not equal.
    Ne,
    /// `lt.v`: less than.
    Lt,
    /// `lte.v`: less than or equal.
    Lte,
    /// `gt.v`: greater than.
    Gt,
    /// `gte.v`: greater than or equal.
    Gte,
    /// `like.a*b`: matches, case-sensitive, `*` for any run of characters.
    Like,
    /// `ilike.a*b`: matches, ignoring case.
    Ilike,
    /// `in.(a,b)`: one of the listed values.
    In,
    /// `is.null`, `is.notnull`: missing or present.
    Is,
    /// `cs.{a,b}`: the array holds every listed value.
    Contains,
    /// `cd.{a,b}`: the array holds only listed values.
    ContainedBy,
    /// `ov.{a,b}`: the array holds at least one listed value.
    Overlaps,
}

impl Operator {
    /// Every operator, in the order patterns and documentation list them.
    pub const ALL: [Operator; 13] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Lt,
        Operator::Lte,
        Operator::Gt,
        Operator::Gte,
        Operator::Like,
        Operator::Ilike,
        Operator::In,
        Operator::Contains,
        Operator::Overlaps,
        Operator::ContainedBy,
        Operator::Is,
    ];

    /// Its name in a query (`eq` in `eq.5`).
    pub const fn name(self) -> &'static str {
        match self {
            Operator::Eq => "eq",
            Operator::Ne => "ne",
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::Like => "like",
            Operator::Ilike => "ilike",
            Operator::In => "in",
            Operator::Is => "is",
            Operator::Contains => "cs",
            Operator::ContainedBy => "cd",
            Operator::Overlaps => "ov",
        }
    }

    /// The operator `name` names; none for anything else (no aliases: `neq` is not `ne`).
    pub fn parse(name: &str) -> Option<Operator> {
        Operator::ALL.into_iter().find(|op| op.name() == name)
    }

    /// What it means, for documentation.
    pub const fn meaning(self) -> &'static str {
        match self {
            Operator::Eq => "equal",
            Operator::Ne => "not equal",
            Operator::Lt => "less than",
            Operator::Lte => "less than or equal",
            Operator::Gt => "greater than",
            Operator::Gte => "greater than or equal",
            Operator::Like => "matches, `*` for any characters",
            Operator::Ilike => "matches ignoring case, `*` for any characters",
            Operator::In => "one of a list, `in.(a,b)`",
            Operator::Is => "`is.null` or `is.notnull`",
            Operator::Contains => "holds every value, `cs.{a,b}`",
            Operator::ContainedBy => "holds only these values, `cd.{a,b}`",
            Operator::Overlaps => "holds at least one value, `ov.{a,b}`",
        }
    }

    /// The SQL comparison of a scalar operator (`=` for `eq`); none for the others, which are
    /// written their own way.
    pub const fn sql(self) -> Option<&'static str> {
        match self {
            Operator::Eq => Some("="),
            Operator::Ne => Some("<>"),
            Operator::Lt => Some("<"),
            Operator::Lte => Some("<="),
            Operator::Gt => Some(">"),
            Operator::Gte => Some(">="),
            _ => None,
        }
    }

    /// Whether a field whose values are `kind` (or, for an array, whose items are `items`), and
    /// that is `nullable` or not, takes it.
    pub fn applies(
        self,
        kind: ValueKind<'_>,
        nullable: bool,
        items: Option<ValueKind<'_>>,
    ) -> bool {
        let ordered = !matches!(kind, ValueKind::Bool | ValueKind::Enum(_));
        match self {
            Operator::Is => nullable,
            Operator::Contains | Operator::ContainedBy | Operator::Overlaps => items.is_some(),
            _ if items.is_some() => false,
            Operator::Eq | Operator::Ne => true,
            Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => ordered,
            Operator::Like | Operator::Ilike => kind == ValueKind::Text,
            Operator::In => kind != ValueKind::Bool,
        }
    }

    /// The operators a field takes, by name, for messages and documentation.
    pub fn names_for(
        kind: ValueKind<'_>,
        nullable: bool,
        items: Option<ValueKind<'_>>,
    ) -> Vec<&'static str> {
        Operator::ALL
            .into_iter()
            .filter(|op| op.applies(kind, nullable, items))
            .map(Operator::name)
            .collect()
    }
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

/// The longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// An `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY`] visible ASCII characters other than `"`
/// (a UUID, say), bare as Stripe's clients send it or quoted as the IETF draft's structured
/// string.
pub const IDEMPOTENCY_KEY: &str = "^\"?[!#-~]{1,255}\"?$";

/// The key an `Idempotency-Key` header value carries, if it is one ([`IDEMPOTENCY_KEY`]).
pub fn idempotency_key(value: &str) -> Option<&str> {
    let inner = value.strip_prefix('"').unwrap_or(value);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let fits = !inner.is_empty()
        && inner.len() <= MAX_IDEMPOTENCY_KEY
        && inner.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    fits.then_some(inner)
}

/// The name of an event an app declares (`deal_won`): lowercase words joined by `_`. It is
/// published as `<app>.<name>`.
pub const EVENT_NAME: &str = "^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$";

/// Whether `name` is an event's name ([`EVENT_NAME`]).
pub fn is_event_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_lowercase)
        && !name.ends_with('_')
        && !name.contains("__")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// The actions every entity publishes an event of, in the order of a row's life.
pub const ENTITY_ACTIONS: [&str; 3] = ["created", "updated", "deleted"];

/// The type of an entity's event: `crm.deal.created` for `action` `created` of entity `Deal`
/// in app `crm`, `cortex.audit_entry.deleted` for `AuditEntry`: the entity's name in snake
/// case, an `_` before each capital but the first.
pub fn entity_event_type(app: &str, entity: &str, action: &str) -> String {
    let mut out = String::with_capacity(app.len() + entity.len() + action.len() + 4);
    out.push_str(app);
    out.push('.');
    for (i, c) in entity.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out.push('.');
    out.push_str(action);
    out
}

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
    let max = if inside { MAX_OR_LIST } else { MAX_LIST };
    let single = if inside { item(kind) } else { value(kind) };
    let mut alternatives = Vec::new();
    // Scalar comparisons share one alternative: `(?:eq|ne|…)\.value`.
    let scalar: Vec<&str> = Operator::ALL
        .into_iter()
        .filter(|op| op.sql().is_some() || matches!(op, Operator::Like | Operator::Ilike))
        .filter(|op| op.applies(kind, nullable, items))
        .map(Operator::name)
        .collect();
    if !scalar.is_empty() {
        alternatives.push(format!("(?:{})\\.{single}", scalar.join("|")));
    }
    for op in Operator::ALL {
        if !op.applies(kind, nullable, items) {
            continue;
        }
        let name = op.name();
        match op {
            Operator::In => {
                alternatives.push(format!("in\\.\\({}\\)", list(&item(kind), 1, max, bound)));
            }
            Operator::Is => alternatives.push("is\\.(?:null|notnull)".into()),
            Operator::Contains | Operator::Overlaps | Operator::ContainedBy => {
                let one = item(items.unwrap_or(ValueKind::Text));
                // `cd.{}` holds for an empty array; containing or overlapping nothing means
                // nothing, so those take at least one value.
                let least = usize::from(op != Operator::ContainedBy);
                let set = format!("\\{{{}\\}}", list(&one, least, max, bound));
                alternatives.push(format!("{name}\\.(?:{one}|{set})"));
            }
            _ => {}
        }
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

    #[test]
    fn event_names_and_their_pattern_agree() {
        let yes = ["deal_won", "won", "step2_done"];
        let no = [
            "",
            "Deal",
            "deal-won",
            "_won",
            "won_",
            "deal__won",
            "2nd",
            "deal.won",
        ];
        check(EVENT_NAME, &yes, &no);
        assert!(yes.iter().all(|n| is_event_name(n)));
        assert!(no.iter().all(|n| !is_event_name(n)), "{no:?}");
        assert_eq!(
            entity_event_type("cortex", "AuditEntry", "deleted"),
            "cortex.audit_entry.deleted"
        );
        assert_eq!(
            entity_event_type("crm", "Deal", "created"),
            "crm.deal.created"
        );
    }

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
    fn every_operator_has_one_name_and_the_patterns_offer_exactly_the_ones_a_field_takes() {
        for op in Operator::ALL {
            assert_eq!(Operator::parse(op.name()), Some(op));
        }
        for alias in ["neq", "EQ", "", "not", "isnull"] {
            assert_eq!(Operator::parse(alias), None, "{alias}");
        }
        let kinds = [
            (ValueKind::Int64, None, "5"),
            (ValueKind::Text, None, "a"),
            (ValueKind::Bool, None, "true"),
            (ValueKind::Enum(&["won", "lost"]), None, "won"),
            (ValueKind::Text, Some(ValueKind::Text), "{a}"),
        ];
        for (kind, items, sample) in kinds {
            for nullable in [false, true] {
                let pattern = filter(kind, nullable, items, Bound::Counted);
                let regex = regex::Regex::new(&pattern).unwrap();
                for op in Operator::ALL {
                    let operand = match op {
                        Operator::In => format!("({sample})"),
                        Operator::Is => "null".to_owned(),
                        _ => sample.to_owned(),
                    };
                    let text = format!("{}.{operand}", op.name());
                    assert_eq!(
                        regex.is_match(&text),
                        op.applies(kind, nullable, items),
                        "{kind:?} nullable {nullable}: {text}"
                    );
                }
                // A bare value is no condition.
                assert!(!regex.is_match(sample), "{kind:?}: a bare {sample}");
            }
        }
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
