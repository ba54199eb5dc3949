//! Numeric text as the readers of a protected service may take it. A blocked list compares a
//! number with text that spells it (`blocked_amount: [13]` blocks `"13"`), and readers take more
//! spellings than decimal ASCII:
//!
//! - digits of any script: Python's `int()` and `float()` and Java's `Integer.parseInt` read
//!   Unicode's decimal digits (`Nd`), so `"١٣"`, `"१३"` and `"１３"` are 13;
//! - `_` after the first digit: Python (`int("1_3")`) and YAML 1.1 (`13_`, `1__3`);
//! - a base prefix: `0x0d`, `0o15` and `0b1101` for JavaScript's `Number()`, Python's
//!   `int(text, 0)` and YAML 1.1, `#0d` for Java's `Integer.decode`; a leading zero as octal
//!   (`015` is 13 for C's `strtol` with base 0, Java's `Integer.decode` and YAML 1.1);
//! - hexadecimal floats (`0x1.ap3` is 13 for Java's `Double.parseDouble`, Go's `ParseFloat`,
//!   C's `strtod` and Python's `float.fromhex`), and Java's `d`/`f` suffix (`13d`);
//! - YAML 1.1's base 60 (`1:00` is 60).
//!
//! [`spellings`] gives the decimal text of each such reading. A blocked list then blocks a value
//! when any of them is blocked: it may block text that a stricter reader would not take as the
//! number (`"010"` is blocked by `[8]`), which is the safe side.

/// The zero of each run of ten decimal digits (Unicode's `Nd`, through Unicode 16), in order.
/// Every run holds its digits 0 to 9 at consecutive code points.
const ZEROS: [u32; 76] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450,
    0x114D0, 0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50,
    0x11D50, 0x11DA0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// The decimal digit `c` stands for in any script: `٣`, `३`, `３` and `𝟑` are 3.
fn decimal_digit(c: char) -> Option<u8> {
    let code = u32::from(c);
    let run = ZEROS.partition_point(|zero| *zero <= code).checked_sub(1)?;
    u8::try_from(code - ZEROS[run]).ok().filter(|d| *d < 10)
}

/// The decimal texts that readers may take `text` (trimmed, in lower case) for: the text itself,
/// its digits as ASCII, then without `_` after the first digit, then the number it spells with a
/// base prefix, a leading zero, as a hexadecimal float, with a `d`/`f` suffix or in base 60.
/// Texts a reader takes for no number come back too; the caller reads each as a number or not.
pub(super) fn spellings(text: &str) -> Vec<String> {
    let ascii: String = text
        .chars()
        .map(|c| decimal_digit(c).map_or(c, |d| char::from(b'0' + d)))
        .collect();
    let joined = without_digit_separators(&ascii);
    let mut out = vec![text.to_owned()];
    out.extend(in_base(&joined));
    out.extend(hex_float(&joined));
    out.extend(sexagesimal(&joined));
    if let Some(number) = joined.strip_suffix(['d', 'f'])
        && number.parse::<f64>().is_ok()
    {
        out.push(number.to_owned());
    }
    out.push(ascii);
    out.push(joined);
    out.sort();
    out.dedup();
    out
}

/// `text` without each `_` that comes after its first ASCII letter or digit (`1_3`, `13_`,
/// `1__3`, `0x_0d` lose theirs; `_13` keeps its own), as YAML 1.1 reads a number.
fn without_digit_separators(text: &str) -> String {
    let mut seen_digit = false;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '_' && seen_digit {
            continue;
        }
        seen_digit |= c.is_ascii_alphanumeric();
        out.push(c);
    }
    out
}

/// `text` without a sign, and the sign to put before its number.
fn signed(text: &str) -> (&'static str, &str) {
    match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    }
}

/// The decimal value of a hexadecimal float (`0x1.ap3`, `-0xd.0p0`, `0xd.`: hexadecimal digits,
/// an optional point, `p` and a decimal power of two, which a point makes optional), as the
/// float a reader makes of it.
fn hex_float(text: &str) -> Option<String> {
    let (sign, unsigned) = signed(text);
    let rest = unsigned.strip_prefix("0x")?;
    // C's strtod and Python's float.fromhex take a point without a power (`0xd.0`).
    let (mantissa, power) = match rest.split_once('p') {
        Some(split) => split,
        None if rest.contains('.') => (rest, "0"),
        None => return None,
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    if digits.is_empty() || digits.len() > 30 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let power: i32 = power.parse().ok().filter(|p: &i32| p.abs() <= 2000)?;
    let value = u128::from_str_radix(&digits, 16).ok()? as f64
        * 2f64.powi(power - 4 * i32::try_from(frac.len()).ok()?);
    value.is_finite().then(|| format!("{sign}{value}"))
}

/// The number of YAML 1.1's base 60 (`1:00` is 60, `1:02:03` is 3723, `1:00.5` is 60.5): a
/// first part of decimal digits, then parts of one or two digits below 60, joined by `:`, and a
/// decimal fraction after the last.
fn sexagesimal(text: &str) -> Option<String> {
    let (sign, unsigned) = signed(text);
    // YAML 1.1's base-60 float has a fraction after its last part (`1:00.5` is 60.5).
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction))
            if !fraction.is_empty() && fraction.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (whole, Some(fraction))
        }
        Some(_) => return None,
        None => (unsigned, None),
    };
    let mut parts = whole.split(':');
    let first = parts.next()?;
    if first.is_empty() || first.len() > 20 || !first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u128 = first.parse().ok()?;
    let mut any = false;
    for part in parts {
        let digit = part.parse::<u8>().ok().filter(|d| {
            (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit()) && *d < 60
        })?;
        n = n.checked_mul(60)?.checked_add(u128::from(digit))?;
        any = true;
    }
    any.then(|| match fraction {
        Some(fraction) => format!("{sign}{n}.{fraction}"),
        None if n == 0 => "0".to_owned(),
        None => format!("{sign}{n}"),
    })
}

/// The whole number, in decimal, that `text` spells with a base prefix (`0x`, `0o`, `0b`, `#`) or,
/// with a leading zero and only octal digits, in octal; a sign may come first. `None` for
/// anything else, or a number past 128 bits.
fn in_base(text: &str) -> Option<String> {
    let (sign, unsigned) = signed(text);
    let (radix, digits) = match unsigned.get(..2) {
        _ if unsigned.starts_with('#') => (16, &unsigned[1..]),
        Some("0x") => (16, &unsigned[2..]),
        Some("0o") => (8, &unsigned[2..]),
        Some("0b") => (2, &unsigned[2..]),
        _ if unsigned.len() > 1 && unsigned.starts_with('0') => (8, &unsigned[1..]),
        _ => return None,
    };
    // from_str_radix takes a sign of its own; the digits must not bring a second one.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = u128::from_str_radix(digits, radix).ok()?;
    Some(if n == 0 {
        "0".to_owned()
    } else {
        format!("{sign}{n}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_of_digits_is_ten_numeric_characters_in_order() {
        for pair in ZEROS.windows(2) {
            assert!(pair[0] + 10 <= pair[1], "runs overlap at {:#X}", pair[1]);
        }
        for zero in ZEROS {
            for d in 0..10u8 {
                let c = char::from_u32(zero + u32::from(d)).unwrap();
                assert!(c.is_numeric(), "{:#X} is not numeric", zero + u32::from(d));
                assert_eq!(decimal_digit(c), Some(d), "{c}");
            }
        }
        // Around the runs: the character after a 9, and numeric characters that are no digit.
        for c in ['\u{066A}', '\u{06FA}', '²', '½', 'Ⅻ', '〇', 'a', ' '] {
            assert_eq!(decimal_digit(c), None, "{c}");
        }
    }

    #[test]
    fn each_notation_spells_its_number() {
        let has = |text: &str, want: &str| {
            let found = spellings(text);
            assert!(found.iter().any(|s| s == want), "{text}: {found:?}");
        };
        for (text, want) in [
            ("13", "13"),
            ("١٣", "13"),
            ("۱۳", "13"),
            ("१३", "13"),
            ("１３", "13"),
            ("𝟏𝟑", "13"),
            ("1٣", "13"),
            ("١٣.٥", "13.5"),
            ("-١٣", "-13"),
            ("1_3", "13"),
            ("1_000_000", "1000000"),
            ("1_3.5_0", "13.50"),
            ("0x0d", "13"),
            ("0x_0d", "13"),
            ("-0x0d", "-13"),
            ("+0x0d", "13"),
            ("0o15", "13"),
            ("0b1101", "13"),
            ("0b_1101", "13"),
            ("015", "13"),
            ("010", "8"),
            ("13_", "13"),
            ("1__3", "13"),
            ("0x0d_", "13"),
            ("#0d", "13"),
            ("0x1.ap3", "13"),
            ("0xdp0", "13"),
            ("-0xd.0p0", "-13"),
            ("0x1p-1", "0.5"),
            ("0xd.0", "13"),
            ("0xd.", "13"),
            ("13d", "13"),
            ("13.5f", "13.5"),
            ("1:00", "60"),
            ("1:02:03", "3723"),
            ("-1:00", "-60"),
            ("1:00.5", "60.5"),
            ("0x0", "0"),
            ("-0x0", "0"),
            ("0xffffffffffffffffffffffffffffffff", &u128::MAX.to_string()),
        ] {
            has(text, want);
        }
    }

    #[test]
    fn text_that_spells_no_number_in_another_base_gives_none() {
        for text in [
            "0x",
            "0x-1",
            "0x+1",
            "0xg",
            "0b2",
            "0o8",
            "09",
            "0",
            "-0",
            "0.5",
            "0e1",
            "x0d",
            "00x1",
            "0x1_",
            "#",
            "#g",
            "0x100000000000000000000000000000000",
        ] {
            assert_eq!(in_base(text), None, "{text}");
        }
        for text in ["1:60", "1:", ":1", "1:2:", "1:002", "a:1", "12"] {
            assert_eq!(sexagesimal(text), None, "{text}");
        }
        for text in ["0xp1", "0x1.p", "0x1p", "0x1pq", "0x.p1", "1p3", "0x1p9999"] {
            assert_eq!(hex_float(text), None, "{text}");
        }
        assert_eq!(without_digit_separators("_1_"), "_1");
        assert_eq!(without_digit_separators("1__3"), "13");
        assert_eq!(without_digit_separators("13_"), "13");
        assert_eq!(without_digit_separators("a_b"), "ab");
    }
}
