//! Numeric text as the readers of a protected service may take it. A blocked list compares a
//! number with text that spells it (`blocked_amount: [13]` blocks `"13"`), and readers take more
//! spellings than decimal ASCII:
//!
//! - digits of any script: Python's `int()` and `float()` and Java's `Integer.parseInt` read
//!   Unicode's decimal digits (`Nd`), so `"١٣"`, `"१३"` and `"１３"` are 13;
//! - `_` between digits: Python (`int("1_3")`) and YAML 1.1;
//! - a base prefix: `0x0d`, `0o15` and `0b1101` for JavaScript's `Number()`, Python's
//!   `int(text, 0)` and YAML 1.1; and a leading zero as octal (`015` is 13 for C's `strtol`
//!   with base 0 and YAML 1.1).
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
/// its digits as ASCII, then without `_` between digits, then, for a base prefix or a leading
/// zero, the whole number it spells in that base. Texts a reader takes for no number come back
/// too; the caller reads each as a number or not.
pub(super) fn spellings(text: &str) -> Vec<String> {
    let ascii: String = text
        .chars()
        .map(|c| decimal_digit(c).map_or(c, |d| char::from(b'0' + d)))
        .collect();
    let joined = without_digit_separators(&ascii);
    let mut out = vec![text.to_owned()];
    out.extend(in_base(&joined));
    out.push(ascii);
    out.push(joined);
    out.sort();
    out.dedup();
    out
}

/// `text` without each `_` that stands between two digits (hexadecimal ones too, for `0x_0d`
/// and `0xff_ff`) or between a base prefix and a digit.
fn without_digit_separators(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, c) in chars.iter().enumerate() {
        let joins = *c == '_'
            && i > 0
            && chars[i - 1].is_ascii_alphanumeric()
            && chars.get(i + 1).is_some_and(char::is_ascii_hexdigit);
        if !joins {
            out.push(*c);
        }
    }
    out
}

/// The whole number, in decimal, that `text` spells with a base prefix (`0x`, `0o`, `0b`) or,
/// with a leading zero and only octal digits, in octal; a sign may come first. `None` for
/// anything else, or a number past 128 bits.
fn in_base(text: &str) -> Option<String> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = match unsigned.get(..2) {
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
            "0x100000000000000000000000000000000",
        ] {
            assert_eq!(in_base(text), None, "{text}");
        }
        assert_eq!(without_digit_separators("_1_"), "_1_");
        assert_eq!(without_digit_separators("1__3"), "1__3");
        assert_eq!(without_digit_separators("a_b"), "ab");
    }
}
