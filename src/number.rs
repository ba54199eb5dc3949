//! JSON numbers held exactly. serde_json keeps a whole number that fits `i64` or `u64` as that
//! integer and reads every other number as the nearest `f64`, so `100.000000000000001` would
//! silently become `100`, and a cap and a value that differ could compare equal. These rules
//! close that gap:
//!
//! - A number is read without loss when it is a whole number within 64 bits, or when its value
//!   is that of the shortest spelling of the `f64` it becomes, as ryu (serde_json, and
//!   JavaScript's rule) prints it: at a tie between two, the even one (`59.97000000000001`,
//!   `1.5e-7`, `0.10` are; `100.000000000000001` and `-1e-400` are not), or, for a whole float,
//!   its exact value written out (`4611686018427840512.0`, 2^70 in its 22 digits). Every such
//!   value names one `f64`, and no two values that differ are read as one.
//! - From 2^53 to 2^64 (from -2^63 below zero), where 64-bit integers lie between the floats,
//!   every float is a whole number, and its shortest spelling may say another one
//!   (`4.61168601842784e18` holds 4611686018427840512). A program's JSON ([`exact_json`])
//!   keeps such a float as the whole number it holds: that is the value of the sender's own
//!   float, and it is what is then shown, compared and stored. What a person types ([`exact`])
//!   must spell that whole number, or it is refused: keeping another number than the one typed
//!   would change what they decided.
//! - [`cmp`]: a whole number and a float are ordered by their exact values, not by rounding the
//!   integer to a float first.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Number;

/// Orders two JSON numbers by their exact values.
pub(crate) fn cmp(a: &Number, b: &Number) -> Ordering {
    match (whole(a), whole(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => cmp_whole_float(x, float(b)),
        (None, Some(y)) => cmp_whole_float(y, float(a)).reverse(),
        (None, None) => cmp_floats(float(a), float(b)),
    }
}

/// The integer serde_json holds, if it holds one.
fn whole(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// A number serde_json holds as a float. JSON has no NaN or infinity, so it is always finite.
fn float(n: &Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// `-0.0` and `0.0` are equal, as JSON reads them.
fn cmp_floats(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Orders an integer (from `i64` or `u64`) and a finite float exactly: by the float's whole
/// part, which every `f64` of this size holds exactly, then by its fraction.
fn cmp_whole_float(i: i128, f: f64) -> Ordering {
    const BEYOND: f64 = 1.7e38; // more than any i128, far more than any i64 or u64
    let t = f.trunc();
    if t >= BEYOND {
        return Ordering::Less;
    }
    if t <= -BEYOND {
        return Ordering::Greater;
    }
    match i.cmp(&(t as i128)) {
        Ordering::Equal => cmp_floats(t, f),
        unequal => unequal,
    }
}

/// How a number's text is read (see the module's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Without loss, and kept as written.
    Exact,
    /// Without loss, as a float of 2^53 to 2^64: the whole number it holds.
    Whole(i128),
    /// Rounded: another number than the text says.
    Inexact,
}

/// Why the number a person typed as `text` would not be kept as typed, in their words; `None`
/// when it is (see [`exact`]).
pub(crate) fn typed_refusal(text: &str) -> Option<String> {
    if exact(text) {
        return None;
    }
    let Some(read) = read_as(text) else {
        return Some("is not a number".into());
    };
    Some(match reading(text) {
        Reading::Whole(_) => {
            format!("would be read as {read}; type the whole number you mean in digits")
        }
        _ => format!(
            "has more digits than can be kept: it would be read as {read}; type fewer digits"
        ),
    })
}

/// Whether the number a person typed as `text` is kept as exactly that number (see the
/// module's rules). `text` is JSON's number grammar, also with a leading `+`, `.5` or `5.`.
fn exact(text: &str) -> bool {
    // `parse` also reads `inf` and `NaN`, which have no digits.
    let number =
        text.parse::<f64>().is_ok_and(f64::is_finite) && text.bytes().any(|b| b.is_ascii_digit());
    number
        && match reading(text) {
            Reading::Exact => true,
            Reading::Whole(held) => decimal(&held.to_string()) == decimal(text),
            Reading::Inexact => false,
        }
}

/// How the text of a number is read: the fast paths need no parsing.
fn reading(text: &str) -> Reading {
    // The mantissa's digits (leading zeros too) and those before its point; the exponent's
    // sign and value (capped).
    let (mut digits, mut int_digits, mut point) = (0u32, 0u32, false);
    let mut exponent: Option<(bool, u32)> = None;
    for b in text.bytes() {
        match (b, &mut exponent) {
            (b'0'..=b'9', Some((_, e))) => *e = (*e * 10 + u32::from(b - b'0')).min(1_000_000),
            (b'0'..=b'9', None) => {
                digits += 1;
                int_digits += u32::from(!point);
            }
            (b'.', _) => point = true,
            (b'e' | b'E', _) => exponent = Some((false, 0)),
            (b'-', Some((negative, _))) => *negative = true,
            _ => {}
        }
    }
    // Up to 15 significant digits always read back from an f64 in its normal range. With at
    // most 15 digits, a value below 1e15 (under 2^53, where every whole number is exact) and an
    // exponent of at least -280 lies in that range. A whole number of up to 18 digits fits i64.
    let small = match exponent {
        None => true,
        Some((true, e)) => e <= 280,
        Some((false, e)) => int_digits + e <= 15,
    };
    if digits <= 15 && small {
        return Reading::Exact;
    }
    let whole = !point && exponent.is_none();
    if whole && (digits <= 18 || text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()) {
        return Reading::Exact;
    }
    read_back(text)
}

/// The full check, for text that is not a 64-bit integer: the float it is read as has the
/// text's value as its shortest spelling or, when whole, as its exact value; from 2^53 to 2^64
/// it is then read as the whole number it holds.
fn read_back(text: &str) -> Reading {
    let Ok(f) = text.parse::<f64>() else {
        return Reading::Inexact;
    };
    let value = decimal(text);
    if !f.is_finite() || value.is_none() {
        return Reading::Inexact;
    }
    let held = big_whole(f);
    // A whole float's exact value written out (`4611686018427840512.0`, 2^70 in digits).
    let says_held = || f.fract() == 0.0 && decimal(&format!("{f:.0}")) == value;
    if decimal(ryu::Buffer::new().format_finite(f)) != value && !says_held() {
        return Reading::Inexact;
    }
    held.map_or(Reading::Exact, Reading::Whole)
}

/// For a float of 2^53 to 2^64 in size, among the 64-bit integers (from -2^63), the whole
/// number it holds: its shortest spelling may say another (`4.61168601842784e18` holds
/// 4611686018427840512), and integers, which are compared with it exactly, lie between the two.
fn big_whole(f: f64) -> Option<i128> {
    const TWO_53: f64 = 9_007_199_254_740_992.0;
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    // Every float of this size is whole, and `as` is exact for it.
    (f.abs() >= TWO_53 && (-TWO_63..TWO_64).contains(&f)).then_some(f as i128)
}

/// A program's JSON text `json` (serde has parsed it) with every number read without loss:
/// as it is, or, when a float of 2^53 to 2^64 is in it, with each such float written as the
/// whole number it holds (see the module's rules). Else the first number that would be
/// rounded, as written.
pub(crate) fn exact_json(json: &[u8]) -> Result<Cow<'_, [u8]>, &str> {
    let mut whole = None;
    for (at, token) in number_tokens(json) {
        match reading(token) {
            Reading::Exact => {}
            Reading::Inexact => return Err(token),
            Reading::Whole(held) => whole.get_or_insert_with(Vec::new).push((at, token, held)),
        }
    }
    let Some(whole) = whole else {
        return Ok(Cow::Borrowed(json));
    };
    let mut out = Vec::with_capacity(json.len() + 8 * whole.len());
    let mut from = 0;
    for (at, token, held) in whole {
        out.extend_from_slice(&json[from..at]);
        out.extend_from_slice(held.to_string().as_bytes());
        from = at + token.len();
    }
    out.extend_from_slice(&json[from..]);
    Ok(Cow::Owned(out))
}

/// A program's JSON text read by `parse` with every number read without loss
/// ([`exact_json`]); a number that would be rounded is the error `inexact` makes of its
/// sentence. `parse` runs first, so a text that is not JSON says so; a second time only when a
/// float had to be written as its whole number.
pub(crate) fn parse_exact<T, E>(
    json: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, E>,
    inexact: impl FnOnce(String) -> E,
) -> Result<T, E> {
    let parsed = parse(json)?;
    match exact_json(json) {
        Ok(Cow::Borrowed(_)) => Ok(parsed),
        Ok(Cow::Owned(whole)) => parse(&whole),
        Err(n) => Err(inexact(inexact_message(n))),
    }
}

/// The number tokens of `json`, each with the offset it starts at. `json` should be valid JSON:
/// outside strings, a number is the only token that starts with `-` or a digit. Other bytes
/// end the scan or yield what looks like a number, but never panic.
fn number_tokens(json: &[u8]) -> impl Iterator<Item = (usize, &str)> {
    let number_byte = |b: &u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < json.len() {
            match json[i] {
                b'"' => {
                    // To the closing quote, past escapes (`\"` among them).
                    i += 1;
                    loop {
                        match json
                            .get(i..)
                            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                        {
                            Some(at) if json[i + at] == b'\\' => i += at + 2,
                            Some(at) => break i += at + 1,
                            None => {
                                i = json.len();
                                return None;
                            }
                        }
                    }
                }
                b'-' | b'0'..=b'9' => {
                    let at = i;
                    let len = json[i..].iter().take_while(|b| number_byte(b)).count();
                    i += len;
                    // A number token is ASCII, so this slice is text.
                    return Some((at, std::str::from_utf8(&json[at..i]).unwrap_or_default()));
                }
                _ => i += 1,
            }
        }
        None
    })
}

/// The sentence for a number that [`exact_json`] refuses: what it would have been read as.
fn inexact_message(text: &str) -> String {
    let Some(read) = read_as(text) else {
        return format!("the number {text} cannot be held as a 64-bit float; send it as a string");
    };
    format!(
        "the number {text} cannot be held exactly as a 64-bit float: it would be read as {read}; \
         send it with fewer digits"
    )
}

/// The number `text` is read as, as it is then shown: from 2^53 to 2^64, the whole number the
/// float holds. `None` when it is no finite float.
fn read_as(text: &str) -> Option<String> {
    let f = text.parse::<f64>().ok()?;
    match big_whole(f) {
        Some(held) => Some(held.to_string()),
        None => Number::from_f64(f).map(|n| n.to_string()),
    }
}

/// The digits of the whole number that decimal text spells (`"9007199254740993.0"`,
/// `"-1.2e3"`, `"0.0"` is `"0"`), read exactly rather than through a float; `None` for text
/// that is not a decimal number, has a fraction, or has more than 400 digits.
pub(crate) fn whole_digits(text: &str) -> Option<String> {
    let d = decimal(text)?;
    // Whole when its last significant digit stands for a power of ten of 0 or more.
    let digits = d.int.len() + d.frac.len();
    if d.power < 0 || digits as i64 + d.power > 400 {
        return None;
    }
    if digits == 0 {
        return Some("0".into());
    }
    let sign = if d.negative { "-" } else { "" };
    let zeros = "0".repeat(d.power as usize);
    Some(format!("{sign}{}{}{zeros}", d.int, d.frac))
}

/// A number as a person reads it: every digit in its place, no exponent and no `.0`
/// (`1e3` is 1000, `1.5e-7` is 0.00000015, `-1000000.0` is -1000000), by the digits of its
/// shortest spelling, which read back as the same float. Below 2^64 in magnitude, where a whole
/// number written out would be read as that integer, a whole float is written as the exact
/// whole number it holds, as [`cmp`] compares it (`4.61168601842784e18` is
/// 4611686018427840512, not 4611686018427840000).
pub(crate) fn positional(n: &Number) -> String {
    if n.is_f64() {
        match n.as_f64() {
            Some(0.0) => return "0".into(),
            Some(f) if f.fract() == 0.0 && f.abs() < 18_446_744_073_709_551_616.0 => {
                return format!("{f:.0}");
            }
            _ => {}
        }
    }
    let Some((sign, digits, power)) = shortest(n) else {
        return n.to_string();
    };
    if digits.is_empty() {
        return "0".into();
    }
    // Digits before the point: all of them, then as many zeros as the power of ten says.
    let before = digits.len() as i64 + power;
    if power >= 0 {
        format!("{sign}{digits}{}", "0".repeat(power as usize))
    } else if before > 0 {
        let (whole, fraction) = digits.split_at(before as usize);
        format!("{sign}{whole}.{fraction}")
    } else {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(before.unsigned_abs() as usize)
        )
    }
}

/// A number for a person: [`positional`] while that is at most 24 characters, else its
/// shortest digits times a power of ten in words (`5 × 10^-324`,
/// `1.7976931348623157 × 10^308`), which no one would misread as a small number and no screen
/// has to wrap over six lines.
pub(crate) fn for_people(n: &Number) -> String {
    let plain = positional(n);
    if plain.len() <= 24 {
        return plain;
    }
    let Some((sign, digits, power)) = shortest(n) else {
        return plain;
    };
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let power = power + rest.len() as i64;
    let point = if rest.is_empty() { "" } else { "." };
    format!("{sign}{first}{point}{rest} × 10^{power}")
}

/// The sign, significant digits and power of ten of the last digit of `n`'s JSON spelling (the
/// shortest for a float): `1.5e-7` is `("", "15", -8)`; zero has no digits.
fn shortest(n: &Number) -> Option<(&'static str, String, i64)> {
    let text = n.to_string();
    let d = decimal(&text)?;
    let sign = if d.negative { "-" } else { "" };
    Some((sign, format!("{}{}", d.int, d.frac), d.power))
}

/// The 64-bit integer that decimal text spells (`7`, `+7`, `-1.2e3`, `4611686018427840512.0`),
/// if it spells one.
pub(crate) fn integer(text: &str) -> Option<Number> {
    let digits = whole_digits(text)?;
    digits
        .parse::<i64>()
        .map(Number::from)
        .or_else(|_| digits.parse::<u64>().map(Number::from))
        .ok()
}

/// A decimal number's value: its significant digits (`int` then `frac`, no leading or trailing
/// zeros), the power of ten of the last one, and its sign. Zero has no digits and no sign.
#[derive(Debug, Clone, Copy)]
struct Decimal<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    power: i64,
}

impl PartialEq for Decimal<'_> {
    fn eq(&self, other: &Self) -> bool {
        let digits = |d: &Self| d.int.bytes().chain(d.frac.bytes());
        self.negative == other.negative
            && self.power == other.power
            && self.int.len() + self.frac.len() == other.int.len() + other.frac.len()
            && digits(self).eq(digits(other))
    }
}

/// The value of decimal text (`-12.50e3`, `+.5`); `None` for text that is not a decimal number.
fn decimal(text: &str) -> Option<Decimal<'_>> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let mut power = match exponent {
        None => 0,
        Some(e) => {
            let (sign, e) = match e.as_bytes().first() {
                Some(b'-') => (-1, &e[1..]),
                Some(b'+') => (1, &e[1..]),
                _ => (1, e),
            };
            if e.is_empty() || !all_digits(e) {
                return None;
            }
            // Beyond any f64, and small enough that the arithmetic below cannot overflow.
            let e = e.bytes().fold(0i64, |acc, b| {
                (acc * 10 + i64::from(b - b'0')).min(1_000_000)
            });
            sign * e
        }
    };
    power -= frac.len() as i64;
    // Trailing zeros: of the fraction, and of the whole part when the fraction is all zeros.
    let trimmed = frac.trim_end_matches('0');
    power += (frac.len() - trimmed.len()) as i64;
    let (mut int, mut frac) = (int, trimmed);
    if frac.is_empty() {
        let trimmed = int.trim_end_matches('0');
        power += (int.len() - trimmed.len()) as i64;
        int = trimmed;
    }
    // Leading zeros: of the whole part, and of the fraction when the whole part is all zeros.
    int = int.trim_start_matches('0');
    if int.is_empty() {
        frac = frac.trim_start_matches('0');
    }
    if int.is_empty() && frac.is_empty() {
        return Some(Decimal {
            negative: false,
            int: "",
            frac: "",
            power: 0,
        });
    }
    Some(Decimal {
        negative,
        int,
        frac,
        power,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn number(text: &str) -> Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn numbers_read_without_loss_are_exact() {
        for text in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "100",
            "100.0",
            "100.50",
            "1e2",
            "1E+2",
            "1.5e-7",
            "0.1",
            "0.30000000000000004",
            "59.97000000000001",
            "9007199254740993",
            "-9223372036854775808",
            "18446744073709551615",
            "1.7976931348623157e308",
            "5e-324",
            "2.2250738585072014e-308",
            "0e999999999999999999",
            "123456789012345678",
            "+5",
            ".5",
            "5.",
            // Floats of 2^53 to 2^64 whose shortest spelling is the whole number they hold.
            "9007199254740996.0",
            "9.007199254740996e15",
            "1e19",
            "-1e16",
            // Whole floats whose exact value is written out, though not as the shortest spelling.
            "4611686018427840512.0",
            "4.611686018427840512e18",
            "-439999558299931050508288",
            "1180591620717411303424",
            // A float exactly halfway between two shortest spellings: the even one, as ryu and
            // JavaScript print it.
            "-1764715078036667.2",
        ] {
            assert!(exact(text), "{text}");
        }
    }

    #[test]
    fn numbers_that_would_be_rounded_are_not() {
        for text in [
            "100.000000000000001",
            "0.10000000000000001",
            "9007199254740993.0",
            "9.007199254740993e15",
            "18446744073709551617",
            "-9223372036854775809",
            "99999999999999999999",
            "-1e-400",
            "1e-400",
            "0.00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001",
            "1e400",
            "",
            "-",
            "1e",
            "abc",
            "1.2.3",
            // Shortest spellings that say another number than the float holds (…840512).
            "4.61168601842784e18",
            "4611686018427840000.0",
            "-4.61168601842784e18",
            "-1764715078036667.3",
        ] {
            assert!(!exact(text), "{text}");
        }
    }

    #[test]
    fn the_first_inexact_number_outside_strings_is_found() {
        let cases: [(&str, Option<&str>); 7] = [
            (r#"{"a":1,"b":[2.5,-3e2]}"#, None),
            (
                r#"{"a":"100.000000000000001","b":100.000000000000001}"#,
                Some("100.000000000000001"),
            ),
            (r#"{"s":"\"-1e-400\\","n":-1e-400}"#, Some("-1e-400")),
            (r#"{"1e-400":true}"#, None),
            (r#"[0.1, 0.10000000000000001]"#, Some("0.10000000000000001")),
            (r#"{"a":null,"b":false,"c":"x"}"#, None),
            (r#"18446744073709551617"#, Some("18446744073709551617")),
        ];
        for (json, want) in cases {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_ok(),
                "{json}"
            );
            assert_eq!(exact_json(json.as_bytes()).err(), want, "{json}");
        }
    }

    #[test]
    fn a_float_of_2_to_the_53_or_more_is_kept_as_the_whole_number_it_holds() {
        let json = r#"{"a":4.61168601842784e18,"4e18":"4.61168601842784e18","b":[-7.096887381336131e+16,1.5,9007199254740993]}"#;
        let want = r#"{"a":4611686018427840512,"4e18":"4.61168601842784e18","b":[-70968873813361312,1.5,9007199254740993]}"#;
        let kept = exact_json(json.as_bytes()).unwrap();
        assert_eq!(std::str::from_utf8(&kept), Ok(want));
        let plain = br#"{"a":1e19,"b":1.8446744073709552e19}"#;
        assert!(matches!(exact_json(plain), Ok(Cow::Owned(_))));
        let v: serde_json::Value = serde_json::from_slice(&exact_json(plain).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 10_000_000_000_000_000_000u64, "b": 1.8446744073709552e19})
        );
        let untouched = br#"{"a":9007199254740991.0,"b":-1e15}"#;
        assert!(matches!(exact_json(untouched), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn the_message_says_what_the_number_would_be_read_as() {
        let m = inexact_message("100.000000000000001");
        assert!(m.contains("would be read as 100.0"), "{m}");
        assert!(inexact_message("-1e-400").contains("would be read as -0.0"));
        // From 2^53, as the whole number the float holds.
        let m = inexact_message("4611686018427840000.5");
        assert!(m.contains("would be read as 4611686018427840512;"), "{m}");
    }

    #[test]
    fn whole_digits_are_the_number_spelled() {
        for (text, want) in [
            ("9007199254740993.0", Some("9007199254740993")),
            ("-1.2e3", Some("-1200")),
            ("+13.000", Some("13")),
            ("0.0", Some("0")),
            ("-0", Some("0")),
            ("1e20", Some("100000000000000000000")),
            ("9.007199254740993E15", Some("9007199254740993")),
            ("0.0012e4", Some("12")),
            ("120e-1", Some("12")),
            ("1.5", None),
            ("1e-1", None),
            ("1e401", None),
            ("13 ", None),
            ("abc", None),
        ] {
            assert_eq!(whole_digits(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn positional_writes_every_digit_in_its_place() {
        for (json, want) in [
            ("1e3", "1000"),
            ("1E+3", "1000"),
            ("1e21", "1000000000000000000000"),
            ("1.2345678901234567e25", "12345678901234566000000000"),
            ("4.61168601842784e18", "4611686018427840512"),
            ("1.5e-7", "0.00000015"),
            ("-1.5e-7", "-0.00000015"),
            ("-1000000.0", "-1000000"),
            ("-0.0", "0"),
            ("0", "0"),
            ("250", "250"),
            ("-13", "-13"),
            ("18446744073709551615", "18446744073709551615"),
            ("59.97000000000001", "59.97000000000001"),
            ("0.1", "0.1"),
            ("12.5", "12.5"),
            ("1.25e1", "12.5"),
            ("5e-324", &format!("0.{}5", "0".repeat(323))),
        ] {
            let n: Number = serde_json::from_str(json).unwrap();
            let shown = positional(&n);
            assert_eq!(shown, want, "{json}");
            // What is shown reads back as the same number.
            let back: Number = serde_json::from_str(&shown).unwrap();
            assert_eq!(cmp(&back, &n), Ordering::Equal, "{json} → {shown}");
        }
    }

    #[test]
    fn for_people_writes_long_numbers_with_a_power_of_ten() {
        for (json, want) in [
            ("1e21", "1000000000000000000000"),
            ("1e24", "1 × 10^24"),
            ("5e-324", "5 × 10^-324"),
            ("-1.7976931348623157e308", "-1.7976931348623157 × 10^308"),
            ("1.2345678901234567e25", "1.2345678901234566 × 10^25"),
            ("1.5e-7", "0.00000015"),
            ("18446744073709551615", "18446744073709551615"),
            ("1e308", "1 × 10^308"),
        ] {
            let n: Number = serde_json::from_str(json).unwrap();
            assert_eq!(for_people(&n), want, "{json}");
            // A 7-byte JSON token must not become 326 characters on the phone.
            assert!(for_people(&n).len() <= 64, "{json}: {}", for_people(&n));
        }
    }

    #[test]
    fn whole_numbers_and_floats_are_ordered_exactly() {
        let c = |a: &str, b: &str| cmp(&number(a), &number(b));
        // 9007199254740995 as f64 rounds to 9007199254740996: rounding first made these equal.
        assert_eq!(
            c("9007199254740995", "9.007199254740996e15"),
            Ordering::Less
        );
        assert_eq!(
            c("9.007199254740996e15", "9007199254740995"),
            Ordering::Greater
        );
        assert_eq!(
            c("9007199254740996", "9.007199254740996e15"),
            Ordering::Equal
        );
        assert_eq!(
            c("9223372036854775807", "9.223372036854775807e18"),
            Ordering::Less
        );
        assert_eq!(
            c("18446744073709551615", "1.8446744073709552e19"),
            Ordering::Less
        );
        assert_eq!(
            c("-9223372036854775808", "-9.223372036854775808e18"),
            Ordering::Equal
        );
        assert_eq!(c("1", "1.0"), Ordering::Equal);
        assert_eq!(c("1", "1.5"), Ordering::Less);
        assert_eq!(c("-1", "-1.5"), Ordering::Greater);
        assert_eq!(c("-1", "-0.5"), Ordering::Less);
        assert_eq!(c("0", "-0.0"), Ordering::Equal);
        assert_eq!(c("0", "1e-300"), Ordering::Less);
        assert_eq!(c("-5", "1e300"), Ordering::Less);
        assert_eq!(c("5", "-1e300"), Ordering::Greater);
        assert_eq!(c("-1", "18446744073709551615"), Ordering::Less);
    }

    /// Bodies built to make the scan and serde disagree about what is inside a string.
    #[test]
    fn the_scan_and_serde_agree_on_string_edges() {
        let deep = format!("{}0.10000000000000001{}", "[".repeat(120), "]".repeat(120));
        let cases: &[(&str, Option<&str>)] = &[
            // \u0022 is a quote only to serde's string decoder, not the end of the string.
            (r#"{"a":"\u0022,\"n\":100.000000000000001"}"#, None),
            (
                r#"{"a":"\u0022","n":100.000000000000001}"#,
                Some("100.000000000000001"),
            ),
            // \u005c (a backslash) does not escape the quote after it.
            (r#"{"a":"\u005c","n":-1e-400}"#, Some("-1e-400")),
            // Backslashes at the very end of a string.
            (r#"{"a":"\\","n":-1e-400}"#, Some("-1e-400")),
            (r#"{"a":"\\\\\\","n":-1e-400}"#, Some("-1e-400")),
            (r#"{"a":"\\\"","n":-1e-400}"#, Some("-1e-400")),
            // Keys that look like numbers; numbers right after a key's quote.
            (r#"{"100.000000000000001":1e1}"#, None),
            (r#"{"x":1e1,"1e-400":-1e-400}"#, Some("-1e-400")),
            // Multibyte text before and inside strings (0x22 never occurs inside a character).
            (
                "{\"\u{1F600}\u{0122}\u{2222}\":[\"\u{5C22}\u{FEFF}\\\\\"],\"n\":1e-400}",
                Some("1e-400"),
            ),
            // JSON white space of each kind around numbers.
            (
                "{\"n\" :\t[\r\n1e1 ,\n -0.0\r, 0.10000000000000001\t]}",
                Some("0.10000000000000001"),
            ),
            // Deep nesting (serde's limit is 128).
            (&deep, Some("0.10000000000000001")),
        ];
        for (json, want) in cases {
            assert!(serde_json::from_str::<Value>(json).is_ok(), "{json}");
            assert_eq!(exact_json(json.as_bytes()).err(), *want, "{json}");
        }
    }

    /// -0, 0, 0.0 and -0.0 are all zero: equal, exact, and not negative.
    #[test]
    fn negative_zero_is_zero() {
        for t in [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "0e5",
            "-0e-99999999999",
            "0e99999999999999999999",
        ] {
            assert!(exact(t), "{t}");
            let n = number(t);
            assert_eq!(cmp(&n, &number("0")), Ordering::Equal, "{t}");
            assert!(!n.as_f64().is_some_and(|f| f < 0.0), "{t}");
        }
    }

    /// Spellings of one value are read as it; huge exponents neither overflow the arithmetic
    /// nor pass a value that rounds to zero or infinity.
    #[test]
    fn exponents_are_read_exactly() {
        for (t, v) in [
            ("1e1", 10.0),
            ("1E+01", 10.0),
            ("1e-0", 1.0),
            ("10e-1", 1.0),
            ("1e0000000000000000000001", 10.0),
            (
                "0.00000000000000000000000000000000000000000000000000000001e56",
                1.0,
            ),
            ("5e-324", 5e-324),
            ("-5e-324", -5e-324),
        ] {
            assert!(exact(t), "{t}");
            assert_eq!(number(t).as_f64(), Some(v), "{t}");
        }
        for t in [
            "1e-99999999999",
            "1e99999999999",
            "-1e-99999999999999999999999",
            "1e309",
            "2.4703282292062328e-324", // just above half the smallest subnormal: read as 5e-324
            "2.4703282292062327e-324", // just below: read as 0
            "1.00000000000000000000000000001e0",
        ] {
            assert!(!exact(t), "{t}");
        }
        // The exponent is capped at a million; no mantissa within a body can pay that back.
        let long = format!("0.{}1e1000001", "0".repeat(999_999));
        assert_eq!(long.parse::<f64>(), Ok(0.0));
        assert!(!exact(&long));
    }

    /// Integers at the 64-bit edges, and the floats beside them.
    #[test]
    fn integers_at_the_edges() {
        for t in [
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551615",
            "9223372036854775808",
            "9223372036854775808.0",
        ] {
            assert!(exact(t), "{t}");
        }
        for t in [
            "18446744073709551617",
            "-9223372036854775809",
            "1.8446744073709551615e19",
            "9.007199254740993e15",
        ] {
            assert!(!exact(t), "{t}");
        }
        let c = |a: &str, b: &str| cmp(&number(a), &number(b));
        assert_eq!(
            c("9223372036854775807", "9.223372036854776e18"),
            Ordering::Less
        );
        assert_eq!(
            c("9223372036854775808", "9.223372036854776e18"),
            Ordering::Equal
        );
        assert_eq!(
            c("-9223372036854775807", "-9.223372036854776e18"),
            Ordering::Greater
        );
        assert_eq!(c("0", "5e-324"), Ordering::Less);
        assert_eq!(c("0", "-5e-324"), Ordering::Greater);
        assert_eq!(c("1", "1.0000000000000002"), Ordering::Less);
        assert_eq!(c("1", "0.9999999999999999"), Ordering::Greater);
    }

    /// Spellings of one value have one canonical text (so one binding of exact details); a
    /// whole number and a float of one value do not, but compare equal.
    #[test]
    fn spellings_and_their_canonical_text() {
        for t in [
            "1.5",
            "1.50",
            "15e-1",
            "0.15e1",
            "1.5E0",
            "1.500000000000000000000",
        ] {
            assert!(exact(t), "{t}");
            assert_eq!(number(t).to_string(), "1.5", "{t}");
        }
        assert_eq!(number("100").to_string(), "100");
        assert_eq!(number("1e2").to_string(), "100.0");
        assert_eq!(cmp(&number("100"), &number("1e2")), Ordering::Equal);
    }

    /// Number spellings for the random documents below: exact ones and refused ones.
    const SPELLINGS: &[&str] = &[
        "1",
        "-0",
        "0.0",
        "-0.0",
        "1e1",
        "1E+01",
        "1e-0",
        "0e99999999999999999999",
        "1e-99999999999",
        "100.000000000000001",
        "0.10000000000000001",
        "18446744073709551617",
        "-1e-400",
        "4.9e-324",
        "5e-324",
        "9007199254740993",
        "1.5",
        "1.50",
        "15e-1",
        "-9223372036854775809",
        "1e0000000000000000000001",
        // Kept as the whole numbers they hold.
        "4.61168601842784e18",
        "-7.096887381336131e+16",
        "9223372036854775808.0",
    ];

    #[derive(Debug, Clone)]
    enum Tree {
        Num(usize),
        Str(String, u8),
        List(Vec<Tree>),
        Obj(Vec<(String, u8, Tree)>),
    }

    fn tree() -> impl Strategy<Value = Tree> {
        let leaf = prop_oneof![
            (0..SPELLINGS.len()).prop_map(Tree::Num),
            (
                ".{0,8}|[\"\\\\/]{0,4}|\\\\u0022|1e-400|4.61168601842784e18",
                any::<u8>()
            )
                .prop_map(|(s, m)| Tree::Str(s, m)),
        ];
        leaf.prop_recursive(6, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Tree::List),
                proptest::collection::vec(
                    (
                        ".{0,6}|[\"\\\\]{1,3}|100.000000000000001",
                        any::<u8>(),
                        inner
                    ),
                    0..6
                )
                .prop_map(Tree::Obj),
            ]
        })
    }

    /// `v` with every float of 2^53 to 2^64 as the whole number it holds.
    fn made_whole(v: Value) -> Value {
        match v {
            Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()).and_then(big_whole) {
                Some(held) => serde_json::from_str(&held.to_string()).unwrap(),
                None => Value::Number(n),
            },
            Value::Array(items) => items.into_iter().map(made_whole).collect(),
            Value::Object(m) => {
                Value::Object(m.into_iter().map(|(k, v)| (k, made_whole(v))).collect())
            }
            other => other,
        }
    }

    /// A string as JSON, escaped one of three ways: as serde writes it, every unit as `\uXXXX`,
    /// or with `\/`.
    fn encode(s: &str, mode: u8) -> String {
        match mode % 3 {
            0 => serde_json::to_string(s).unwrap(),
            1 => {
                let units: String = s.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
                format!("\"{units}\"")
            }
            _ => serde_json::to_string(s).unwrap().replace('/', "\\/"),
        }
    }

    /// The text of `t` (white space from `ws`), and its number spellings in order.
    fn write(
        t: &Tree,
        ws: &mut impl Iterator<Item = &'static str>,
        out: &mut String,
        nums: &mut Vec<&'static str>,
    ) {
        out.push_str(ws.next().unwrap());
        match t {
            Tree::Num(i) => {
                out.push_str(SPELLINGS[*i]);
                nums.push(SPELLINGS[*i]);
            }
            Tree::Str(s, m) => out.push_str(&encode(s, *m)),
            Tree::List(items) => {
                out.push('[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    write(item, ws, out, nums);
                }
                out.push(']');
            }
            Tree::Obj(entries) => {
                out.push('{');
                for (k, (key, m, v)) in entries.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    out.push_str(&encode(&format!("{key}{k}"), *m));
                    out.push_str(ws.next().unwrap());
                    out.push(':');
                    write(v, ws, out, nums);
                }
                out.push('}');
            }
        }
        out.push_str(ws.next().unwrap());
    }

    proptest! {
        /// Random documents with strings escaped every way: the scan finds exactly the first
        /// number that would be rounded, in document order, and never a string's content; what
        /// it keeps reads as the document with each float of 2^53 or more as its whole number.
        #[test]
        fn the_scan_finds_the_first_refused_number_in_any_document(t in tree(), seed in any::<u64>()) {
            const WS: [&str; 6] = ["", " ", "\t", "\n", "\r", " \r\n\t"];
            let mut ws = (0u64..).map(move |i| WS[((seed >> (i % 61)) as usize ^ i as usize) % WS.len()]);
            let (mut text, mut nums) = (String::new(), Vec::new());
            write(&t, &mut ws, &mut text, &mut nums);
            let original = serde_json::from_str::<Value>(&text);
            prop_assert!(original.is_ok(), "{}", text);
            let refused = |n: &&str| !exact(n) && !matches!(reading(n), Reading::Whole(_));
            let want = nums.iter().copied().find(refused);
            let kept = exact_json(text.as_bytes());
            prop_assert_eq!(kept.as_ref().err().copied(), want, "{}", text);
            if let Ok(kept) = kept {
                let kept: Value = serde_json::from_slice(&kept).unwrap();
                prop_assert_eq!(kept, made_whole(original.unwrap()), "{}", text);
            }
        }

        /// `exact` judges the f64 that Rust's `parse` gives; the server keeps the one
        /// serde_json gives. They are one f64 for every spelling, also long ones that miss every
        /// fast path (leading zeros paid back by the exponent, trailing zeros, 17+ digits).
        #[test]
        fn rust_and_serde_read_every_spelling_as_one_f64(
            lead in 0usize..3000, digits in "[1-9][0-9]{0,40}", trail in 0usize..3000,
            shift in -330i64..330, neg in any::<bool>(),
        ) {
            let e = lead as i64 + shift;
            let sign = if neg { "-" } else { "" };
            let text = format!("{sign}0.{}{digits}{}e{e}", "0".repeat(lead), "0".repeat(trail));
            let rust = text.parse::<f64>().unwrap();
            match serde_json::from_str::<f64>(&text) {
                Ok(serde) => prop_assert_eq!(rust.to_bits(), serde.to_bits(), "{}", text),
                Err(_) => prop_assert!(!rust.is_finite() || !exact(&text), "{}", text),
            }
        }
    }

    proptest! {
        /// Every f64 as serde_json (ryu, like JavaScript) prints it is exact, and so is every
        /// i64 and u64; from 2^53 to 2^64, only the floats whose shortest spelling is the whole
        /// number they hold. Rust prints the same digits except at a tie between two shortest
        /// spellings (a float exactly halfway), where it may take the odd one.
        #[test]
        fn what_serializers_print_is_exact(bits in any::<u64>(), i in any::<i64>(), u in any::<u64>()) {
            let f = f64::from_bits(bits);
            if f.is_finite() {
                let printed = serde_json::to_string(&f).unwrap();
                let rust = format!("{f:e}");
                let tie = decimal(&rust) != decimal(ryu::Buffer::new().format_finite(f));
                let kept = exact_json(printed.as_bytes()).map(|k| String::from_utf8(k.into_owned()));
                match big_whole(f) {
                    Some(held) if !tie => {
                        let says_held = format!("{f}") == held.to_string();
                        prop_assert_eq!(exact(&printed), says_held, "{}", printed);
                        prop_assert_eq!(exact(&rust), says_held, "{}", rust);
                        prop_assert_eq!(kept, Ok(Ok(held.to_string())), "{}", printed);
                    }
                    Some(_) => {}
                    None => {
                        prop_assert!(exact(&printed), "{}", printed);
                        prop_assert_eq!(kept, Ok(Ok(printed.clone())));
                        prop_assert!(tie || exact(&rust), "{}", rust);
                        prop_assert!(tie || exact(&format!("{f}")), "{}", f);
                    }
                }
            }
            prop_assert!(exact(&i.to_string()));
            prop_assert!(exact(&u.to_string()));
        }

        /// The fast paths agree with the full check: for numbers of up to 15 digits with an
        /// exponent from -280 to 280 or none (the paths' edges), and for 64-bit integers.
        #[test]
        fn the_fast_paths_agree_with_the_full_check(
            m in 0u64..1_000_000_000_000_000,
            point in 0usize..16,
            exponent in proptest::option::of(-280i32..=280),
            i in any::<i64>(),
        ) {
            let s = format!("{m:015}");
            let text = format!("{}.{}", &s[..point], &s[point..]);
            let text = text.trim_start_matches('.');
            let text = match exponent {
                Some(e) => format!("{text}e{e}"),
                None => text.to_owned(),
            };
            prop_assert_eq!(reading(&text), read_back(&text), "{}", text);
            let point_zero = format!("{i}.0");
            prop_assert_eq!(reading(&point_zero), read_back(&point_zero), "{}", point_zero);
        }

        /// A digit added far past an f64's precision to a float's shortest spelling leaves the
        /// float as it was, and makes the spelling inexact.
        #[test]
        fn a_digit_past_the_precision_is_refused(bits in any::<u64>(), d in 1u8..10) {
            let f = f64::from_bits(bits);
            prop_assume!(f.is_finite() && f != 0.0);
            let e = format!("{f:e}");
            let (mantissa, exp) = e.split_once('e').unwrap();
            let point = if mantissa.contains('.') { "" } else { "." };
            let longer = format!("{mantissa}{point}{}{d}e{exp}", "0".repeat(20));
            prop_assume!(longer.parse::<f64>().unwrap() == f);
            prop_assert!(!exact(&longer), "{}", longer);
        }

        /// No bytes, valid JSON or not, make the scan panic or loop; what it finds is a number
        /// token of the input.
        #[test]
        fn the_scan_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Err(n) = exact_json(&bytes) {
                prop_assert!(n.bytes().all(|b| b"0123456789+-.eE".contains(&b)), "{}", n);
            }
        }

        /// The order of an integer and a float agrees with the order of their values, here an
        /// integer against the floats a few steps from it. Every float of magnitude 2^52 or
        /// more is whole; below that, the integer is itself an exact f64.
        #[test]
        fn integers_and_nearby_floats_are_ordered_by_value(i in any::<i64>(), steps in -3i64..4) {
            let f = f64::from_bits(((i as f64).to_bits() as i64).wrapping_add(steps) as u64);
            prop_assume!(f.is_finite());
            let want = if f.fract() == 0.0 {
                i128::from(i).cmp(&(f as i128))
            } else {
                prop_assume!(i.unsigned_abs() <= 1 << 53);
                (i as f64).partial_cmp(&f).unwrap()
            };
            let (a, b) = (Number::from(i), Number::from_f64(f).unwrap());
            prop_assert_eq!(cmp(&a, &b), want);
            prop_assert_eq!(cmp(&b, &a), want.reverse());
        }
    }
}
