//! The summary sentence for each scope convention, as the web page and Telegram both show it.

use super::*;
use crate::clock::Timestamp;
use crate::domain::{AgentId, RequestId, Status};
use serde_json::json;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn view(action: &str, scope: Value, context: Value) -> PermissionView {
    PermissionView {
        id: RequestId("r1".into()),
        status: Status::Pending,
        agent_id: AgentId("a1".into()),
        agent_name: "treasury-assistant".into(),
        action: action.into(),
        resource: None,
        scope: obj(scope.clone()),
        requested_scope: obj(scope),
        context: obj(context),
        reason: None,
        rule: Some("money".into()),
        policy_version: "v".into(),
        decided_by: None,
        decided_at: None,
        expires_at: Timestamp(1_780_000_300_000),
        created_at: Timestamp(1_780_000_000_000),
        ttl: 1800,
        uses_remaining: 1,
        token_issued: false,
        action_details: None,
        require_action_details: false,
        token: None,
    }
}

fn said(action: &str, scope: Value) -> String {
    summary(&view(action, scope, json!({}))).plain()
}

#[test]
fn money_with_currency_recipients_and_reason() {
    let v = view(
        "payment.transfer",
        json!({
            "max_amount": 250,
            "allowed_currency": ["EUR"],
            "allowed_recipients": ["DE89370400440532013000", "FR1420041010050500013M02606"],
        }),
        json!({"reason": "Pay supplier invoice 42"}),
    );
    let s = summary(&v);
    assert_eq!(
        s.plain(),
        "treasury-assistant wants to transfer up to 250 EUR, once, \
         to DE89 3704 0044 0532 0130 00 or FR14 2004 1010 0505 0001 3M02 606, within 30 min \
         — reason (stated by the agent): Pay supplier invoice 42"
    );
    assert_eq!(s.money.as_deref(), Some("up to 250 EUR"));
    let to = s.clauses.iter().find(|c| c.words[0].text == "to").unwrap();
    assert!(to.one_per_line() && to.items.iter().all(|p| p.agent));
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: transfer up to 250 EUR to DE89 3704 0044 0532 0130 00 or \
         FR14 2004 1010 0505 0001 3M02 606, once"
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn max_without_money_bytes_and_seconds() {
    assert_eq!(
        said("files.upload", json!({"max_file_size": 10_485_760})),
        "treasury-assistant wants to upload files, once, file size at most 10 MiB, within 30 min"
    );
    assert_eq!(
        said("job.run", json!({"max_runtime_secs": 90, "max_cpus": 2})),
        "treasury-assistant wants to run job, once, runtime secs at most 1 min 30 s, \
         cpus at most 2, within 30 min"
    );
    assert_eq!(bytes(512.0), "512 bytes");
    assert_eq!(bytes(1536.0), "1.5 KiB");
}

#[test]
fn amount_without_currency_is_the_bare_number() {
    assert_eq!(
        said("payment.send", json!({"max_amount": 40})),
        "treasury-assistant wants to send up to 40, once, within 30 min"
    );
}

#[test]
fn money_without_a_verb_is_its_own_clause() {
    assert_eq!(
        said("ledger.x1", json!({"max_amount": 9, "currency": "CHF"})),
        "treasury-assistant wants to use ledger.x1, amount up to 9 CHF, once, within 30 min, \
         and passes on to the service, which alone checks them: currency = CHF"
    );
}

#[test]
fn allowed_blocked_and_pattern() {
    assert_eq!(
        said(
            "email.send",
            json!({"allowed_domains": ["example.com"], "blocked_recipients": ["ceo@example.com"],
                   "subject_pattern": "^Invoice [0-9]+$"})
        ),
        "treasury-assistant wants to send email, once, domains only example.com, \
         never recipients ceo@example.com, subject must match ^Invoice [0-9]+$, within 30 min"
    );
    let s = summary(&view(
        "email.send",
        json!({"subject_pattern": "^a"}),
        json!({}),
    ));
    let pattern = s.clauses.iter().find(|c| c.words.len() == 3).unwrap();
    assert!(pattern.words[2].code, "a regex is shown in monospace");
}

#[test]
fn count_caps_and_uses() {
    let mut v = view("email.send", json!({"max_attachments_count": 3}), json!({}));
    v.uses_remaining = 5;
    assert_eq!(
        summary(&v).plain(),
        "treasury-assistant wants to send email, up to 5 times, at most 3 attachments, within 30 min"
    );
}

#[test]
fn unknown_keys_are_passed_on_and_unknown_actions_kept_as_is() {
    let s = said("x9.zap", json!({"cc": false, "team": "ops"}));
    assert_eq!(
        s,
        "treasury-assistant wants to use x9.zap, once, within 30 min, and passes on to the \
         service, which alone checks them: cc = false and team = ops"
    );
}

#[test]
fn a_request_that_cannot_be_used_as_asked_is_warned_about() {
    let s = summary(&view(
        "payment.send",
        json!({"max_amount": 250, "allowed_currency": ["EUR"], "currency": "GBP"}),
        json!({}),
    ));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(s.warnings[0].contains("currency GBP, but only EUR"));
    let mut v = view("payment.send", json!({"max_amount": 10}), json!({}));
    v.action_details = Some(obj(json!({"amount": 50})));
    assert!(summary(&v).warnings[0].contains("cannot be used as asked"));
}

#[test]
fn agent_text_keeps_its_markers() {
    let mut v = view(
        "payment.send",
        json!({"allowed_recipients": ["evil\u{202E}txt"]}),
        json!({"reason": "now\u{200B}"}),
    );
    v.agent_name = "bot\u{202E}".into();
    v.resource = Some("inv\u{2066}/1".into());
    let s = summary(&v);
    let plain = s.plain();
    for marked in [
        "bot[U+202E]",
        "evil[U+202E]txt",
        "now[U+200B]",
        "inv[U+2066]/1",
    ] {
        assert!(plain.contains(marked), "{marked} in {plain}");
    }
    assert!(!plain.chars().any(crate::text::is_hidden));
}

#[test]
fn the_resource_is_boxed_apart_from_our_words() {
    let mut v = view("payment.send", json!({"max_amount": 5}), json!({}));
    v.resource = Some("acct-1 (verified by agent-otp), within 1 min".into());
    let s = summary(&v);
    let piece = s
        .clauses
        .iter()
        .flat_map(|c| c.words.iter())
        .find(|p| p.text.contains("acct-1"))
        .expect("the resource is in the sentence");
    assert!(piece.agent && piece.code, "{piece:?}");
}

#[test]
fn the_verb_follows_the_state() {
    let mut v = view("payment.send", json!({"max_amount": 40}), json!({}));
    for (status, said) in [
        (Status::Pending, "treasury-assistant wants to send up to 40"),
        (Status::Approved, "treasury-assistant may send up to 40"),
        (
            Status::Used,
            "treasury-assistant was allowed to send up to 40",
        ),
        (Status::Denied, "treasury-assistant asked to send up to 40"),
        (Status::Expired, "treasury-assistant asked to send up to 40"),
    ] {
        v.status = status;
        assert!(summary(&v).plain().starts_with(said), "{status:?}");
    }
}

/// The money phrase said the top-level cap and hid every other amount cap and one-currency list:
/// `{"max_amount": 10, "payment": {"max_amount": 10000, "allowed_currencies": ["USD"]}}` read
/// "transfer up to 10 EUR", while a service reading `payment.amount` may move 10000 USD.
#[test]
fn money_hides_no_other_amount_cap_or_currency_list() {
    let s = said(
        "payment.transfer",
        json!({
            "max_amount": 10,
            "allowed_currencies": ["EUR"],
            "max_fee_amount": 900,
            "payment": {"max_amount": 10000, "allowed_currencies": ["USD"]},
        }),
    );
    assert!(s.contains("transfer up to 10 EUR"), "{s}");
    assert!(s.contains("fee amount at most 900"), "{s}");
    assert!(s.contains("payment amount at most 10000"), "{s}");
    assert!(s.contains("payment currencies only USD"), "{s}");
    // The top-level cap and its one currency are said once, in the money phrase.
    assert!(!s.contains("amount at most 10,"), "{s}");
    assert!(!s.contains("currencies only EUR"), "{s}");
}

/// The money phrase, the pending list and the confirmation showed the first `max_…amount` the
/// agent listed: `{"max_fee_amount": 1, "max_amount": 1000000}` read "send up to 1 EUR", and the
/// second tap asked "send up to 1 EUR?" for a token that moves 999,999 EUR. Only `max_amount`
/// is the amount; every other amount bound is its own clause and is in the question too.
#[test]
fn only_max_amount_is_the_money_and_the_question_names_every_amount_bound() {
    let mut v = view(
        "pay.send",
        json!({"max_fee_amount": 1, "max_amount": 1_000_000, "allowed_currency": ["EUR"]}),
        json!({}),
    );
    let s = summary(&v);
    assert_eq!(s.money.as_deref(), Some("up to 1000000 EUR"));
    assert!(
        s.plain().contains("send up to 1000000 EUR"),
        "{}",
        s.plain()
    );
    assert!(s.plain().contains("fee amount at most 1"), "{}", s.plain());
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: send up to 1000000 EUR, fee amount at most 1, once"
    );
    // A fee cap alone caps the fee, not the amount: no money phrase at all.
    v.scope = obj(json!({"max_fee_amount": 1, "allowed_currency": ["EUR"]}));
    let s = summary(&v);
    assert_eq!(s.money, None);
    assert!(!s.plain().contains("up to 1"), "{}", s.plain());
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: send pay, fee amount at most 1, currency only EUR, once"
    );
    // A nested cap bounds what a service reading `payment.amount` may move: asked too.
    v.scope = obj(json!({"max_amount": 10, "payment": {"max_amount": 10000}}));
    v.uses_remaining = 50;
    assert_eq!(
        summary(&v).confirm_question(),
        "treasury-assistant: send up to 10, payment amount at most 10000, up to 50 times"
    );
}

/// A second attacker pass on the money phrase and the question:
/// - a nested `memo.allowed_ibans` read "to DE89 …" while any payee was allowed;
/// - the question named only the first "to" list;
/// - the money took `currency: JPY` (passed on) while the token allowed EUR too;
/// - `max_amounts` / `min_amounts` (spellings enforcement reads as `amount`) were left out.
#[test]
fn where_the_money_goes_and_its_bounds_are_said_as_enforced() {
    let mut v = view(
        "pay.transfer",
        json!({"max_amount": 100, "allowed_currency": ["EUR"],
               "memo": {"allowed_ibans": ["DE89370400440532013000"]}}),
        json!({}),
    );
    let s = summary(&v);
    assert!(!s.plain().contains(", to DE89"), "{}", s.plain());
    assert!(
        s.plain().contains("memo ibans only DE89 3704"),
        "{}",
        s.plain()
    );
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: transfer up to 100 EUR, once"
    );
    v.scope = obj(json!({"max_amount": 100, "allowed_currency": ["EUR"],
                         "allowed_recipients": ["Acme GmbH"],
                         "allowed_ibans": ["GB33BUKB20201555555555"]}));
    assert_eq!(
        summary(&v).confirm_question(),
        "treasury-assistant: transfer up to 100 EUR to Acme GmbH, to GB33 BUKB 2020 1555 5555 55, \
         once"
    );
    v.scope = obj(
        json!({"max_amount": 100, "allowed_currencies": ["JPY", "EUR"],
                         "currency": "JPY"}),
    );
    let s = summary(&v);
    assert_eq!(s.money.as_deref(), Some("up to 100"));
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: transfer up to 100, currencies only JPY or EUR, once"
    );
    v.scope = obj(json!({"max_amounts": 10, "min_amounts": -1_000_000,
                         "allowed_currency": ["EUR"]}));
    let s = summary(&v);
    assert_eq!(s.money.as_deref(), Some("between -1000000 and 10 EUR"));
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: transfer between -1000000 and 10 EUR, once"
    );
}

/// `{"max_amount": 100, "min_amount": -1000000}` allows a reversal of a million: "up to 100"
/// would say less than the token allows.
#[test]
fn a_negative_floor_is_part_of_the_money() {
    let mut v = view(
        "pay.send",
        json!({"max_amount": 100, "min_amount": -1_000_000, "allowed_currency": ["EUR"]}),
        json!({}),
    );
    let s = summary(&v);
    assert_eq!(s.money.as_deref(), Some("between -1000000 and 100 EUR"));
    assert_eq!(
        s.confirm_question(),
        "treasury-assistant: send between -1000000 and 100 EUR, once"
    );
    // A floor at or above 0 only narrows: its own clause, outside the money phrase.
    v.scope = obj(json!({"max_amount": 100, "min_amount": 5}));
    let s = summary(&v);
    assert_eq!(s.money.as_deref(), Some("up to 100"));
    assert!(s.plain().contains("amount at least 5"), "{}", s.plain());
    // Without a verb the money is its own clause, and the question still says it.
    v.action = "ledger.x1".into();
    v.scope = obj(json!({"max_amount": 9, "min_amount": -3}));
    assert_eq!(
        summary(&v).confirm_question(),
        "treasury-assistant: use ledger.x1, amount between -3 and 9, once"
    );
}

/// An exactly bound transfer says where it goes and how much in the sentence itself: every
/// detail, in key order; or, when they are too many or too long to list, none of them.
#[test]
fn exact_details_are_in_the_sentence_all_or_none() {
    let mut v = view(
        "payment.transfer",
        json!({"max_amount": 250, "allowed_currency": ["EUR"]}),
        json!({}),
    );
    v.action_details = Some(obj(json!({
        "currency": "EUR",
        "creditor": {"name": "ACME", "iban": "DE89370400440532013000"},
        "amount": 40,
    })));
    let s = summary(&v);
    assert_eq!(
        s.plain(),
        "treasury-assistant wants to transfer up to 250 EUR, once, within 30 min, \
         exactly with these details (any other use is refused): amount = 40 and \
         creditor.iban = DE89370400440532013000 and creditor.name = ACME and currency = EUR"
    );
    let exact = s.clauses.last().unwrap();
    assert!(exact.one_per_line());
    assert!(
        exact.items.iter().all(|p| p.agent && p.code),
        "agent text, isolated and boxed"
    );

    let too_long = "Invoice 2026-11 for services rendered in November. ".repeat(2);
    for (details, n) in [
        // A long value would push the rest off the first screen.
        (
            json!({"amount": 40, "memo": too_long, "iban": "GB33BUKB20201555555555"}),
            3,
        ),
        // Six would be cut in Telegram, which lists five.
        (
            json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "iban": "GB33BUKB20201555555555"}),
            6,
        ),
        // Short values, but a list of them as long as one long value.
        (json!({"to": vec!["a@example.com"; 8]}), 1),
    ] {
        v.action_details = Some(obj(details));
        let s = summary(&v).plain();
        let details = if n == 1 { "detail" } else { "details" };
        assert!(
            s.ends_with(&format!(
                "exactly with the {n} {details} under Details, too many or too long to list \
                 here (any other use is refused)"
            )),
            "{s}"
        );
        assert!(!s.contains("GB33") && !s.contains("a@example.com"), "{s}");
    }

    v.action_details = Some(Map::new());
    assert!(
        summary(&v)
            .plain()
            .ends_with("exactly with no details (any other use is refused)")
    );
}

/// Values that would read alike are told apart in the sentence: a list from one text with a
/// comma, an empty text from an empty list, a number from the text of it.
#[test]
fn exact_details_that_would_read_alike_are_told_apart() {
    let mut v = view("email.send", json!({}), json!({}));
    let said = |v: &mut PermissionView, details: Value| {
        v.action_details = Some(obj(details));
        let s = summary(v).plain();
        let (_, listed) = s.split_once("(any other use is refused): ").unwrap();
        listed.to_owned()
    };
    let cases = [
        (
            json!({"to": ["a@x.com", "b@x.com"]}),
            "to = [a@x.com, b@x.com]",
        ),
        (json!({"to": "a@x.com, b@x.com"}), "to = a@x.com, b@x.com"),
        (
            json!({"to": ["a@x.com, b@x.com"]}),
            r#"to = ["a@x.com, b@x.com"]"#,
        ),
        (json!({"to": []}), "to = []"),
        (json!({"to": [""]}), r#"to = [""]"#),
        (json!({"to": ""}), r#"to = """#),
        (json!({"to": "[]"}), r#"to = "[]""#),
        (json!({"to": "[a@x.com]"}), r#"to = "[a@x.com]""#),
        (json!({"amount": 100}), "amount = 100"),
        (json!({"amount": "100"}), r#"amount = "100""#),
        (json!({"amount": null}), "amount = null"),
        (json!({"amount": "null"}), r#"amount = "null""#),
        (json!({"cc": " a@x.com"}), r#"cc = " a@x.com""#),
        // The Braille blank draws nothing: "100" and a blank is not the number 100.
        (json!({"amount": "100\u{2800}"}), "amount = \"100\u{2800}\""),
        (json!({"amount": "\u{2800}"}), "amount = \"\u{2800}\""),
        // A comma before any kind of space, or a bracket, inside one item.
        (
            json!({"to": ["a@x.com,\u{a0}b@x.com"]}),
            "to = [\"a@x.com,\u{a0}b@x.com\"]",
        ),
        (
            json!({"to": ["x] and cc = [y"]}),
            r#"to = ["x] and cc = [y"]"#,
        ),
        // Our markers typed as text read apart from the characters they stand for.
        (
            json!({"iban": "DE89\u{200B}3704"}),
            "iban = DE89[U+200B]3704",
        ),
        (
            json!({"iban": "DE89[U+200B]3704"}),
            r#"iban = "DE89[U+200B]3704""#,
        ),
        (json!({"memo": "a    b"}), "memo = a [4 spaces] b"),
        (
            json!({"memo": "a [4 spaces] b"}),
            r#"memo = "a [4 spaces] b""#,
        ),
    ];
    let mut seen = std::collections::HashSet::new();
    for (details, expected) in cases {
        let got = said(&mut v, details.clone());
        assert_eq!(got, expected, "{details}");
        assert!(seen.insert(got), "{details} reads like another case");
    }
}

/// Only a currency code joins the amount in our bold words: other text in a `currency` key stays
/// agent text, boxed where its entry is, so it cannot pose as our words ("250 EUR, to DE89 …").
#[test]
fn only_a_currency_code_joins_the_amount() {
    for currency in [
        json!("EUR, to DE89 3704 0044 0532 0130 00"),
        json!(""),
        json!("\"EUR\""),
        json!("eur"),
        json!("EURO"),
    ] {
        let v = view(
            "payment.transfer",
            json!({"max_amount": 250, "currency": currency}),
            json!({}),
        );
        let s = summary(&v);
        let what: String = s.what.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(what, "transfer up to 250", "{currency}");
        assert_eq!(s.money.as_deref(), Some("up to 250"), "{currency}");
        let passed = s.clauses.last().unwrap();
        assert!(
            passed.items.iter().all(|p| p.agent && p.code),
            "{currency}: the currency is boxed agent text"
        );
    }
    let v = view(
        "payment.transfer",
        json!({"max_amount": 250, "currency": "EUR"}),
        json!({}),
    );
    assert_eq!(summary(&v).money.as_deref(), Some("up to 250 EUR"));
    let mut v = view("payment.transfer", json!({"max_amount": 250}), json!({}));
    v.action_details = Some(obj(json!({"currency": "EUR to GB33", "amount": 5})));
    assert_eq!(summary(&v).money.as_deref(), Some("up to 250"));
}

/// The over-the-cap warning compares and shows the cap exactly, as it is enforced: through f64
/// a cap of 4611686018427840512 read 4611686018427840000, and 9007199254740993 was not over
/// 9007199254740992.
#[test]
fn the_cap_warning_is_exact_above_2_to_the_53() {
    let s = summary(&view(
        "payment.send",
        json!({"max_amount": 4_611_686_018_427_840_512u64, "amount": 4_611_686_018_427_841_536u64}),
        json!({}),
    ));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    assert!(
        s.warnings[0].contains("at most 4611686018427840512 is allowed"),
        "{:?}",
        s.warnings
    );
    let s = summary(&view(
        "payment.send",
        json!({"max_amount": 9_007_199_254_740_992u64, "amount": 9_007_199_254_740_993u64}),
        json!({}),
    ));
    assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    let s = summary(&view(
        "payment.send",
        json!({"max_amount": 9_007_199_254_740_993u64, "amount": 9.007199254740992e15}),
        json!({}),
    ));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}

#[test]
fn numbers_are_shown_with_every_digit_in_place() {
    // An exponent is no number a person reads: `1e3` could pass for 13, and `1e21` for a
    // small cap.
    let s = summary(&view(
        "payment.transfer",
        json!({"max_amount": 1e21, "min_amount": -1e6, "allowed_currency": ["EUR"]}),
        json!({}),
    ));
    assert_eq!(
        s.money.as_deref(),
        Some("between -1000000 and 1000000000000000000000 EUR")
    );
    let said = said(
        "files.upload",
        json!({"max_ratio": 1.5e-7, "blocked_ids": [1e3, 12]}),
    );
    assert!(said.contains("ratio at most 0.00000015"), "{said}");
    assert!(said.contains("never ids 1000 nor 12"), "{said}");
    assert!(!said.contains("e-7") && !said.contains("e3"), "{said}");
}

/// A cap in words must not read smaller than the cap enforced.
#[test]
fn quantity_never_reads_below_the_cap() {
    assert_eq!(quantity("timeout_secs", "90.9"), "90.9 s");
    assert_eq!(
        quantity("upload_bytes", "1100000"),
        "1100000 bytes (about 1 MiB)"
    );
}
/// Seconds over an hour keep their seconds.
#[test]
fn seconds_over_an_hour_keep_their_seconds() {
    assert_eq!(quantity("runtime_secs", "3661"), "1 h 1 min 1 s");
    assert_ne!(quantity("runtime_secs", "7199"), "1 h 59 min");
}

/// A byte cap the float does not hold (2^53 + 1) is written as sent.
#[test]
fn a_bytes_cap_above_2_pow_53_is_written_as_sent() {
    let s = said(
        "files.upload",
        json!({"max_file_size": 9007199254740993u64}),
    );
    assert!(!s.contains("at most 8192 TiB"), "{s}");
}

/// A text written the way a long number is written reads as text, not as that number; and such
/// a number keeps its unit (a third attacker pass).
#[test]
fn text_in_our_number_notation_is_not_a_number() {
    let text = said("deploy.prod", json!({"allowed_note": ["5 × 10^-324"]}));
    let number = said("deploy.prod", json!({"allowed_note": [5e-324]}));
    assert_ne!(text, number, "a string and a number read alike");
    assert!(text.contains("\"5 × 10^-324\""), "{text}");
    let size = said("files.upload", json!({"max_upload_bytes": 1e300}));
    assert!(size.contains("at most 1 × 10^300 bytes"), "{size}");
}
