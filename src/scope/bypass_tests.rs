//! The bypass families, one table per constraint kind: type confusion, empty values, two
//! spellings, negatives, path tricks, look-alike and invisible keys, nested constraints, and the
//! lawful values that must still pass.

use super::*;
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// Each row: details, and `None` when the use is accepted or a text the refusal must contain.
/// Every refusal must also name `key`, the scope key that refused.
fn table(scope: Value, key: &str, rows: &[(Value, Option<&str>)]) {
    let scope = obj(scope);
    assert_eq!(validate(&scope), Ok(()), "the scope itself must be valid");
    for (details, want) in rows {
        let got = enforce(&scope, Some(&obj(details.clone())));
        match (want, got) {
            (None, Ok(())) => {}
            (None, Err(v)) => panic!("{details} must pass {scope:?}, got {v}"),
            (Some(text), Ok(())) => panic!("{details} must be refused ({text})"),
            (Some(text), Err(v)) => {
                assert_eq!(v.key, key, "{details}: {v}");
                assert!(v.message.contains(text), "{details}: {v} lacks {text:?}");
            }
        }
    }
}

#[test]
fn max_compares_numbers_only() {
    table(
        json!({"max_amount": 100}),
        "max_amount",
        &[
            (json!({"amount": 100}), None),
            (json!({"amount": 100.0}), None),
            (json!({"amount": 0}), None),
            (json!({"amount": 99.5}), None),
            (
                json!({"amount": [1000000]}),
                Some("must be a number, not a list"),
            ),
            (json!({"amount": []}), Some("not a list")),
            (json!({"amount": "50"}), Some("not a string")),
            (json!({"amount": true}), Some("not a boolean")),
            (json!({"amount": null}), Some("not null")),
            (json!({"amount": {"value": 5}}), Some("not an object")),
            (json!({"amount": 100.01}), Some("more than the maximum 100")),
            (json!({"amount": 1e300}), Some("more than")),
            (json!({"amount": u64::MAX}), Some("more than")),
            (json!({}), Some("required")),
            (json!({"amount": -5}), Some("needs min_amount")),
            (json!({"amount": -0.01}), Some("needs min_amount")),
            (json!({"amount": -1e300}), Some("needs min_amount")),
            (
                json!({"amount": 5, "amounts": 5}),
                Some("both `amount` and `amounts`"),
            ),
            // Spellings fold ASCII case and ignore hidden characters, so these are checked.
            (json!({"Amount": 1000}), Some("more than")),
            (json!({"amount\u{200B}": 1000}), Some("more than")),
            (json!({"amount": 1, "AMOUNT": 1000}), Some("both")),
        ],
    );
}

#[test]
fn min_allows_negatives_and_bounds_them() {
    table(
        json!({"max_amount": 100, "min_amount": -50}),
        "min_amount",
        &[
            (json!({"amount": -50}), None),
            (json!({"amount": -0.5}), None),
            (json!({"amount": 100}), None),
            (json!({"amount": -50.01}), Some("less than the minimum -50")),
            (json!({"amount": i64::MIN}), Some("less than")),
        ],
    );
    table(
        json!({"min_amount": 10}),
        "min_amount",
        &[
            (json!({"amount": 10}), None),
            (json!({"amount": 1e9}), None),
            (json!({"amount": 9.99}), Some("less than")),
            (json!({"amount": "10"}), Some("must be a number")),
            (json!({"amount": [10]}), Some("must be a number")),
            (json!({}), Some("required")),
        ],
    );
}

#[test]
fn count_caps_the_length_of_a_list() {
    table(
        json!({"max_recipients_count": 2}),
        "max_recipients_count",
        &[
            (json!({"recipients": ["a", "b"]}), None),
            (json!({"recipients": []}), None),
            (json!({"recipient": ["a"]}), None),
            (
                json!({"recipients": ["a", "b", "c"]}),
                Some("has 3 items, more than 2"),
            ),
            (
                json!({"recipients": "a,b,c"}),
                Some("must be a list, not a string"),
            ),
            (json!({"recipients": 1}), Some("must be a list")),
            (json!({}), Some("required")),
            (json!({"recipients": ["a"], "recipient": "b"}), Some("both")),
        ],
    );
    // The plain cap is a number cap, never a length.
    table(
        json!({"max_recipients": 2}),
        "max_recipients",
        &[(json!({"recipients": ["a"]}), Some("must be a number"))],
    );
}

#[test]
fn allowed_needs_a_present_non_empty_value_all_allowed() {
    table(
        json!({"allowed_recipients": ["a@x.com", "b@x.com"]}),
        "allowed_recipients",
        &[
            (json!({"recipients": ["a@x.com"]}), None),
            (json!({"recipients": ["a@x.com", "b@x.com"]}), None),
            (json!({"recipient": "b@x.com"}), None),
            (json!({"recipients": []}), Some("empty list")),
            (json!({}), Some("required")),
            (json!({"recipients": null}), Some("holds null")),
            (json!({"recipients": [null]}), Some("holds null")),
            (json!({"recipients": [["a@x.com"]]}), Some("holds a list")),
            (
                json!({"recipients": {"0": "a@x.com"}}),
                Some("holds an object"),
            ),
            (
                json!({"recipients": ["a@x.com", "c@x.com"]}),
                Some("\"c@x.com\" is not allowed"),
            ),
            (json!({"recipient": "A@X.COM"}), Some("not allowed")),
            (json!({"recipient": "a@x.com "}), Some("not allowed")),
            (
                json!({"recipients": ["a@x.com"], "recipient": "evil@y.com"}),
                Some("both"),
            ),
        ],
    );
    table(
        json!({"allowed_currencies": ["EUR"]}),
        "allowed_currencies",
        &[
            (json!({"currency": "EUR"}), None),
            (json!({"currencies": ["EUR"]}), None),
            (json!({"currency": "USD"}), Some("not allowed")),
            (
                json!({"currency": "EUR", "currencies": ["USD"]}),
                Some("both"),
            ),
        ],
    );
    table(
        json!({"allowed_addresses": ["home"], "allowed_ids": [1, 2]}),
        "allowed_ids",
        &[
            (json!({"address": "home", "id": 1.0}), None),
            (json!({"addresses": ["home"], "ids": [2, 1]}), None),
            (json!({"address": "home", "id": "1"}), Some("not allowed")),
            (json!({"address": "home", "id": true}), Some("not allowed")),
        ],
    );
}

#[test]
fn blocked_refuses_any_blocked_element_loosely() {
    table(
        json!({"blocked_domains": ["evil.com"]}),
        "blocked_domains",
        &[
            (json!({}), None),
            (json!({"domain": "good.com"}), None),
            (json!({"domains": []}), None),
            (json!({"domains": ["good.com", "evil.co"]}), None),
            (json!({"domain": "evil.com"}), Some("is blocked")),
            (json!({"domain": "EVIL.com"}), Some("is blocked")),
            (json!({"domain": " evil.com\t"}), Some("is blocked")),
            (json!({"domain": "evil\u{00AD}.com"}), Some("is blocked")),
            (
                json!({"domains": ["good.com", "evil.com"]}),
                Some("is blocked"),
            ),
            (json!({"domain": null}), Some("holds null")),
            (
                json!({"domains": [{"d": "evil.com"}]}),
                Some("holds an object"),
            ),
            (json!({"domains": [["evil.com"]]}), Some("holds a list")),
            (
                json!({"domain": "good.com", "domains": ["x"]}),
                Some("both"),
            ),
        ],
    );
    table(
        json!({"blocked_accounts": [13, "x"]}),
        "blocked_accounts",
        &[
            (json!({"account": 14}), None),
            (json!({"account": 13.0}), Some("is blocked")),
            (json!({"account": "13"}), Some("is blocked")),
            (json!({"account": " 13.0 "}), Some("is blocked")),
            (json!({"accounts": [1, "X"]}), Some("is blocked")),
        ],
    );
    // Above 2^53, numeric text is read as its whole number, not only through f64 (which made
    // "9007199254740993" the number 9007199254740992 and let it past). A whole number is also
    // read as the float it becomes, so 9007199254740992 and 9007199254740992.5 are blocked
    // with 9007199254740993: a service that reads floats cannot tell them apart.
    table(
        json!({"blocked_ids": [9007199254740993u64, "18446744073709551615"]}),
        "blocked_ids",
        &[
            (json!({"id": 9007199254740992u64}), Some("is blocked")),
            (json!({"id": "9007199254740993"}), Some("is blocked")),
            (json!({"id": "9007199254740993.0"}), Some("is blocked")),
            (json!({"id": " 9.007199254740993E15 "}), Some("is blocked")),
            (json!({"id": "9007199254740992.5"}), Some("is blocked")),
            (json!({"id": "9007199254740990"}), None),
            (json!({"id": " 9007199254740993 "}), Some("is blocked")),
            (json!({"id": u64::MAX}), Some("is blocked")),
        ],
    );
    table(
        json!({"blocked_ids": ["9007199254740993"]}),
        "blocked_ids",
        &[(json!({"id": 9007199254740993u64}), Some("is blocked"))],
    );
    // Numeric text is also read as the float it becomes (a service may read it so), and a
    // whole float by every digit: 1.8446744073709552e19 is 18446744073709551616 exactly, which
    // Display would print as 18446744073709552000.
    table(
        json!({"blocked_ids": [9007199254740992u64, "18446744073709551616"]}),
        "blocked_ids",
        &[
            (json!({"id": "9007199254740993.0"}), Some("is blocked")),
            (json!({"id": 1.8446744073709552e19}), Some("is blocked")),
            (json!({"id": "1.8446744073709552e19"}), Some("is blocked")),
            (json!({"id": "18446744073709552000"}), Some("is blocked")),
            (json!({"id": -1.8446744073709552e19}), None),
            // A whole number too: JavaScript's JSON.parse reads it as 9007199254740992.
            (json!({"id": 9007199254740993u64}), Some("is blocked")),
            (json!({"id": [9007199254740993u64]}), Some("is blocked")),
            (json!({"id": 9007199254740994u64}), None),
        ],
    );
    table(
        json!({"blocked_ids": [1.8446744073709552e19, -2.5e16]}),
        "blocked_ids",
        &[
            (json!({"id": "18446744073709551616"}), Some("is blocked")),
            (json!({"id": "-18446744073709551616"}), None),
            (json!({"id": "-25000000000000000"}), Some("is blocked")),
            (json!({"id": " -2.5E16 "}), Some("is blocked")),
        ],
    );
}

#[test]
fn blocked_numbers_are_read_in_every_notation_a_reader_takes() {
    // Python's int() and Java's parseInt read decimal digits of any script; Python and YAML 1.1
    // read `_` between digits; JavaScript's Number(), Python's int(text, 0) and YAML 1.1 read a
    // base prefix, and strtol with base 0 and YAML 1.1 a leading zero as octal.
    table(
        json!({"blocked_accounts": [13, -13, 13.5]}),
        "blocked_accounts",
        &[
            (json!({"account": "١٣"}), Some("is blocked")),
            (json!({"account": "۱۳"}), Some("is blocked")),
            (json!({"account": "१३"}), Some("is blocked")),
            (json!({"account": "১৩"}), Some("is blocked")),
            (json!({"account": "１３"}), Some("is blocked")),
            (json!({"account": "𝟏𝟑"}), Some("is blocked")),
            (json!({"account": "1٣"}), Some("is blocked")),
            (json!({"account": " ١٣.٠ "}), Some("is blocked")),
            (json!({"account": "١٣.٥"}), Some("is blocked")),
            (json!({"account": "1_3"}), Some("is blocked")),
            (json!({"account": "1_3.5"}), Some("is blocked")),
            (json!({"account": "0x0d"}), Some("is blocked")),
            (json!({"account": "0X0D"}), Some("is blocked")),
            (json!({"account": "0x_0d"}), Some("is blocked")),
            (json!({"account": "-0xd"}), Some("is blocked")),
            (json!({"account": "0o15"}), Some("is blocked")),
            (json!({"account": "0b1101"}), Some("is blocked")),
            (json!({"account": "015"}), Some("is blocked")),
            (json!({"account": "0x0\u{200B}d"}), Some("is blocked")),
            (json!({"accounts": [12, "0xd"]}), Some("is blocked")),
            // Other numbers in the same notations pass.
            (json!({"account": "١٤"}), None),
            (json!({"account": "1_4"}), None),
            (json!({"account": "0x0e"}), None),
            (json!({"account": "0b1100"}), None),
            (json!({"account": "016"}), None),
            (json!({"account": "1__3"}), Some("is blocked")),
            (json!({"account": "_13_"}), None),
            (json!({"account": "0x"}), None),
            (json!({"account": "13 apples"}), None),
        ],
    );
    // A list written in one notation blocks the others.
    table(
        json!({"blocked_accounts": ["0x0d", "١٤"]}),
        "blocked_accounts",
        &[
            (json!({"account": 13}), Some("is blocked")),
            (json!({"account": "13"}), Some("is blocked")),
            (json!({"account": 14.0}), Some("is blocked")),
            (json!({"account": 15}), None),
        ],
    );
}

#[test]
fn pattern_tests_every_value_as_text() {
    table(
        json!({"subject_pattern": "^Invoice"}),
        "subject_pattern",
        &[
            (json!({"subject": "Invoice 1"}), None),
            (json!({"subjects": ["Invoice 1", "Invoice 2"]}), None),
            (json!({"subject": "Hello"}), Some("does not match")),
            (json!({"subject": 5}), Some("must be a string")),
            (
                json!({"subjects": ["Invoice 1", 5]}),
                Some("must be a string"),
            ),
            (json!({"subjects": []}), Some("empty list")),
            (json!({}), Some("required")),
            (
                json!({"subject": "Invoice", "subjects": ["Hello"]}),
                Some("both"),
            ),
        ],
    );
    table(
        json!({"recipient_pattern": r"^[^@\s]+@mycompany\.com$"}),
        "recipient_pattern",
        &[
            (json!({"recipient": "bob@mycompany.com"}), None),
            (
                json!({"recipients": ["bob@mycompany.com", "eve@evil.com"]}),
                Some("does not match"),
            ),
            (
                json!({"recipient": "bob@mycompany.com", "recipients": ["eve@evil.com"]}),
                Some("both"),
            ),
        ],
    );
}

#[test]
fn blocked_paths_match_whole_leading_parts_after_normalising() {
    table(
        json!({"blocked_paths": ["/etc"]}),
        "blocked_paths",
        &[
            (json!({}), None),
            (json!({"path": "/etcetera/x"}), None),
            (json!({"path": "/srv/etc"}), None),
            (json!({"paths": ["/srv/a", "/tmp/b/"]}), None),
            (json!({"path": "/etc"}), Some("is blocked")),
            (json!({"path": "/etc/"}), Some("is blocked")),
            (json!({"path": "/etc/shadow"}), Some("is blocked")),
            (json!({"path": "/etc//shadow"}), Some("is blocked")),
            (json!({"path": "//etc/shadow"}), Some("is blocked")),
            (json!({"path": "/etc/./shadow"}), Some("is blocked")),
            (json!({"path": "/etc/../etc/shadow"}), Some("is blocked")),
            (json!({"path": "/srv/../etc/shadow"}), Some("is blocked")),
            (json!({"path": "/ETC/shadow"}), Some("is blocked")),
            (
                json!({"paths": ["/tmp/x", "/etc/passwd"]}),
                Some("is blocked"),
            ),
            (json!({"path": "/.."}), Some("climbs above its root")),
            (
                json!({"path": "/srv/../../etc"}),
                Some("climbs above its root"),
            ),
            (json!({"path": "etc/shadow"}), Some("relative")),
            (json!({"path": "/etc\\shadow"}), Some("backslash")),
            (json!({"path": "/etc/\u{200B}shadow"}), Some("invisible")),
            (json!({"path": ""}), Some("empty path")),
            (json!({"path": 5}), Some("must be a path")),
            (json!({"path": "/tmp", "paths": ["/etc/x"]}), Some("both")),
            // Read also with `%XX` decoded and final dots dropped, as other readers do.
            (json!({"path": "/srv/a%20b"}), None),
            (json!({"path": "/%65tc/passwd"}), Some("is blocked")),
            (json!({"path": "/etc%2fpasswd"}), Some("is blocked")),
            (json!({"path": "/etc./passwd"}), Some("is blocked")),
            (json!({"path": "/etc%20/passwd"}), Some("is blocked")),
        ],
    );
    // A blocked file is blocked with everything below it, and only that.
    table(
        json!({"blocked_files": ["/etc/shadow"]}),
        "blocked_files",
        &[
            (json!({"file": "/etc/shadow-"}), None),
            (json!({"file": "/etc/passwd"}), None),
            (json!({"file": "/etc/shadow/"}), Some("is blocked")),
            (json!({"files": ["/etc/x/../shadow"]}), Some("is blocked")),
        ],
    );
}

/// An attacker pass found that a block list of paths on a field not named like a path
/// (`destination`, `target`) compared exact strings: `/etc/passwd`, `/etc//shadow` and
/// `/srv/../etc/shadow` passed a scope the approver read as "never targets /etc/shadow".
#[test]
fn absolute_paths_block_as_paths_in_a_field_of_any_name() {
    table(
        json!({"blocked_destinations": ["/etc"], "blocked_targets": ["/etc/shadow", "prod"]}),
        "blocked_destinations",
        &[
            (json!({"destination": "/srv/out", "target": "/tmp/x"}), None),
            (json!({"destination": "/etcetera/x"}), None),
            // Not a path: still compared as text, and a relative name is no path to block.
            (json!({"destination": "etc/passwd"}), None),
            (json!({"destination": "/etc/passwd"}), Some("is blocked")),
            (json!({"destination": "/ETC//passwd"}), Some("is blocked")),
            (json!({"destination": "/srv/../etc"}), Some("is blocked")),
            (
                json!({"destination": "/\u{FF45}tc/passwd"}),
                Some("is blocked"),
            ),
            (
                json!({"destination": "/srv/../../etc"}),
                Some("climbs above its root"),
            ),
            // A second pass: URLs, `host:/path`, white space, percent-encoding, final dots.
            (json!({"destination": "https://h/srv/etc"}), None),
            (json!({"destination": "/srv/a%20b"}), None),
            (
                json!({"destination": "file:///etc/passwd"}),
                Some("is blocked"),
            ),
            (
                json!({"destination": "file:/etc/passwd"}),
                Some("is blocked"),
            ),
            (
                json!({"destination": "scp://h/etc/passwd"}),
                Some("is blocked"),
            ),
            (
                json!({"destination": "host:/etc/passwd"}),
                Some("is blocked"),
            ),
            (json!({"destination": " /etc/passwd"}), Some("is blocked")),
            (json!({"destination": "\t/etc/passwd"}), Some("is blocked")),
            (json!({"destination": "/%65tc/passwd"}), Some("is blocked")),
            (json!({"destination": "/e%74c/passwd"}), Some("is blocked")),
            (json!({"destination": "/etc%2fpasswd"}), Some("is blocked")),
            (
                json!({"destination": "/%2565tc/passwd"}),
                Some("is blocked"),
            ),
            (json!({"destination": "/etc./passwd"}), Some("is blocked")),
            (
                json!({"destination": "file:etc/passwd"}),
                Some("is blocked"),
            ),
            (
                json!({"destination": "file:\\\\\\etc\\passwd"}),
                Some("is blocked"),
            ),
            (
                json!({"destination": "/x/%2e%2e/%2e%2e/y"}),
                Some("reads as the path"),
            ),
            (json!({"destination": "/etc\\passwd"}), Some("backslash")),
        ],
    );
    table(
        json!({"blocked_targets": ["/etc/shadow", "prod"]}),
        "blocked_targets",
        &[
            (json!({"target": "/etc/shadow-"}), None),
            (json!({"target": "staging"}), None),
            (json!({"target": "/etc//shadow"}), Some("is blocked")),
            (json!({"target": "/etc/./shadow"}), Some("is blocked")),
            (json!({"target": "/srv/../etc/shadow"}), Some("is blocked")),
            (
                json!({"targets": ["/tmp", "/etc/shadow/x"]}),
                Some("is blocked"),
            ),
            // The list's other entries still compare as text.
            (json!({"target": "PROD"}), Some("is blocked")),
        ],
    );
    // Without a path entry nothing changes for a path-like value.
    table(
        json!({"blocked_destinations": ["prod"]}),
        "blocked_destinations",
        &[(json!({"destination": "/srv/../../x"}), None)],
    );
}

/// A second attacker pass: `blocked_hosts: ["evil.com"]` let `https://evil.com/`,
/// `http://evil.com`, `//evil.com` and `evil.com/` through: the host of a URL was never read.
#[test]
fn blocked_hosts_read_the_host_of_a_url() {
    table(
        json!({"blocked_hosts": ["evil.com"]}),
        "blocked_hosts",
        &[
            (json!({"host": "good.com"}), None),
            (json!({"host": "https://good.com/evil.com"}), None),
            (json!({"host": "https://evil.com.good.com/"}), None),
            (json!({"host": "https://evil.com/"}), Some("is blocked")),
            (json!({"host": "http://evil.com"}), Some("is blocked")),
            (json!({"host": "//evil.com"}), Some("is blocked")),
            (json!({"host": "evil.com/"}), Some("is blocked")),
            (json!({"host": "evil.com/x?y"}), Some("is blocked")),
            (
                json!({"host": "https://u:p@EVIL.com.:443/x"}),
                Some("is blocked"),
            ),
            // A third pass: what WHATWG URL parsers also read as the host `evil.com`.
            (json!({"host": "https:/evil.com/x"}), Some("is blocked")),
            (json!({"host": "https:evil.com/"}), Some("is blocked")),
            (json!({"host": "https:\\\\evil.com\\x"}), Some("is blocked")),
            (json!({"host": "https://evil%2Ecom/x"}), Some("is blocked")),
            (json!({"host": "ws:/evil.com"}), Some("is blocked")),
            (json!({"host": "good.com:8080/evil.com"}), None),
            // A domain blocks the names under it and the addresses at them.
            (json!({"host": "mail.evil.com"}), Some("is blocked")),
            (json!({"host": "a.b.EVIL.com."}), Some("is blocked")),
            (
                json!({"host": "https://api.evil.com/x"}),
                Some("is blocked"),
            ),
            (json!({"host": "ceo@evil.com"}), Some("is blocked")),
            (
                json!({"host": "Boss <ceo@mail.evil.com>"}),
                Some("is blocked"),
            ),
            (json!({"host": "notevil.com"}), None),
            (json!({"host": "evil.com.good.com"}), None),
            (json!({"host": "https://good.com/x.evil.com"}), None),
            (json!({"host": "ceo@evil.community"}), None),
        ],
    );
    // An address entry still blocks that address only.
    table(
        json!({"blocked_recipients": ["ceo@x.com", "localhost"]}),
        "blocked_recipients",
        &[
            (json!({"recipient": "ceo@x.com"}), Some("is blocked")),
            (json!({"recipient": "cfo@x.com"}), None),
            (json!({"recipient": "ceo@mail.x.com"}), None),
            // `localhost` blocks the names under it too (browsers send `a.localhost` to the
            // loopback).
            (json!({"recipient": "a.localhost"}), Some("is blocked")),
        ],
    );
}

/// Look-alikes that NFKC reads as ASCII, which a hand-written table missed: roman numerals
/// (`ⅹ` U+2179, `ⅽ` U+217D), the one dot leader (U+2024), superscripts; and full-width letters
/// in a blocked path.
#[test]
fn blocked_reads_every_nfkc_look_alike_as_ascii() {
    table(
        json!({"blocked_recipients": ["ceo@x.com", "cfo2@x.com"]}),
        "blocked_recipients",
        &[
            (json!({"recipient": "bob@x.com"}), None),
            (json!({"recipient": "ceo@\u{2179}.com"}), Some("is blocked")),
            (json!({"recipient": "\u{217D}eo@x.com"}), Some("is blocked")),
            (json!({"recipient": "ceo@x\u{2024}com"}), Some("is blocked")),
            (
                json!({"recipient": "cfo\u{00B2}@x.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "\u{1D41C}eo@x.com"}),
                Some("is blocked"),
            ),
        ],
    );
    table(
        json!({"blocked_paths": ["/etc"]}),
        "blocked_paths",
        &[
            (json!({"path": "/srv/etc"}), None),
            (json!({"path": "/\u{FF45}tc/passwd"}), Some("is blocked")),
            (json!({"path": "/\u{FF25}TC"}), Some("is blocked")),
        ],
    );
}

#[test]
fn allowed_paths_and_path_patterns_see_the_normalised_path() {
    table(
        json!({"allowed_paths": ["/srv/reports"]}),
        "allowed_paths",
        &[
            (json!({"path": "/srv/reports"}), None),
            (json!({"path": "/srv/reports/"}), None),
            (json!({"path": "/srv/reports/q1.csv"}), None),
            (json!({"path": "/srv/reports//q1.csv"}), None),
            (json!({"path": "/srv/./reports/q1.csv"}), None),
            (json!({"path": "/srv/reports/a/../b.csv"}), None),
            (
                json!({"path": "/srv/reports/../../etc/passwd"}),
                Some("not allowed"),
            ),
            (
                json!({"path": "/srv/reports/../secrets"}),
                Some("not allowed"),
            ),
            (json!({"path": "/srv/reportsX/a"}), Some("not allowed")),
            (json!({"path": "/srv"}), Some("not allowed")),
            (json!({"path": "srv/reports/a"}), Some("not allowed")),
            (json!({"path": "/srv/reports/../../../.."}), Some("climbs")),
            (json!({"paths": []}), Some("empty list")),
        ],
    );
    table(
        json!({"output_dir_pattern": r"^/srv/reports/[^/]+\.csv$"}),
        "output_dir_pattern",
        &[
            (json!({"output_dir": "/srv/reports/q1.csv"}), None),
            (json!({"output_dir": "/srv//reports/./q1.csv"}), None),
            (
                json!({"output_dir": "/srv/reports/../secret/x.csv"}),
                Some("does not match"),
            ),
            (
                json!({"output_dir": "/srv/reports/a/../../../etc/x.csv"}),
                Some("does not match"),
            ),
            (
                json!({"output_dir": "/srv/reports/../../.."}),
                Some("climbs"),
            ),
        ],
    );
}

#[test]
fn nested_constraints_check_the_same_nested_object() {
    table(
        json!({"payment": {"max_amount": 10, "allowed_currencies": ["EUR"]}, "note": {"free": 1}}),
        "payment.max_amount",
        &[
            (json!({"payment": {"amount": 10, "currency": "EUR"}}), None),
            (
                json!({"payment": {"amount": 11, "currency": "EUR"}}),
                Some("actionDetails.payment.amount is 11"),
            ),
            (
                json!({"payment": {"amount": [1000], "currency": "EUR"}}),
                Some("must be a number"),
            ),
            (
                json!({"payment": {"currency": "EUR"}, "amount": 5}),
                Some("required"),
            ),
            (json!({}), Some("actionDetails.payment.amount is required")),
        ],
    );
    table(
        json!({"payment": {"max_amount": 10}}),
        "payment",
        &[
            (
                json!({"payment": "10"}),
                Some("must be an object, not a string"),
            ),
            (
                json!({"payment": [{"amount": 1}]}),
                Some("must be an object, not a list"),
            ),
            (
                json!({"payment": {"amount": 1}, "payments": {"amount": 99}}),
                Some("both"),
            ),
        ],
    );
    table(
        json!({"a": {"b": {"max_n": 1}}}),
        "a.b.max_n",
        &[
            (json!({"a": {"b": {"n": 1}}}), None),
            (
                json!({"a": {"b": {"n": 2}}}),
                Some("actionDetails.a.b.n is 2"),
            ),
        ],
    );
    // Blocked-only nests pass when the object is absent, like the field itself.
    table(
        json!({"payment": {"blocked_to": ["x"]}}),
        "payment.blocked_to",
        &[
            (json!({}), None),
            (json!({"payment": {}}), None),
            (json!({"payment": {"to": "X"}}), Some("is blocked")),
        ],
    );
}

#[test]
fn keys_must_be_plain_identifiers_at_every_level() {
    let refused = [
        (
            json!({"max_amount\u{200B}": 10}),
            "max_amount[U+200B]",
            "invisible character U+200B",
        ),
        (
            json!({"m\u{0430}x_amount": 10}),
            "m[U+0430]x_amount",
            "(U+0430)",
        ),
        (json!({"max-amount": 10}), "max-amount", "`-`"),
        (json!({"max amount": 10}), "max amount", "` ` (U+0020)"),
        (json!({"": 10}), "", "empty key"),
        (json!({"max_amount\n": 10}), "max_amount[U+000A]", "U+000A"),
        (
            json!({"payment": {"max_\u{202E}amount": 1}}),
            "payment.max_[U+202E]amount",
            "U+202E",
        ),
        (
            json!({"items": [{"max_amount": 1}]}),
            "items.0.max_amount",
            "inside a list",
        ),
        (
            json!({"items": [[{"ok": {"min_x": 1}}]]}),
            "items.0.0.ok.min_x",
            "inside a list",
        ),
        (
            json!({"items": [{"bad key": 1}]}),
            "items.0.bad key",
            "ASCII letters",
        ),
        (
            json!({"payment": {"max_uses": 1}}),
            "payment.max_uses",
            "only at the top",
        ),
        (json!({"max_amount": -1}), "max_amount", "needs min_amount"),
        (
            json!({"max_recipients_count": 1.5}),
            "max_recipients_count",
            "whole number",
        ),
        (
            json!({"max_recipients_count": -1}),
            "max_recipients_count",
            "whole number",
        ),
        (json!({"min_amount": "1"}), "min_amount", "must be a number"),
        (json!({"min_": 1}), "min_", "needs a field name"),
        (json!({"blocked_paths": ["/.."]}), "blocked_paths", "climbs"),
        (
            json!({"blocked_paths": [5]}),
            "blocked_paths",
            "paths (strings)",
        ),
        (
            json!({"allowed_paths": ["/a\\b"]}),
            "allowed_paths",
            "backslash",
        ),
    ];
    for (scope, key, text) in refused {
        let problems = validate(&obj(scope.clone())).expect_err(&scope.to_string());
        assert_eq!(problems.len(), 1, "{scope}: {problems:?}");
        assert_eq!(problems[0].0, key, "{scope}");
        assert!(problems[0].1.contains(text), "{scope}: {}", problems[0].1);
    }
    let lawful = json!({
        "payment": {"max_amount": 10, "allowed_currencies": ["EUR"]}, "note": {"free": [1, {"x": 2}]},
        "ids": [1, 2], "max_amount": -5, "min_amount": -10, "max_uses": 2, "Path_2": "/x"
    });
    assert_eq!(validate(&obj(lawful)), Ok(()));
}

#[test]
fn a_malformed_stored_scope_refuses_every_use() {
    for scope in [
        json!({"max_amount\u{200B}": 10}),
        json!({"items": [{"max_amount": 1}]}),
        json!({"payment": {"max_uses": 1}}),
        json!({"max_amount": "10"}),
        json!({"amount_pattern": "("}),
    ] {
        let err = enforce(&obj(scope.clone()), Some(&obj(json!({"amount": 1})))).unwrap_err();
        assert!(!err.message.is_empty(), "{scope}");
    }
}

/// A details key that a service would read as the field after Unicode normalisation or case
/// mapping (full-width, Kelvin sign, long s, mathematical letters, ligatures) is that field
/// here too: it used to be a different key, so a `blocked_` list (absent passes) let
/// `ｒecipient: "ceo@x.com"` through, and a cap saw `amount` while the service could read
/// `𝐚mount`.
#[test]
fn look_alike_details_keys_are_spellings_of_the_field() {
    table(
        json!({"blocked_recipients": ["ceo@x.com"]}),
        "blocked_recipients",
        &[
            (json!({"recipient": "bob@x.com"}), None),
            (json!({"\u{FF52}ecipient": "ceo@x.com"}), Some("is blocked")),
            (
                json!({"\u{FF32}ECIPIENTS": ["ceo@x.com"]}),
                Some("is blocked"),
            ),
            (
                json!({"recipient\u{FF53}": ["ceo@x.com"]}),
                Some("is blocked"),
            ),
            (
                json!({"\u{1D42B}ecipient": "ceo@x.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "bob@x.com", "\u{24E1}ecipient": "ceo@x.com"}),
                Some("has both"),
            ),
            // Not a look-alike: a different key, ignored by agent-otp and by the service.
            (json!({"r\u{00E9}cipient": "ceo@x.com"}), None),
        ],
    );
    table(
        json!({"blocked_links": ["evil.com"]}),
        "blocked_links",
        &[
            (json!({"lin\u{212A}s": ["evil.com"]}), Some("is blocked")),
            (json!({"link": "ok.com"}), None),
        ],
    );
    table(
        json!({"max_amount": 100}),
        "max_amount",
        &[
            (
                json!({"amount": 5, "\u{1D41A}mount": 1_000_000}),
                Some("has both"),
            ),
            (
                json!({"\u{FF41}mount": 1_000_000}),
                Some("more than the maximum"),
            ),
            (json!({"amount": 5}), None),
        ],
    );
    table(
        json!({"allowed_first_names": ["ann"]}),
        "allowed_first_names",
        &[
            (
                json!({"\u{FB01}rst_name": "eve", "first_name": "ann"}),
                Some("has both"),
            ),
            (json!({"first\u{FF3F}name": "eve"}), Some("not allowed")),
        ],
    );
    table(
        json!({"blocked_subjects": ["x"]}),
        "blocked_subjects",
        &[(json!({"\u{017F}ubject": "x"}), Some("is blocked"))],
    );
}

/// A count cap counted list items only: one item naming three addresses
/// (`["a@x.com, b@y.com, c@z.com"]`, which a mailer sends to three) or a list inside the list
/// (which a service may flatten) passed `max_recipients_count: 1`.
#[test]
fn count_caps_count_the_addresses_a_text_names_and_refuse_nested_lists() {
    table(
        json!({"max_recipients_count": 1}),
        "max_recipients_count",
        &[
            (
                json!({"recipients": ["a@x.com, b@y.com, c@z.com"]}),
                Some("names 3 addresses in 1 items, more than 1"),
            ),
            (
                json!({"recipients": ["a@x.com; b@y.com"]}),
                Some("names 2 addresses"),
            ),
            (
                json!({"recipients": [["a@x.com", "b@y.com"]]}),
                Some("holds a list, which cannot be counted"),
            ),
            // One address, however it is written, still counts once.
            (json!({"recipients": ["Bob <bob@x.com>"]}), None),
            (json!({"recipients": ["bob@x.com (Bob)"]}), None),
            (json!({"recipients": ["a, b, c"]}), None),
            (json!({"recipients": [{"to": "a@x.com"}]}), None),
        ],
    );
}

/// Addresses that RFC 5322 parsers, `mailto:` URLs and IDNA (UTS 46) all send to the blocked
/// `ceo@x.com` — a comment beside or inside the address, a `mailto:` query, a full-width letter
/// or full stop in the domain — used to pass `blocked_`, which read none of them.
#[test]
fn blocked_sees_comments_mailto_queries_and_full_width_domains() {
    table(
        json!({"blocked_recipients": ["ceo@x.com"]}),
        "blocked_recipients",
        &[
            (
                json!({"recipient": "ceo(comment)@x.com"}),
                Some("is blocked"),
            ),
            (json!({"recipient": "ceo@x.com(c)"}), Some("is blocked")),
            (json!({"recipient": "(x)ceo@x.com"}), Some("is blocked")),
            (json!({"recipient": "ceo@(a(b)c)x.com"}), Some("is blocked")),
            (
                json!({"recipient": "mailto:ceo@x.com?x=1"}),
                Some("is blocked"),
            ),
            (json!({"recipient": "ceo@\u{FF58}.com"}), Some("is blocked")),
            (json!({"recipient": "ceo@x\u{3002}com"}), Some("is blocked")),
            (
                json!({"recipient": "ceo\u{FF20}x\u{FF0E}com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "Boss (ceo@x.com) <bob@y.com>"}),
                Some("is blocked"),
            ),
            // Lawful neighbours still pass.
            (json!({"recipient": "bob(ceo)@x.com"}), None),
            (json!({"recipient": "mailto:bob@x.com?cc=ann@y.com"}), None),
            (json!({"recipient": "Bob (CEO) <bob@x.com>"}), None),
        ],
    );
}

/// Forms an attacker pass found that mail libraries (Python's `email.utils.getaddresses`, a
/// `mailto:` URL) send to the blocked address, and lists a mailer sends to two, that passed
/// `blocked_recipients` and `max_recipients_count`: a group, a source route, white space around
/// `@`, a percent-encoded or query `mailto:`, the small `@`, and separators written full-width or
/// as a hidden line separator.
#[test]
fn blocked_and_count_caps_read_groups_routes_spaced_at_signs_and_encoded_mailto() {
    table(
        json!({"blocked_recipients": ["ceo@example.com"]}),
        "blocked_recipients",
        &[
            (
                json!({"recipient": "group:ceo@example.com;"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "g:ceo@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "<@relay.com:ceo@example.com>"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "ceo @ example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "ceo\r\n @example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "mailto:%63eo@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "mailto:ceo%40example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "mailto:?to=ceo@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "ceo\u{FE6B}example.com"}),
                Some("is blocked"),
            ),
            // Lawful neighbours still pass.
            (json!({"recipient": "team:bob@example.com;"}), None),
            (json!({"recipient": "bob @ example.com"}), None),
            (
                json!({"recipient": "mailto:bob%40example.com?subject=ceo"}),
                None,
            ),
        ],
    );
    table(
        json!({"max_recipients_count": 1}),
        "max_recipients_count",
        &[
            (
                json!({"recipients": ["mailto:a@x.com?cc=b@y.com"]}),
                Some("names 2 addresses"),
            ),
            (
                json!({"recipients": ["mailto:a@x.com%2Cb@y.com"]}),
                Some("names 2 addresses"),
            ),
            (
                json!({"recipients": ["a@x.com\u{FF0C}b@y.com"]}),
                Some("names 2 addresses"),
            ),
            (
                json!({"recipients": ["a@x.com\u{2028}b@y.com"]}),
                Some("names 2 addresses"),
            ),
            // One address, however it is written, still counts once.
            (json!({"recipients": ["mailto:a%40x.com"]}), None),
            (json!({"recipients": ["a @ x.com"]}), None),
            (json!({"recipients": ["ceo(x)@x.com"]}), None),
        ],
    );
}

/// A text that names a blocked address or domain the way mail and DNS libraries read it —
/// a display name, a list in one string, a `+tag`, a final dot, `mailto:`, quotes — used to pass
/// `blocked_`, which compared the whole text only.
#[test]
fn blocked_sees_the_addresses_a_text_names() {
    table(
        json!({"blocked_recipients": ["ceo@example.com"]}),
        "blocked_recipients",
        &[
            (
                json!({"recipient": "Boss <ceo@example.com>"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "bob@x.com, ceo@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "bob@x.com;CEO@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "ceo+invoices@example.com"}),
                Some("is blocked"),
            ),
            (json!({"recipient": "ceo@example.com."}), Some("is blocked")),
            (
                json!({"recipient": "mailto:ceo@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipient": "\"ceo\"@example.com"}),
                Some("is blocked"),
            ),
            (
                json!({"recipients": ["bob@x.com", "Boss <ceo@example.com>"]}),
                Some("is blocked"),
            ),
            // Lawful neighbours still pass.
            (json!({"recipient": "ceo@example.org"}), None),
            (json!({"recipient": "xceo@example.com"}), None),
            (json!({"recipient": "Bob <bob@example.com>"}), None),
            (json!({"recipient": "bob@x.com, ann@y.com"}), None),
        ],
    );
    table(
        json!({"blocked_domains": ["evil.com"]}),
        "blocked_domains",
        &[
            (json!({"domain": "evil.com."}), Some("is blocked")),
            (json!({"domain": "EVIL.COM.."}), Some("is blocked")),
            (json!({"domain": "good.com evil.com"}), Some("is blocked")),
            (json!({"domain": "evil.community"}), None),
            (json!({"domain": "notevil.com"}), None),
        ],
    );
}

/// A fourth attacker pass: a second spelling by word separators or case convention was a field
/// no check read. `totalAmount` slipped past `max_total_amount` beside `total_amount`, and
/// `filePath` past `blocked_file_path` alone.
#[test]
fn spellings_ignore_word_separators_and_camel_case() {
    table(
        json!({"max_total_amount": 100}),
        "max_total_amount",
        &[
            (json!({"totalAmount": 50}), None),
            (
                json!({"total-amount": 1000000}),
                Some("more than the maximum"),
            ),
            (
                json!({"total_amount": 1, "totalAmount": 1000000}),
                Some("send only one"),
            ),
            (
                json!({"total_amount": 1, "total-amount": 1000000}),
                Some("send only one"),
            ),
            (
                json!({"total_amount": 1, "TOTAL AMOUNT": 1000000}),
                Some("send only one"),
            ),
        ],
    );
    table(
        json!({"max_amount": 100}),
        "max_amount",
        &[
            (
                json!({"amount": 5, "amount ": 1000000}),
                Some("send only one"),
            ),
            (
                json!({"amount": 5, "amount\u{00A0}": 1000000}),
                Some("send only one"),
            ),
            (
                json!({"amount": 5, "_amount": 1000000}),
                Some("send only one"),
            ),
        ],
    );
    table(
        json!({"blocked_file_path": ["/etc"]}),
        "blocked_file_path",
        &[
            (json!({"filePath": "/srv/ok"}), None),
            (json!({"filePath": "/etc/shadow"}), Some("is blocked")),
            (
                json!({"file_path": "/srv/ok", "filePath": "/etc/shadow"}),
                Some("send only one"),
            ),
        ],
    );
    table(
        json!({"payment_info": {"max_amount": 10}}),
        "payment_info",
        &[(
            json!({"payment_info": {"amount": 5}, "paymentInfo": {"amount": 1000}}),
            Some("send only one"),
        )],
    );
}

/// The same pass: a `_pattern` on a field not named as a path compared the raw text, so
/// `/srv/data/../../etc/shadow` matched `^/srv/data/`. A value that is an absolute path must
/// match in its normal form too, and one that cannot be normalised is refused.
#[test]
fn patterns_read_an_absolute_path_in_its_normal_form() {
    // A path field is read as a path as written; another field is checked as written and, when
    // it is an absolute path once trimmed, in its normal form too.
    let as_path = "may be read as `.`, `..` or a separator";
    for (scope, key, field, leading_space, encoded_dots) in [
        (
            json!({"filePath_pattern": "^/srv/data/"}),
            "filePath_pattern",
            "filePath",
            as_path,
            as_path,
        ),
        (
            json!({"target_pattern": "^/srv/data/"}),
            "target_pattern",
            "target",
            "\" /srv/data/../../etc/shadow\" does not match",
            as_path,
        ),
        (
            json!({"filepath_pattern": "^/srv/data/"}),
            "filepath_pattern",
            "filepath",
            "\" /srv/data/../../etc/shadow\" does not match",
            as_path,
        ),
    ] {
        table(
            scope,
            key,
            &[
                (json!({ field: "/srv/data/a.txt" }), None),
                (json!({ field: "/srv/data/x/../a.txt" }), None),
                (
                    json!({ field: "/srv/data/../../etc/shadow" }),
                    Some("does not match"),
                ),
                (
                    json!({ field: " /srv/data/../../etc/shadow" }),
                    Some(leading_space),
                ),
                (
                    json!({ field: "/srv/data/%2e%2e/%2e%2e/etc" }),
                    Some(encoded_dots),
                ),
                (json!({ field: "/etc/shadow" }), Some("does not match")),
            ],
        );
    }
    // Text that is not an absolute path compares as written.
    table(
        json!({"subject_pattern": "^Invoice"}),
        "subject_pattern",
        &[
            (json!({"subject": "Invoice ../../x"}), None),
            (json!({"subject": "Re: Invoice"}), Some("does not match")),
        ],
    );
}

/// The same pass: a count cap counted an object item once whatever it held, so
/// `[{"email": "a@x.com, b@x.com, c@x.com"}]` and `[{"email": ["a@x.com", "b@x.com"]}]` passed
/// `max_recipients_count: 1`.
#[test]
fn counts_read_the_addresses_inside_object_items() {
    table(
        json!({"max_recipients_count": 1}),
        "max_recipients_count",
        &[
            (
                json!({"recipients": [{"email": "a@x.com", "name": "Ann"}]}),
                None,
            ),
            (json!({"recipients": [{"name": "Ann"}]}), None),
            (
                json!({"recipients": [{"email": "a@x.com, b@x.com, c@x.com"}]}),
                Some("names 3 addresses in 1 items"),
            ),
            (
                json!({"recipients": [{"to": "a@x.com", "cc": {"email": "b@x.com"}}]}),
                Some("names 2 addresses in 1 items"),
            ),
            (
                json!({"recipients": [{"email": ["a@x.com", "b@x.com"]}]}),
                Some("cannot be counted"),
            ),
            (
                json!({"recipients": [{"cc": {"list": ["a@x.com"]}}]}),
                Some("cannot be counted"),
            ),
        ],
    );
}

/// A fifth pass: a details name that is a path into a checked field (`"payment.amount"` beside a
/// nested `payment` scope) was passed on unchecked, while a service that expands dotted or
/// bracketed names (qs, lodash `set`) reads it as `payment.amount`.
#[test]
fn a_path_named_field_into_a_checked_field_is_refused() {
    let nested = json!({"payment": {"max_amount": 10}});
    let refused = Some("a path into a field this scope checks");
    table(
        nested.clone(),
        "payment",
        &[
            (json!({"payment": {"amount": 5}}), None),
            (
                json!({"payment": {"amount": 5}, "payment.amount": 1000}),
                refused,
            ),
            (json!({"payment.amount": 1000}), refused),
            (json!({"payment[amount]": 1000}), refused),
            (json!({"Payment.Amount": 1000}), refused),
            (json!({"payments.amount": 1000}), refused),
            (json!({"[payment].amount": 1000}), refused),
            (json!({".payment.amount": 1000}), refused),
            // The full-width full stop folds to `.`; a zero-width space is dropped.
            (json!({"payment\u{FF0E}amount": 1000}), refused),
            (json!({"pay\u{200B}ment.amount": 1000}), refused),
            // Names that lead elsewhere are passed on.
            (json!({"payment": {"amount": 5}, "meta.source": "x"}), None),
            (
                json!({"payment": {"amount": 5}, "paymentx.amount": 1}),
                None,
            ),
            (json!({"payment": {"amount": 5}, "[]": 1, ".": 1}), None),
        ],
    );
    // A field that a constraint checks, at the top and inside a nested scope.
    table(
        json!({"max_amount": 100}),
        "max_amount",
        &[
            (json!({"amount": 5, "amount.value": 1000}), refused),
            (json!({"amount": 5, "amount[0]": 1000}), refused),
            (json!({"amount": 5, "currency.code": "EUR"}), None),
        ],
    );
    table(
        nested,
        "payment.max_amount",
        &[
            (
                json!({"payment": {"amount": 5, "amount.value": 1000}}),
                refused,
            ),
            (json!({"payment": {"amount": 5, "note.text": "x"}}), None),
        ],
    );
    // A nested object with no constraint inside is not a checked field.
    table(
        json!({"max_amount": 100, "labels": {"team": "ops"}}),
        "max_amount",
        &[(json!({"amount": 5, "labels.team": "dev"}), None)],
    );
}

/// Every value of `field` in `values` must be refused by `scope`; the failure lists the ones
/// that got through.
fn all_blocked(scope: Value, field: &str, values: &[Value]) {
    let scope = obj(scope);
    assert_eq!(validate(&scope), Ok(()), "the scope itself must be valid");
    let passed: Vec<String> = values
        .iter()
        .filter(|v| enforce(&scope, Some(&obj(json!({ field: v })))).is_ok())
        .map(|v| v.to_string())
        .collect();
    assert!(
        passed.is_empty(),
        "{scope:?} let through: {}",
        passed.join("  ")
    );
}

/// A sixth pass (each test below got past its block list before): a name under a blocked
/// domain whose label is not ASCII (an IDN: browsers, curl and requests send `ü.evil.com` as
/// `xn--tda.evil.com`), or whose label has a character URL parsers keep in a host (`a$b`, `*`),
/// is still a name under it.
#[test]
fn idn_and_odd_labels_under_a_blocked_domain() {
    all_blocked(
        json!({"blocked_hosts": ["evil.com"]}),
        "hosts",
        &[
            json!("ü.evil.com"),
            json!("https://ñ.evil.com/x"),
            json!("ceo@müll.evil.com"),
            json!("https://a$b.evil.com/"),
            json!("https://a*b.evil.com/"),
        ],
    );
}

/// An IDN entry and its punycode (IDNA ToASCII) are one domain, and its subdomains
/// are under it.
#[test]
fn idn_entry_and_its_punycode() {
    all_blocked(
        json!({"blocked_hosts": ["bücher.de"]}),
        "hosts",
        &[
            json!("xn--bcher-kva.de"),
            json!("shop.bücher.de"),
            json!("https://xn--bcher-kva.de/"),
        ],
    );
    all_blocked(
        json!({"blocked_hosts": ["xn--bcher-kva.de"]}),
        "hosts",
        &[json!("bücher.de"), json!("https://shop.bücher.de/")],
    );
}

/// IPv4 in the other notations that WHATWG URL parsers (Node, browsers) and inet_aton (curl,
/// Python requests) read as 127.0.0.1 is blocked by `["127.0.0.1"]`.
#[test]
fn blocked_ipv4_in_every_notation() {
    all_blocked(
        json!({"blocked_hosts": ["127.0.0.1"]}),
        "hosts",
        &[
            json!("http://127.1/"),
            json!("http://0x7f.0.0.1/"),
            json!("http://0177.0.0.1/"),
            json!("http://2130706433/"),
            json!("http://[::ffff:127.0.0.1]/"),
        ],
    );
}

/// YAML 1.1 (PyYAML `safe_load`) reads `_` anywhere after the first digit, trailing
/// and doubled too, and base-60 `1:00`.
#[test]
fn yaml_underscores_and_sexagesimal() {
    all_blocked(
        json!({"blocked_amount": [13]}),
        "amount",
        &[
            json!("13_"),
            json!("1__3"),
            json!("0x0d_"),
            json!("0b1101_"),
            json!("0x_0_d_"),
        ],
    );
    all_blocked(json!({"blocked_amount": [60]}), "amount", &[json!("1:00")]);
}

/// Hexadecimal floats (Java `Double.parseDouble`, Go `ParseFloat`, C `strtod`, Python
/// `float.fromhex`) and Java `Integer.decode`'s `#` are read as the numbers they spell.
#[test]
fn hex_floats_and_hash_prefix() {
    all_blocked(
        json!({"blocked_amount": [13]}),
        "amount",
        &[
            json!("0x1.ap3"),
            json!("0xdp0"),
            json!("0XD.0P0"),
            json!("#0d"),
        ],
    );
}

/// A boolean is 1 or 0 and empty text 0, as Python (`True == 1`) and JavaScript
/// (`Number(true)`, `Number("")`) compare them.
#[test]
fn booleans_and_empty_text_as_numbers() {
    all_blocked(json!({"blocked_amount": [1]}), "amount", &[json!(true)]);
    all_blocked(
        json!({"blocked_amount": [0]}),
        "amount",
        &[json!(false), json!(""), json!(" ")],
    );
}

/// The usual ways a person writes "this whole domain" (`@evil.com`, `.evil.com`, `*.evil.com`,
/// a URL, a single label) block the names under it.
#[test]
fn domain_entry_spellings() {
    all_blocked(
        json!({"blocked_recipients": ["@evil.com"]}),
        "recipients",
        &[json!("ceo@evil.com")],
    );
    all_blocked(
        json!({"blocked_hosts": [".evil.com"]}),
        "hosts",
        &[json!("mail.evil.com")],
    );
    all_blocked(
        json!({"blocked_hosts": ["*.evil.com"]}),
        "hosts",
        &[json!("mail.evil.com")],
    );
    all_blocked(
        json!({"blocked_urls": ["https://evil.com"]}),
        "urls",
        &[json!("https://evil.com/x"), json!("https://mail.evil.com/")],
    );
    all_blocked(
        json!({"blocked_hosts": ["localhost"]}),
        "hosts",
        &[json!("http://a.localhost/")],
    );
}
/// Every value of `field` in `values` must be let through by `scope` (a false refusal fails).
fn all_pass(scope: Value, field: &str, values: &[Value]) {
    let rows: Vec<_> = values.iter().map(|v| (json!({ field: v }), None)).collect();
    table(scope, "", &rows);
}

/// A seventh pass (each of these got past its block list, or was refused, before): an IPv6
/// entry as people write it blocks the address in every form.
#[test]
fn blocked_ipv6_entries_as_written() {
    all_blocked(
        json!({"blocked_hosts": ["::1"]}),
        "hosts",
        &[
            json!("http://[::1]:8080/"),
            json!("0:0:0:0:0:0:0:1"),
            json!("[::1]"),
        ],
    );
    all_blocked(
        json!({"blocked_hosts": ["2001:db8::1"]}),
        "hosts",
        &[json!("https://[2001:db8::1]/"), json!("2001:db8:0::1")],
    );
}

/// A bracketed or bare IPv6 value (Go's Dial, Python's socket) is read as a host.
#[test]
fn bare_ipv6_values_are_hosts() {
    all_blocked(
        json!({"blocked_hosts": ["[::1]"]}),
        "hosts",
        &[json!("[0::1]"), json!("[::1]:8080"), json!("::1")],
    );
    all_blocked(
        json!({"blocked_hosts": ["127.0.0.1"]}),
        "hosts",
        &[json!("[::ffff:127.0.0.1]:80"), json!("::ffff:7f00:1")],
    );
}

/// curl sends `u@evil.com/x` to evil.com; Python's urlsplit reads `good.com\@evil.com` as
/// evil.com.
#[test]
fn userinfo_then_path_names_the_host_after_the_at() {
    all_blocked(
        json!({"blocked_hosts": ["evil.com", "10.0.0.1"]}),
        "hosts",
        &[
            json!("u@evil.com/x"),
            json!("u@evil.com\\x"),
            json!("http://good.com\\@evil.com/x"),
            json!("u@10.0.0.1/x"),
            json!("167772161/x"),
        ],
    );
}

/// `f"http://{host}/"` of the number 2130706433 is 127.0.0.1; `ceo@[127.0.0.1]` is an RFC 5321
/// address literal.
#[test]
fn a_host_as_a_json_number_or_an_address_literal() {
    all_blocked(
        json!({"blocked_hosts": ["127.0.0.1"]}),
        "hosts",
        &[
            json!(2130706433),
            json!(2130706433.0),
            json!("ceo@[127.0.0.1]"),
        ],
    );
}

/// Python's `float.fromhex("0xd.0")` and C's strtod read 13.0.
#[test]
fn hex_float_without_a_power() {
    all_blocked(
        json!({"blocked_amount": [13]}),
        "amount",
        &[json!("0xd.0"), json!("0xd.")],
    );
}

/// YAML 1.1's base-60 float.
#[test]
fn yaml_base60_with_a_fraction() {
    all_blocked(
        json!({"blocked_amount": [60.5]}),
        "amount",
        &[json!("1:00.5")],
    );
}

/// Numeric text names no host: `"13"` is not 0.0.0.13, so it does not refuse `"0.13"`.
#[test]
fn numeric_text_entries_name_no_host() {
    all_pass(
        json!({"blocked_amount": ["13"]}),
        "amount",
        &[json!("0.13")],
    );
    all_pass(json!({"blocked_amount": ["5"]}), "amount", &[json!("0.5")]);
    all_pass(
        json!({"blocked_versions": ["1.2"]}),
        "versions",
        &[json!("1.0.2")],
    );
}

/// A URL entry with a path blocks that URL, not its whole host.
#[test]
fn a_url_entry_with_a_path_does_not_block_its_host() {
    all_pass(
        json!({"blocked_urls": ["https://github.com/evil/repo"]}),
        "urls",
        &[json!("https://github.com/good/repo")],
    );
}

/// A single word names no domain: `["sh"]` does not refuse `"run.sh"`.
#[test]
fn single_word_entries_name_no_domain() {
    all_pass(
        json!({"blocked_commands": ["sh"]}),
        "commands",
        &[json!("run.sh")],
    );
    all_pass(json!({"blocked_tags": ["js"]}), "tags", &[json!("node.js")]);
}
