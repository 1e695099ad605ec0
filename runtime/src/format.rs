//! The string formats both ends assert identically: the server here, the browser in the
//! generated `src/services/validate.ts`, which implements the same definitions. A shared corpus
//! (`format.cases.json`) runs through both.
//!
//! JSON Schema leaves a format's exact meaning to each validator, and validators differ (one
//! accepts quoted e-mail local parts, another IP literals). Pinning the definitions is what lets a
//! form reject exactly what the server would. Formats not listed here are asserted by the server
//! alone.

use std::sync::LazyLock;

use regex::Regex;

/// A format's check: whether a string is of the format.
pub type Check = fn(&str) -> bool;

/// The formats with a pinned definition, and their checks.
pub const PINNED: &[(&str, Check)] = &[
    ("date", is_date),
    ("date-time", is_date_time),
    ("time", is_time),
    ("email", is_email),
    ("hostname", is_hostname),
    ("ipv4", is_ipv4),
    ("uri", is_uri),
    ("uuid", is_uuid),
    ("decimal", is_decimal),
];

fn pattern(cell: &'static LazyLock<Regex>, text: &str) -> bool {
    cell.is_match(text)
}

/// `email`: the HTML living standard's "valid e-mail address", which browsers check for
/// `<input type=email>`: no quoted local parts, no IP literals.
pub fn is_email(text: &str) -> bool {
    static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$",
        )
        .expect("the e-mail pattern")
    });
    pattern(&EMAIL, text)
}

/// `uri`: an absolute URI (RFC 3986): a scheme, a colon, then only characters a URI may hold,
/// with every `%` starting an escape of two hex digits.
pub fn is_uri(text: &str) -> bool {
    static URI: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$",
        )
        .expect("the URI pattern")
    });
    pattern(&URI, text)
}

/// `uuid`: 32 hex digits in the 8-4-4-4-12 groups, of either case.
pub fn is_uuid(text: &str) -> bool {
    static UUID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
            .expect("the UUID pattern")
    });
    pattern(&UUID, text)
}

/// `ipv4`: four decimal octets, without leading zeros.
pub fn is_ipv4(text: &str) -> bool {
    let octets: Vec<&str> = text.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && (o.len() == 1 || !o.starts_with('0'))
                && o.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// `hostname` (RFC 1123): at most 253 characters of dot-separated labels, each 1 to 63 letters,
/// digits and hyphens, not starting or ending with a hyphen; no trailing dot.
pub fn is_hostname(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `date` (RFC 3339 full-date): `YYYY-MM-DD`, a day that exists in that month and year.
pub fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || !text.is_ascii() || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (
        digits(&text[0..4]),
        digits(&text[5..7]),
        digits(&text[8..10]),
    ) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let last = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=last).contains(&day)
}

/// `time` (RFC 3339 full-time): `HH:MM:SS`, an optional fraction, then `Z` or an offset. A
/// leap second (`:60`) is a time only where it is 23:59:60 in UTC.
pub fn is_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() < 9 || !text.is_ascii() || bytes[2] != b':' || bytes[5] != b':' {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) = (
        digits(&text[0..2]),
        digits(&text[3..5]),
        digits(&text[6..8]),
    ) else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &text[8..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return false;
        }
        rest = &fraction[length..];
    }
    let utc_minutes = if rest == "Z" || rest == "z" {
        hour * 60 + minute
    } else {
        let rb = rest.as_bytes();
        if rb.len() != 6 || !(rb[0] == b'+' || rb[0] == b'-') || rb[3] != b':' {
            return false;
        }
        let (Some(oh), Some(om)) = (digits(&rest[1..3]), digits(&rest[4..6])) else {
            return false;
        };
        if oh > 23 || om > 59 {
            return false;
        }
        let offset = (oh * 60 + om) as i64;
        let local = (hour * 60 + minute) as i64;
        let utc = if rb[0] == b'+' {
            local - offset
        } else {
            local + offset
        };
        utc.rem_euclid(24 * 60) as u32
    };
    second != 60 || utc_minutes == 23 * 60 + 59
}

/// `date-time` (RFC 3339): a date, `T` (or `t`), a time.
pub fn is_date_time(text: &str) -> bool {
    match text.find(['T', 't']) {
        Some(at) => is_date(&text[..at]) && is_time(&text[at + 1..]),
        None => false,
    }
}

/// `decimal`: an optional minus, digits, and an optional point followed by digits.
pub fn is_decimal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The corpus the browser's checks run through too (`apps/crm/src/tests/validate.test.ts`).
    #[test]
    fn every_pinned_format_agrees_with_the_shared_corpus() {
        let cases: Value = serde_json::from_str(include_str!("format.cases.json")).unwrap();
        let mut count = 0;
        for (format, check) in super::PINNED {
            let table = &cases[*format];
            assert!(table.is_object(), "the corpus covers `{format}`");
            for (verdict, expected) in [("valid", true), ("invalid", false)] {
                let texts = table[verdict].as_array().unwrap();
                assert!(!texts.is_empty(), "`{format}` has {verdict} cases");
                for text in texts {
                    let text = text.as_str().unwrap();
                    assert_eq!(
                        check(text),
                        expected,
                        "{format}: {text:?} should be {verdict}"
                    );
                    count += 1;
                }
            }
        }
        assert!(count > 80, "{count} cases");
    }
}
