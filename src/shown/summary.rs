//! The request in one sentence, for the person deciding on a phone: "treasury-assistant wants to
//! **transfer up to 250 EUR**, once, to DE89 3704 …, within 30 min — reason (stated by the
//! agent): …". Built from the action and the scope entries of [`super::scope`], so a constraint
//! reads as enforced exactly when [`crate::scope::meaning`] says agent-otp enforces it; keys it
//! does not enforce are named as passed on to the service. The web page and the Telegram message
//! lay out the same [`Summary`]: they differ only in markup.

use crate::wire::permissions::PermissionView;
use serde_json::{Map, Value};

use super::Entry;
use crate::domain::Status;
use crate::text::with_markers;

/// A piece of a clause: our words, or agent text (already with markers) the channel isolates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub text: String,
    /// Text from the agent: escape and isolate it (`<bdi>`, FSI…PDI).
    pub agent: bool,
    /// A pattern or code: show it in monospace.
    pub code: bool,
}

impl Piece {
    fn ours(text: impl Into<String>) -> Piece {
        Piece {
            text: text.into(),
            agent: false,
            code: false,
        }
    }
    fn agent(text: impl Into<String>) -> Piece {
        Piece {
            text: text.into(),
            agent: true,
            code: false,
        }
    }
    fn code(text: impl Into<String>) -> Piece {
        Piece {
            text: text.into(),
            agent: true,
            code: true,
        }
    }
}

/// One clause after a comma: words, then the items of a list (one per line when more than one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    pub words: Vec<Piece>,
    pub items: Vec<Piece>,
    /// How the items read in one line: "or" for choices, "and" for a set that all applies.
    pub joined_by: &'static str,
    /// What comes before the clause: ", ", or a space after a list shown one entry per line.
    pub lead: &'static str,
    /// It bounds money (`fee amount at most 900`, `payment amount at most 10000`, `currencies
    /// only JPY or EUR`): the confirmation question names it too.
    pub money: bool,
}

impl Clause {
    fn of(words: Vec<Piece>) -> Clause {
        Clause::list(words, Vec::new(), "or")
    }
    /// Words, then a list whose items read `joined_by` in one line.
    fn list(words: Vec<Piece>, items: Vec<Piece>, joined_by: &'static str) -> Clause {
        Clause {
            words,
            items,
            joined_by,
            lead: ", ",
            money: false,
        }
    }
    /// The clause as plain text: its words, then its items joined by [`Clause::joined_by`].
    pub(crate) fn text(&self) -> String {
        let mut out = text_of(&self.words);
        if !self.items.is_empty() {
            let items: Vec<&str> = self.items.iter().map(|p| p.text.as_str()).collect();
            out.push(' ');
            out.push_str(&items.join(&format!(" {} ", self.joined_by)));
        }
        out
    }
    /// More than one item: the channel shows them one per line.
    pub(crate) fn one_per_line(&self) -> bool {
        self.items.len() > 1
    }
}

/// The request as a sentence: `who` wants to `what`, `clauses`…, — reason; then warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// The agent's name (agent text).
    pub who: String,
    /// "wants to" while pending; "may" once approved (the sentence is then what was granted);
    /// "was allowed to" once used up or revoked; "asked to" when denied or expired.
    pub verb: &'static str,
    /// What it wants to do, shown strong: "transfer up to 250 EUR".
    pub what: Vec<Piece>,
    pub clauses: Vec<Clause>,
    /// The agent's stated reason, with markers.
    pub reason: Option<String>,
    /// Where the request cannot be used as asked, in our words with the values quoted.
    pub warnings: Vec<String>,
    /// The amount the token allows, with its currency: "up to 250 EUR", or "between -50 and
    /// 250 EUR" when the scope lets it go below 0 (the pending list and the confirmation).
    pub money: Option<String>,
    /// How often: "once", "up to 50 times".
    pub uses: String,
}

impl Summary {
    /// The sentence as plain text (lists joined with "or"), for the tests.
    #[cfg(test)]
    pub(crate) fn plain(&self) -> String {
        let mut out = format!("{} {} {}", self.who, self.verb, text_of(&self.what));
        for c in &self.clauses {
            out.push_str(", ");
            out.push_str(&c.text());
        }
        if let Some(r) = &self.reason {
            out.push_str(" — reason (stated by the agent): ");
            out.push_str(r);
        }
        out
    }

    /// What a confirmation question names, without its question mark: the action with its
    /// money, where it goes, every other amount bound, and how often: "treasury-assistant:
    /// transfer up to 250 EUR to DE89 …, fee amount at most 5, once".
    pub(crate) fn confirm_question(&self) -> String {
        let mut out = format!("{}: {}", self.who, text_of(&self.what));
        let to = |c: &&Clause| c.words.first().is_some_and(|w| w.text == "to");
        for (i, c) in self.clauses.iter().filter(to).enumerate() {
            out.push_str(if i == 0 { " " } else { ", " });
            out.push_str(&c.text());
        }
        for c in self.clauses.iter().filter(|c| c.money) {
            out.push_str(", ");
            out.push_str(&c.text());
        }
        out.push_str(", ");
        out.push_str(&self.uses);
        out
    }
}

/// Pieces as plain text.
fn text_of(pieces: &[Piece]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect()
}

/// Verbs an action's segment may be, so `payment.send` reads "send payment".
const VERBS: &[&str] = &[
    "send", "transfer", "pay", "refund", "charge", "read", "write", "delete", "remove", "create",
    "update", "edit", "deploy", "run", "execute", "merge", "push", "publish", "post", "book",
    "buy", "order", "upload", "download", "move", "copy", "rename", "restart", "stop", "start",
    "invite", "share", "drop", "migrate", "list", "get", "fetch", "call", "open", "close", "sign",
    "cancel", "archive", "approve", "email", "reply", "forward", "grant", "revoke",
];

/// The summary of a request, as every channel shows it.
pub(crate) fn summary(v: &PermissionView) -> Summary {
    let entries = super::scope(&v.scope);
    // The scope keys the money phrase already says ("up to 250 EUR"); every other entry gets
    // its own clause, so a second or nested cap (`payment.max_amount`) is never left unsaid.
    let (money, said) = match money(&entries, &v.scope, v.action_details.as_ref()) {
        Some((m, keys)) => (Some(m), keys),
        None => (None, Vec::new()),
    };
    let (mut what, verb) = verb_phrase(&v.action, money.is_some());
    let mut clauses = Vec::new();
    match &money {
        Some(m) if verb => {
            what.push(Piece::ours(" "));
            what.extend(m.iter().cloned());
        }
        Some(m) => {
            let mut words = vec![Piece::ours("amount ")];
            words.extend(m.iter().cloned());
            clauses.push(Clause {
                money: true,
                ..Clause::of(words)
            });
        }
        None => {}
    }
    let uses = match v.uses_remaining {
        1 => "once".to_owned(),
        n => format!("up to {n} times"),
    };
    clauses.push(Clause::of(vec![Piece::ours(uses.clone())]));
    if let Some(r) = &v.resource {
        clauses.push(Clause::of(vec![
            Piece::ours("on "),
            // Free text from the agent (spaces, commas, parentheses) in the middle of our
            // sentence: boxed as code, so "acct (verified), within 1 min" cannot pass for ours.
            Piece::code(with_markers(r)),
        ]));
    }
    let mut passed = Vec::new();
    for e in &entries {
        match e.enforced {
            Some(_) if said.contains(&e.key) => {}
            Some(_) => clauses.extend(constraint(e).into_iter().map(|c| Clause {
                money: bounds_money(&e.key),
                ..c
            })),
            None => passed.push(e),
        }
    }
    clauses.push(Clause::of(vec![Piece::ours(format!(
        "within {}",
        minutes(v.ttl)
    ))]));
    if let Some(details) = &v.action_details {
        clauses.push(exactly(details));
    }
    if !passed.is_empty() {
        clauses.push(Clause::list(
            vec![Piece::ours(
                "and passes on to the service, which alone checks them:",
            )],
            passed.iter().copied().map(key_equals).collect(),
            "and",
        ));
    }
    for i in 1..clauses.len() {
        if clauses[i - 1].one_per_line() {
            clauses[i].lead = " ";
        }
    }
    Summary {
        who: with_markers(&v.agent_name).into_owned(),
        verb: match v.status {
            Status::Pending => "wants to",
            Status::Approved => "may",
            Status::Used | Status::Revoked => "was allowed to",
            Status::Denied | Status::Expired => "asked to",
        },
        what,
        clauses,
        reason: super::reason(&v.context),
        warnings: warnings(v),
        money: money.map(|m| text_of(&m)),
        uses,
    }
}

/// Most exact details the sentence lists, and the longest value it lists (characters).
const EXACT_LISTED_MAX: usize = 5;
const EXACT_VALUE_SHOWN_MAX: usize = 80;

/// The exact details a token is bound to. When there are few and short ones (at most
/// [`EXACT_LISTED_MAX`], each value at most [`EXACT_VALUE_SHOWN_MAX`] characters), every one,
/// in key order, nested keys dotted: where an exactly bound transfer goes is then on the first
/// screen. Otherwise none, and the sentence sends the reader to Details: a list cut short would
/// pass for the whole, and a long value could push the rest off the screen.
fn exactly(details: &Map<String, Value>) -> Clause {
    let mut entries = super::context(details, &[]);
    if entries.is_empty() {
        return Clause::of(vec![Piece::ours(
            "exactly with no details (any other use is refused)",
        )]);
    }
    let short = |e: &Entry| {
        e.values
            .iter()
            .map(|v| v.chars().count() + 2)
            .sum::<usize>()
            <= EXACT_VALUE_SHOWN_MAX
    };
    if entries.len() > EXACT_LISTED_MAX || !entries.iter().all(short) {
        let n = entries.len();
        return Clause::of(vec![Piece::ours(format!(
            "exactly with the {n} detail{} under Details, too many or too long to list here \
             (any other use is refused)",
            if n == 1 { "" } else { "s" }
        ))]);
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Clause::list(
        vec![Piece::ours(
            "exactly with these details (any other use is refused):",
        )],
        entries.iter().map(key_equals).collect(),
        "and",
    )
}

/// An entry as one item of a list: `key = value` (a list value in brackets, `key = []` when
/// empty), agent text boxed as code, so that even alone in the sentence it cannot pass for our
/// words (as the resource).
fn key_equals(e: &Entry) -> Piece {
    let value = e.values.join(", ");
    if e.list {
        Piece::code(format!("{} = [{value}]", e.key))
    } else {
        Piece::code(format!("{} = {value}", e.key))
    }
}

/// `payment.send` → "send payment" (or "send" when the money says what); otherwise "use" and
/// the action as it is. Also whether a verb was found.
fn verb_phrase(action: &str, has_money: bool) -> (Vec<Piece>, bool) {
    let parts: Vec<&str> = action.split('.').collect();
    let words = |ps: &[&str]| ps.join(" ").replace(['_', '-'], " ");
    let verb_at = [parts.len() - 1, 0]
        .into_iter()
        .find(|&i| VERBS.contains(&parts[i].to_ascii_lowercase().as_str()));
    match verb_at {
        Some(i) => {
            let rest: Vec<&str> = parts
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            let mut out = vec![Piece::agent(with_markers(parts[i]))];
            if !rest.is_empty() && !has_money {
                out.push(Piece::ours(" "));
                out.push(Piece::agent(with_markers(&words(&rest))));
            }
            (out, true)
        }
        None => (
            vec![Piece::ours("use "), Piece::code(with_markers(action))],
            false,
        ),
    }
}

/// The last segment of an entry's dotted key and the words for the path before it.
fn split_key(key: &str) -> (&str, String) {
    match key.rsplit_once('.') {
        Some((path, last)) => (last, format!("{} ", path.replace('.', " → "))),
        None => (key, String::new()),
    }
}

/// A field name in words: `max_file_size` → "file size".
fn field_words(field: &str) -> String {
    field.replace('_', " ")
}

/// One clause per enforced entry, from the key's convention (named by [`crate::scope::meaning`]).
fn constraint(e: &Entry) -> Vec<Clause> {
    let (key, path) = split_key(&e.key);
    let value = e.values.first().cloned().unwrap_or_default();
    let field = |prefix: &str| format!("{path}{}", field_words(&key[prefix.len()..]));
    let items = |f: fn(&str) -> String| e.values.iter().map(|v| Piece::agent(f(v))).collect();
    if key == "max_uses" {
        return Vec::new();
    }
    if let Some(f) = key.strip_prefix("max_") {
        if let Some(counted) = f.strip_suffix("_count") {
            return vec![Clause::of(vec![
                Piece::ours("at most "),
                Piece::agent(value),
                Piece::ours(" "),
                Piece::agent(format!("{path}{}", field_words(counted))),
            ])];
        }
        return vec![Clause::of(vec![
            Piece::agent(field("max_")),
            Piece::ours(" at most "),
            Piece::agent(quantity(f, &value)),
        ])];
    }
    if let Some(f) = key.strip_prefix("min_") {
        return vec![Clause::of(vec![
            Piece::agent(field("min_")),
            Piece::ours(" at least "),
            Piece::agent(quantity(f, &value)),
        ])];
    }
    if let Some(f) = key.strip_prefix("allowed_") {
        // Only a top-level list says where the money goes: `memo.allowed_ibans` checks a
        // memo, not the payee, and reads "memo → ibans only …".
        if path.is_empty()
            && matches!(
                f,
                "recipient" | "recipients" | "to" | "iban" | "ibans" | "account" | "accounts"
            )
        {
            return vec![Clause::list(
                vec![Piece::ours("to")],
                items(group_iban),
                "or",
            )];
        }
        let only = if e.values.is_empty() {
            " (nothing is allowed)"
        } else {
            " only"
        };
        return vec![Clause::list(
            vec![Piece::agent(field("allowed_")), Piece::ours(only)],
            items(group_iban),
            "or",
        )];
    }
    if let Some(f) = key.strip_prefix("blocked_") {
        return vec![Clause::list(
            vec![
                Piece::ours("never "),
                Piece::agent(format!("{path}{}", field_words(f))),
            ],
            items(group_iban),
            "nor",
        )];
    }
    if let Some(f) = key.strip_suffix("_pattern") {
        return vec![Clause::of(vec![
            Piece::agent(format!("{path}{}", field_words(f))),
            Piece::ours(" must match "),
            Piece::code(value),
        ])];
    }
    // A convention this sentence does not know yet: its meaning in the scope module's words.
    vec![Clause::of(vec![
        Piece::agent(e.key.clone()),
        Piece::ours(format!(" {} ", e.enforced.unwrap_or(""))),
        Piece::agent(e.values.join(", ")),
    ])]
}

/// An amount field under any spelling enforcement reads as one (`amount`, `amounts`,
/// `fee_amount`, `feeAmount`; spellings drop word separators).
fn is_amount(field: &str) -> bool {
    crate::scope::spellings(field)
        .iter()
        .any(|f| f.ends_with("amount"))
}

/// `amount` itself, under any spelling enforcement reads as it (`amounts`).
fn is_the_amount(field: &str) -> bool {
    crate::scope::spellings(field).iter().any(|f| f == "amount")
}

/// True for a key, at any depth, that bounds money: a `max_`/`min_` on an amount
/// (`payment.max_amount`, `min_fee_amount`) or a currency list (`allowed_currencies`). The
/// confirmation question names each.
fn bounds_money(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.strip_prefix("max_")
        .or_else(|| last.strip_prefix("min_"))
        .is_some_and(is_amount)
        || last
            .strip_prefix("allowed_")
            .is_some_and(|f| crate::scope::spellings(f).iter().any(|f| f == "currency"))
}

/// The amount the token allows, with its currency when the scope names one: "up to 250 EUR",
/// or "between -50 and 250 EUR" under a negative `min_amount`; and the scope keys that phrase
/// says. Only the top-level `max_amount` is *the* amount: any other amount cap (`max_fee_amount`,
/// `payment.max_amount`) bounds something else and gets its own clause, so a small fee cap can
/// never read as the amount.
fn money(
    entries: &[Entry],
    scope: &Map<String, Value>,
    details: Option<&Map<String, Value>>,
) -> Option<(Vec<Piece>, Vec<String>)> {
    // The top-level bound on `amount` itself, under any spelling (`max_amounts`).
    let enforced = |prefix: &str| {
        entries.iter().find(|e| {
            e.enforced.is_some()
                && !e.key.contains('.')
                && e.key.strip_prefix(prefix).is_some_and(is_the_amount)
        })
    };
    let cap_entry = enforced("max_")?;
    let cap = cap_entry.values.first()?;
    // Only a currency code joins the amount in our bold words; any other text stays agent text,
    // shown (boxed) where its entry is.
    let text = |v: &Value| {
        v.as_str()
            .filter(|s| is_currency_code(s))
            .map(str::to_owned)
    };
    let single = |v: &Value| match v.as_array().map(Vec::as_slice) {
        Some([one]) => text(one),
        _ => None,
    };
    let mut said = vec![cap_entry.key.clone()];
    const LISTS: [&str; 2] = ["allowed_currency", "allowed_currencies"];
    let allowed = LISTS
        .iter()
        .find_map(|k| scope.get(*k).and_then(single).map(|c| (*k, c)));
    let currency = match allowed {
        Some((k, c)) => {
            said.push(k.to_owned());
            Some(c)
        }
        // A currency list of several (or none) is its own clause; the passed-on `currency`
        // would then name one the token does not hold to.
        None if LISTS.iter().any(|k| scope.contains_key(*k)) => None,
        None => scope
            .get("currency")
            .and_then(text)
            .or_else(|| details.and_then(|d| d.get("currency")).and_then(text)),
    };
    let with_currency = |value: &str| match &currency {
        Some(c) => format!("{value} {c}"),
        None => value.to_owned(),
    };
    // A floor below 0 lets the amount go negative (a refund, a reversal): "up to 250" alone
    // would say less than the token allows.
    let floor = enforced("min_").filter(|e| {
        scope
            .get(&e.key)
            .and_then(Value::as_f64)
            .is_some_and(|n| n < 0.0)
    });
    let phrase = match floor.and_then(|e| Some((e, e.values.first()?))) {
        Some((e, floor)) => {
            said.push(e.key.clone());
            vec![
                Piece::ours("between "),
                Piece::agent(floor.clone()),
                Piece::ours(" and "),
                Piece::agent(with_currency(cap)),
            ]
        }
        None => vec![Piece::ours("up to "), Piece::agent(with_currency(cap))],
    };
    Some((phrase, said))
}

/// Three capital ASCII letters, as ISO 4217 writes a currency (`EUR`).
fn is_currency_code(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// A capped value in words: bytes in KiB/MiB/GiB, seconds in minutes, anything else as is.
/// Words never round the cap: where they would, the exact value comes first.
fn quantity(field: &str, value: &str) -> String {
    let Ok(n) = value.parse::<f64>() else {
        // A number too long to write out (`1 × 10^300`) keeps its unit.
        return match unit(field) {
            Some(unit) if value.contains("× 10^") => format!("{value} {unit}"),
            _ => value.to_owned(),
        };
    };
    // A whole number the float does not hold (2^53 + 1) is written as sent.
    let held = !value.bytes().all(|b| b.is_ascii_digit()) || format!("{n:.0}") == value;
    if unit(field) == Some("bytes") {
        return if held {
            bytes(n)
        } else {
            format!("{value} bytes")
        };
    }
    if unit(field) == Some("s") {
        // Whole seconds read as minutes and hours; 90.9 s stays 90.9 s.
        return if held && n.fract() == 0.0 && n.abs() < 1e12 {
            minutes(n as i64)
        } else {
            format!("{value} s")
        };
    }
    value.to_owned()
}

/// The unit a capped field counts in, by its name: bytes for a size, seconds for a duration.
fn unit(field: &str) -> Option<&'static str> {
    if field.ends_with("bytes") || field.ends_with("size") {
        Some("bytes")
    } else if field.ends_with("_secs") || field.ends_with("_seconds") || field == "seconds" {
        Some("s")
    } else {
        None
    }
}

/// 10485760 → "10 MiB"; under 1 KiB in bytes; a size that one decimal of its unit does not
/// hold exactly in bytes first: 1100000 → "1100000 bytes (about 1 MiB)".
pub(crate) fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024.0 {
        return format!("{n} bytes");
    }
    let mut v = n / 1024.0;
    let mut scale = 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        scale *= 1024.0;
        unit += 1;
    }
    let shown = format!("{v:.1}");
    let exact = shown.parse::<f64>().is_ok_and(|s| s * scale == n);
    let shown = shown.strip_suffix(".0").unwrap_or(&shown);
    if exact {
        format!("{shown} {}", UNITS[unit])
    } else {
        format!("{n} bytes (about {shown} {})", UNITS[unit])
    }
}

/// A duration in whole minutes where it is one: "30 min", "1 h 30 min", "45 s".
pub(crate) fn minutes(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 && s % 60 == 0 => format!("{} min", s / 60),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} h {} min {} s", s / 3600, (s % 3600) / 60, s % 60),
    }
}

/// An IBAN grouped by four ("DE89 3704 0044 …"); anything else unchanged.
fn group_iban(s: &str) -> String {
    let compact: String = s.chars().filter(|c| *c != ' ').collect();
    let looks_like = compact.len() >= 15
        && compact.len() <= 34
        && compact.chars().take(2).all(|c| c.is_ascii_uppercase())
        && compact.chars().skip(2).take(2).all(|c| c.is_ascii_digit())
        && compact.chars().all(|c| c.is_ascii_alphanumeric());
    if !looks_like {
        return s.to_owned();
    }
    compact
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where the token would refuse what the request itself says it will do: its exact details, or
/// a plain value in the scope (`currency: GBP`) against an `allowed_`/`max_` key for it.
fn warnings(v: &PermissionView) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(details) = &v.action_details
        && let Err(why) = crate::scope::enforce(&v.scope, Some(details))
    {
        out.push(format!(
            "This request cannot be used as asked: its own details break {} ({}).",
            with_markers(&why.key),
            with_markers(&why.message)
        ));
    }
    for (key, value) in &v.scope {
        if crate::scope::meaning(key).is_some() || value.is_object() || value.is_array() {
            continue;
        }
        let shown = super::text(value);
        if let Some(allowed) = v
            .scope
            .get(&format!("allowed_{key}"))
            .and_then(Value::as_array)
            && !allowed.iter().any(|a| crate::scope::json_eq(a, value))
        {
            let list: Vec<String> = allowed.iter().map(super::text).collect();
            out.push(format!(
                "It asks for {} {shown}, but only {} is allowed: a use with {shown} will be refused.",
                with_markers(key),
                if list.is_empty() {
                    "nothing".to_owned()
                } else {
                    list.join(" or ")
                }
            ));
        }
        // Compared and shown exactly, as enforced: through f64, 9007199254740993 is not over a
        // cap of 9007199254740992, and a cap of 4611686018427840512 reads 4611686018427840000.
        if let (Some(cap @ Value::Number(c)), Value::Number(n)) =
            (v.scope.get(&format!("max_{key}")), value)
            && crate::number::cmp(n, c) == std::cmp::Ordering::Greater
        {
            out.push(format!(
                "It asks for {} {shown}, but at most {} is allowed: such a use will be refused.",
                with_markers(key),
                super::text(cap)
            ));
        }
    }
    if v.requested_scope != v.scope && v.status == Status::Pending {
        out.push("The policy narrowed what the agent asked for (see Details).".to_owned());
    }
    out
}

#[cfg(test)]
mod tests;
