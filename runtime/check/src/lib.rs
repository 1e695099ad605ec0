//! The constraint checks of Prefiq's generated model types.
//!
//! serde decodes a value's shape; the constraints JSON Schema adds on top of it (bounds,
//! lengths, sizes, patterns, decimal digits) are checked by [`Validate`], which every generated
//! type implements with a [`Checks`] per value. The server checks the same constraints with JSON
//! Schema before a request reaches a service; these checks let a client or a service judge a value
//! it builds itself, with the same messages.
//!
//! Generated types crates depend on this crate, as progenitor's clients depend on
//! `progenitor-client`, so the apps share one copy of the code instead of one each. It has no web,
//! database or async dependency; `pattern` and `decimal` features add what only some apps need.

#![deny(missing_docs)]

use std::fmt;

/// One broken constraint, located by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as in `/address/city`.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

impl std::error::Error for Violation {}

/// A string that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The string.
    pub value: String,
    /// The values the enum has.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown value `{}`; expected one of {}",
            self.value,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

/// Checks a value against its schema's constraints.
pub trait Validate {
    /// Pushes every broken constraint under the pointer `at`.
    fn validate_at(&self, at: &str, out: &mut Vec<Violation>);

    /// Every broken constraint, or `Ok`.
    fn validate(&self) -> Result<(), Vec<Violation>> {
        let mut out = Vec::new();
        self.validate_at("", &mut out);
        if out.is_empty() { Ok(()) } else { Err(out) }
    }
}

impl<T: Validate + ?Sized> Validate for Box<T> {
    fn validate_at(&self, at: &str, out: &mut Vec<Violation>) {
        (**self).validate_at(at, out);
    }
}

/// Escapes one JSON pointer segment (RFC 6901): `~` as `~0`, `/` as `~1`.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Collects the broken constraints of one value, under the pointer it is checked at.
///
/// Each check names the member it judges (a pointer suffix such as `/name`) and pushes a
/// [`Violation`] when the constraint is broken.
pub struct Checks<'a> {
    at: &'a str,
    out: &'a mut Vec<Violation>,
}

impl<'a> Checks<'a> {
    /// Checks under the pointer `at`, pushing to `out`.
    pub fn new(at: &'a str, out: &'a mut Vec<Violation>) -> Self {
        Self { at, out }
    }

    fn fail(&mut self, member: &str, message: String) {
        self.out.push(Violation {
            pointer: format!("{}{}", self.at, member),
            message,
        });
    }

    /// `minimum`.
    pub fn min<T: PartialOrd + fmt::Display>(&mut self, member: &str, value: T, min: T) {
        if value < min {
            self.fail(member, format!("must be at least {min}"));
        }
    }

    /// `maximum`.
    pub fn max<T: PartialOrd + fmt::Display>(&mut self, member: &str, value: T, max: T) {
        if value > max {
            self.fail(member, format!("must be at most {max}"));
        }
    }

    /// `exclusiveMinimum`.
    pub fn above<T: PartialOrd + fmt::Display>(&mut self, member: &str, value: T, bound: T) {
        if value <= bound {
            self.fail(member, format!("must be more than {bound}"));
        }
    }

    /// `exclusiveMaximum`.
    pub fn below<T: PartialOrd + fmt::Display>(&mut self, member: &str, value: T, bound: T) {
        if value >= bound {
            self.fail(member, format!("must be less than {bound}"));
        }
    }

    /// `multipleOf` of an integer.
    pub fn multiple_of(&mut self, member: &str, value: i64, multiple: i64) {
        if multiple != 0 && value % multiple != 0 {
            self.fail(member, format!("must be a multiple of {multiple}"));
        }
    }

    /// `multipleOf` of a number, within a relative tolerance of 10⁻⁹ for binary fractions.
    pub fn multiple_of_float(&mut self, member: &str, value: f64, multiple: f64) {
        let ratio = value / multiple;
        if (ratio - ratio.round()).abs() > 1e-9 {
            self.fail(member, format!("must be a multiple of {multiple}"));
        }
    }

    /// `minLength`, in characters.
    pub fn min_chars(&mut self, member: &str, value: &str, min: u64) {
        if (value.chars().count() as u64) < min {
            self.fail(member, format!("must be at least {min} characters long"));
        }
    }

    /// `maxLength`, in characters.
    pub fn max_chars(&mut self, member: &str, value: &str, max: u64) {
        if (value.chars().count() as u64) > max {
            self.fail(member, format!("must be at most {max} characters long"));
        }
    }

    /// `const`.
    pub fn constant(&mut self, member: &str, value: &str, expected: &str) {
        if value != expected {
            self.fail(member, format!("must be {expected:?}"));
        }
    }

    /// `minItems`.
    pub fn min_items(&mut self, member: &str, length: usize, min: u64) {
        if (length as u64) < min {
            self.fail(member, format!("must have at least {min} items"));
        }
    }

    /// `maxItems`.
    pub fn max_items(&mut self, member: &str, length: usize, max: u64) {
        if (length as u64) > max {
            self.fail(member, format!("must have at most {max} items"));
        }
    }

    /// `uniqueItems`.
    pub fn unique<T: PartialEq>(&mut self, member: &str, items: &[T]) {
        if items
            .iter()
            .enumerate()
            .any(|(i, item)| items[..i].contains(item))
        {
            self.fail(member, String::from("must not repeat items"));
        }
    }

    /// A nested value's own constraints, under this value's pointer and `member`.
    pub fn nested(&mut self, member: &str, value: &impl Validate) {
        let at = format!("{}{}", self.at, member);
        value.validate_at(&at, self.out);
    }

    /// `pattern`.
    #[cfg(feature = "pattern")]
    pub fn pattern(&mut self, member: &str, value: &str, pattern: &Pattern) {
        if !pattern.is_match(value) {
            self.fail(
                member,
                format!("must match the pattern {}", pattern.source()),
            );
        }
    }

    /// Digits after the decimal point (`x-prefiq.scale`).
    #[cfg(feature = "decimal")]
    pub fn scale(&mut self, member: &str, value: &rust_decimal::Decimal, scale: u32) {
        if value.normalize().scale() > scale {
            self.fail(
                member,
                format!("must have at most {scale} digits after the decimal point"),
            );
        }
    }

    /// Digits before the decimal point (precision minus scale).
    #[cfg(feature = "decimal")]
    pub fn whole_digits(&mut self, member: &str, value: &rust_decimal::Decimal, whole: u32) {
        let digits = value.trunc().abs().to_string();
        if digits.trim_start_matches('0').len() > whole as usize {
            self.fail(
                member,
                format!("must have at most {whole} digits before the decimal point"),
            );
        }
    }
}

/// A `pattern` of a schema, compiled on first use.
///
/// Generated crates hold their patterns as statics: `static PHONE: Pattern = Pattern::new("…");`.
/// `prefiq codegen` has already refused any pattern the `regex` crate cannot compile; should one
/// slip through, it matches everything rather than refusing every value.
#[cfg(feature = "pattern")]
pub struct Pattern {
    source: &'static str,
    compiled: std::sync::OnceLock<Option<regex::Regex>>,
}

#[cfg(feature = "pattern")]
impl Pattern {
    /// The pattern `source`, not compiled yet.
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            compiled: std::sync::OnceLock::new(),
        }
    }

    /// The pattern as written in the schema.
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// Whether `value` matches (anywhere, as JSON Schema's `pattern` does unless anchored).
    pub fn is_match(&self, value: &str) -> bool {
        self.compiled
            .get_or_init(|| regex::Regex::new(self.source).ok())
            .as_ref()
            .is_none_or(|regex| regex.is_match(value))
    }
}

/// A kind of event an app publishes: what generated event payload types implement, so that a
/// subscriber names the event by its type (`Registry::on_event::<DealWon>` in the runtime) and
/// receives it decoded.
pub trait Event {
    /// The name events of this kind are published under, as in `crm.deal_won`: the app, a
    /// dot, the event's name.
    const TYPE: &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Point {
        x: i64,
        label: String,
        tags: Vec<String>,
    }

    impl Validate for Point {
        fn validate_at(&self, at: &str, out: &mut Vec<Violation>) {
            let c = &mut Checks::new(at, out);
            c.min("/x", self.x, 0);
            c.below("/x", self.x, 10);
            c.max_chars("/label", &self.label, 3);
            c.unique("/tags", &self.tags);
        }
    }

    #[test]
    fn every_broken_constraint_is_reported_under_its_pointer() {
        let point = Point {
            x: 10,
            label: "four".into(),
            tags: vec!["a".into(), "a".into()],
        };
        let mut out = Vec::new();
        point.validate_at("/points/3", &mut out);
        let found: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "/points/3/x: must be less than 10",
                "/points/3/label: must be at most 3 characters long",
                "/points/3/tags: must not repeat items",
            ]
        );
    }

    #[test]
    fn a_valid_value_passes_and_nesting_extends_the_pointer() {
        let ok = Point {
            x: 0,
            label: "añb".into(),
            tags: vec![],
        };
        assert_eq!(ok.validate(), Ok(()));
        let mut out = Vec::new();
        let bad = Point {
            x: -1,
            label: String::new(),
            tags: vec![],
        };
        Checks::new("", &mut out).nested(&format!("/{}", escape("a/b~c")), &Box::new(bad));
        assert_eq!(out[0].pointer, "/a~1b~0c/x");
        assert_eq!(out[0].message, "must be at least 0");
    }

    #[test]
    fn multiples_tolerate_binary_fractions_and_refuse_others() {
        let mut out = Vec::new();
        let c = &mut Checks::new("", &mut out);
        c.multiple_of_float("/a", 0.3, 0.1);
        c.multiple_of("/b", 7, 0);
        c.multiple_of("/c", 7, 2);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].pointer, "/c");
    }

    #[cfg(feature = "pattern")]
    #[test]
    fn patterns_compile_once_and_name_themselves_when_broken() {
        static CODE: Pattern = Pattern::new("^[A-Z]{2}$");
        let mut out = Vec::new();
        let c = &mut Checks::new("", &mut out);
        c.pattern("/country", "DE", &CODE);
        c.pattern("/country", "de", &CODE);
        assert_eq!(
            out,
            [Violation {
                pointer: "/country".into(),
                message: "must match the pattern ^[A-Z]{2}$".into(),
            }]
        );
    }

    #[cfg(feature = "decimal")]
    #[test]
    fn decimals_are_judged_by_their_digits() {
        use std::str::FromStr;
        let mut out = Vec::new();
        let c = &mut Checks::new("", &mut out);
        let amount = rust_decimal::Decimal::from_str("12345.670").unwrap();
        c.scale("/a", &amount, 2);
        c.whole_digits("/a", &amount, 5);
        c.whole_digits("/b", &amount, 4);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].pointer, "/b");
    }
}
