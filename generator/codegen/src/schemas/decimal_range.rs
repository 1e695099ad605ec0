//! The pattern of decimal strings within bounds: what the server accepts, in a form every
//! OpenAPI consumer understands.
//!
//! JSON Schema bounds (`minimum`, ...) apply to numbers only, so a decimal sent as a string
//! carries its bounds in `x-decimal`, which generators and fuzzers ignore. The published document
//! states them in the pattern instead: the strings of the decimal's shape (see
//! [`decimal_pattern`](super::decimal_pattern)) whose value lies within the bounds.
//!
//! A value of the shape is a digit string of fixed width once its whole part is padded with
//! leading zeros and its fraction with trailing ones, so bounds are a range of such strings. The
//! range splits into pieces `prefix, one digit range, any digits` (as in `to-regex-range`), and
//! each piece becomes the strings whose padding fits it.

use crate::ir::NumberType;

/// The most digits a range is worked out for (an `i128` holds 38).
const MAX_DIGITS: u32 = 36;

/// One digit position of a piece: the digits it allows, inclusive.
type Class = (u8, u8);

/// `number × 10^scale` rounded towards +∞ (`up`) or −∞, if it has a decimal form.
fn scaled(number: &serde_json::Number, scale: u32, up: bool) -> Option<i128> {
    let text = number.to_string();
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let negative = mantissa.starts_with('-');
    let digits = mantissa.trim_start_matches(['-', '+']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all: String = format!("{whole}{fraction}");
    // The value is all × 10^shift.
    let shift = exponent - fraction.len() as i32 + scale as i32;
    let all = all.trim_start_matches('0');
    let magnitude: i128 = if all.is_empty() {
        0
    } else if shift >= 0 {
        if all.len() as i32 + shift > 37 {
            return None;
        }
        all.parse::<i128>().ok()? * 10i128.pow(shift as u32)
    } else {
        let cut = (-shift) as usize;
        let (kept, dropped) = if cut >= all.len() {
            ("", all)
        } else {
            all.split_at(all.len() - cut)
        };
        let kept: i128 = if kept.is_empty() {
            0
        } else {
            kept.parse().ok()?
        };
        let inexact = dropped.bytes().any(|d| d != b'0');
        // Truncation moved the magnitude towards zero; step away from it where asked.
        let away = inexact && (up != negative);
        kept + i128::from(away)
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// The inclusive range of scaled values the bounds allow.
fn range(bounds: &NumberType, scale: u32, largest: i128) -> Option<(i128, i128)> {
    let mut low = -largest;
    let mut high = largest;
    if let Some(n) = &bounds.minimum {
        low = low.max(scaled(n, scale, true)?);
    }
    if let Some(n) = &bounds.exclusive_minimum {
        low = low.max(scaled(n, scale, false)? + 1);
    }
    if let Some(n) = &bounds.maximum {
        high = high.min(scaled(n, scale, false)?);
    }
    if let Some(n) = &bounds.exclusive_maximum {
        high = high.min(scaled(n, scale, true)? - 1);
    }
    Some((low, high))
}

fn digits(value: i128, width: usize) -> Vec<u8> {
    let text = format!("{value:0width$}");
    text.bytes().map(|b| b - b'0').collect()
}

/// The pieces whose strings are exactly the fixed-width digit strings from `a` to `b`.
fn pieces(a: &[u8], b: &[u8]) -> Vec<Vec<Class>> {
    let Some((&first_a, rest_a)) = a.split_first() else {
        return vec![Vec::new()];
    };
    let (&first_b, rest_b) = b.split_first().unwrap_or((&9, &[]));
    let prefixed = |digit: Class, tails: Vec<Vec<Class>>| -> Vec<Vec<Class>> {
        tails
            .into_iter()
            .map(|tail| {
                let mut piece = vec![digit];
                piece.extend(tail);
                piece
            })
            .collect()
    };
    if first_a == first_b {
        return prefixed((first_a, first_a), pieces(rest_a, rest_b));
    }
    let any = || vec![(0, 9); rest_a.len()];
    let from_zero = rest_a.iter().all(|&d| d == 0);
    let to_nine = rest_b.iter().all(|&d| d == 9);
    let mut out = Vec::new();
    let middle_low = if from_zero { first_a } else { first_a + 1 };
    let middle_high = if to_nine { first_b } else { first_b - 1 };
    if !from_zero {
        let nines = vec![9; rest_a.len()];
        out.extend(prefixed((first_a, first_a), pieces(rest_a, &nines)));
    }
    if middle_low <= middle_high {
        out.extend(prefixed((middle_low, middle_high), vec![any()]));
    }
    if !to_nine {
        let zeros = vec![0; rest_b.len()];
        out.extend(prefixed((first_b, first_b), pieces(&zeros, rest_b)));
    }
    out
}

fn class(c: Class) -> String {
    match c {
        (a, b) if a == b => a.to_string(),
        (0, 9) => "[0-9]".to_owned(),
        (a, b) => format!("[{a}-{b}]"),
    }
}

fn concat(classes: &[Class]) -> String {
    let mut out = String::new();
    let mut rest = classes;
    while let Some(&first) = rest.first() {
        let run = rest.iter().take_while(|&&c| c == first).count();
        out.push_str(&class(first));
        if run > 1 {
            out.push_str(&format!("{{{run}}}"));
        }
        rest = &rest[run..];
    }
    out
}

/// The repetition of up to `n` of what precedes it.
fn at_most(n: usize) -> String {
    if n == 1 {
        "?".to_owned()
    } else {
        format!("{{0,{n}}}")
    }
}

/// Any suffix of `classes` that is at least `at_least` long: leading classes may be left out.
fn suffixes(classes: &[Class], at_least: usize) -> String {
    let (optional, mandatory) = classes.split_at(classes.len() - at_least);
    let mut out = String::new();
    if let Some(&first) = optional.first() {
        if optional.iter().all(|&c| c == first) {
            out = class(first) + at_most(optional.len()).as_str();
        } else {
            for c in optional {
                out = format!("(?:{out}{})?", class(*c));
            }
        }
    }
    out + concat(mandatory).as_str()
}

/// Any prefix of `classes` that is at least `at_least` long: trailing classes may be left out.
fn prefixes(classes: &[Class], at_least: usize) -> String {
    let (mandatory, optional) = classes.split_at(at_least);
    let mut tail = String::new();
    if let Some(&first) = optional.first() {
        if optional.iter().all(|&c| c == first) {
            tail = class(first) + at_most(optional.len()).as_str();
        } else {
            for c in optional.iter().rev() {
                tail = format!("(?:{}{tail})?", class(*c));
            }
        }
    }
    concat(mandatory) + tail.as_str()
}

/// The strings of the shape whose padding fits `piece` (`whole` digits, then the fraction).
fn piece_pattern(piece: &[Class], whole: usize) -> Option<String> {
    let (integer, fraction) = piece.split_at(whole);
    let zero = |c: &&Class| c.0 == 0;
    let integer = if whole == 0 {
        // No digits before the point: the shape writes it as `0`.
        "0".to_owned()
    } else {
        // A shorter whole part is one whose padding (leading zeros) the piece allows.
        let padded = integer.iter().take_while(zero).count();
        let at_least = (whole - padded).max(1);
        if at_least > whole {
            return None;
        }
        suffixes(integer, at_least)
    };
    if fraction.is_empty() {
        return Some(integer);
    }
    // A shorter fraction is one whose padding (trailing zeros) the piece allows; none at all
    // when every digit may be zero.
    let padded = fraction.iter().rev().take_while(zero).count();
    let at_least = fraction.len() - padded;
    let fraction = if at_least == 0 {
        format!("(?:\\.{})?", prefixes(fraction, 1))
    } else {
        format!("\\.{}", prefixes(fraction, at_least))
    };
    Some(integer + fraction.as_str())
}

/// The alternatives for magnitudes from `low` to `high` (scaled, both ≥ 0).
fn magnitudes(low: i128, high: i128, whole: usize, scale: usize) -> Vec<String> {
    if low > high {
        return Vec::new();
    }
    let width = whole + scale;
    let (low, high) = (digits(low, width), digits(high, width));
    pieces(&low, &high)
        .into_iter()
        .filter_map(|piece| piece_pattern(&piece, whole))
        .collect()
}

/// The pattern of the decimal strings of `precision` and `scale` that `bounds` allow, or `None`
/// when the plain shape already says everything (no bounds, or only a lower bound of zero that
/// leaves out the sign) or the range is too wide to work out.
pub(super) fn bounded_pattern(
    precision: Option<u32>,
    scale: Option<u32>,
    signed: bool,
    bounds: &NumberType,
) -> Option<String> {
    let minimum_zero = bounds
        .minimum
        .as_ref()
        .is_some_and(|n| scaled(n, 0, true) == Some(0) && scaled(n, 0, false) == Some(0));
    let only_sign = bounds.maximum.is_none()
        && bounds.exclusive_maximum.is_none()
        && bounds.exclusive_minimum.is_none()
        && (bounds.minimum.is_none() || minimum_zero);
    if only_sign {
        return None;
    }
    let scale = scale.unwrap_or(14);
    let whole = precision.map(|p| p.saturating_sub(scale)).unwrap_or(14);
    if whole + scale > MAX_DIGITS {
        return None;
    }
    let largest = 10i128.pow(whole + scale) - 1;
    let (low, high) = range(bounds, scale, largest)?;
    let (whole, scale) = (whole as usize, scale as usize);
    let mut alternatives = magnitudes(low.max(0), high, whole, scale);
    // A minus sign is part of the shape only where the bounds let values go below zero; `-0`
    // is zero then.
    if signed && low <= 0 {
        let negative = magnitudes((-high).max(0), -low, whole, scale);
        if !negative.is_empty() {
            alternatives.push(format!("-(?:{})", negative.join("|")));
        }
    }
    if alternatives.is_empty() {
        // Nothing is allowed: a pattern no string matches.
        return Some("^[^\\s\\S]$".to_owned());
    }
    Some(format!("^(?:{})$", alternatives.join("|")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::decimal_pattern;

    /// The exact value of a string of the shape, scaled.
    fn value(text: &str, scale: u32) -> i128 {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let padded = format!("{fraction:0<width$}", width = scale as usize);
        let magnitude: i128 = format!("{whole}{padded}").parse().unwrap();
        if negative { -magnitude } else { magnitude }
    }

    /// Every string of the shape: whole parts of 1..=`whole` digits (leading zeros too), each
    /// fraction of 0..=`scale` digits, with and without a sign.
    fn strings(whole: u32, scale: u32) -> Vec<String> {
        fn all(length: u32) -> Vec<String> {
            (0..10u32.pow(length))
                .map(|n| format!("{n:0width$}", width = length as usize))
                .collect()
        }
        let wholes: Vec<String> = if whole == 0 {
            vec!["0".to_owned()]
        } else {
            (1..=whole).flat_map(all).collect()
        };
        let fractions: Vec<String> = std::iter::once(String::new())
            .chain((1..=scale).flat_map(all).map(|f| format!(".{f}")))
            .collect();
        let mut out = Vec::new();
        for w in &wholes {
            for f in &fractions {
                out.push(format!("{w}{f}"));
                out.push(format!("-{w}{f}"));
            }
        }
        out
    }

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn bounded_patterns_match_exactly_the_strings_of_the_shape_within_the_bounds() {
        // (name, minimum, maximum, exclusiveMinimum, exclusiveMaximum)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            ("max", None, Some("7.5"), None, None),
            ("min", Some("1"), None, None, None),
            ("min and max", Some("-2.25"), Some("13.1"), None, None),
            ("exclusive", None, None, Some("0"), Some("99.99")),
            ("between cents", Some("0.005"), Some("0.125"), None, None),
            ("negative only", None, Some("-0.5"), None, None),
            ("exponent", Some("-1e1"), Some("2.5e0"), None, None),
            ("everything", Some("-1000"), Some("1000"), None, None),
            ("nothing", Some("5"), Some("4"), None, None),
            ("min zero, max", Some("0"), Some("42"), None, None),
        ];
        for (whole, scale) in [(2u32, 2u32), (3, 0), (0, 2), (2, 1)] {
            let precision = Some(whole + scale);
            let strings = strings(whole, scale);
            for (name, minimum, maximum, exclusive_minimum, exclusive_maximum) in cases {
                let bounds = NumberType {
                    bits: 64,
                    minimum: minimum.map(number),
                    maximum: maximum.map(number),
                    exclusive_minimum: exclusive_minimum.map(number),
                    exclusive_maximum: exclusive_maximum.map(number),
                    multiple_of: None,
                };
                let non_negative = |n: &Option<serde_json::Number>| {
                    n.as_ref()
                        .and_then(serde_json::Number::as_f64)
                        .is_some_and(|v| v >= 0.0)
                };
                let signed =
                    !(non_negative(&bounds.minimum) || non_negative(&bounds.exclusive_minimum));
                let shape =
                    regex::Regex::new(&decimal_pattern(precision, Some(scale), signed)).unwrap();
                let pattern = bounded_pattern(precision, Some(scale), signed, &bounds)
                    .unwrap_or_else(|| panic!("{name}: bounds need a pattern"));
                let bounded = regex::Regex::new(&pattern).unwrap();
                let within = |v: i128| {
                    let s = |n: &Option<serde_json::Number>| {
                        n.as_ref().map(|n| n.to_string().parse::<f64>().unwrap())
                    };
                    let x = v as f64 / 10f64.powi(scale as i32);
                    s(&bounds.minimum).is_none_or(|m| x >= m)
                        && s(&bounds.maximum).is_none_or(|m| x <= m)
                        && s(&bounds.exclusive_minimum).is_none_or(|m| x > m)
                        && s(&bounds.exclusive_maximum).is_none_or(|m| x < m)
                };
                for text in &strings {
                    let expected = shape.is_match(text) && within(value(text, scale));
                    assert_eq!(
                        bounded.is_match(text),
                        expected,
                        "{name}, {whole}+{scale} digits: `{text}` against {pattern}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_sign_or_no_bound_needs_no_pattern() {
        let zero = NumberType {
            bits: 64,
            minimum: Some(number("0")),
            ..NumberType::default()
        };
        assert_eq!(bounded_pattern(Some(10), Some(2), false, &zero), None);
        assert_eq!(
            bounded_pattern(Some(10), Some(2), true, &NumberType::default()),
            None
        );
    }
}
