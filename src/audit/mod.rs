//! The audit trail: an append-only list of events, each chained to the one before.
//!
//! Event `seq` stores `prev_hash` (the previous event's `hash`, or 64 zeros for the first) and
//! `hash = HMAC-SHA-256(audit key, "agent-otp audit chain v1\n" ‖ prev_hash ‖ canonical JSON of
//! the event)`, hex-encoded ([`key`]: the key is kept outside the database). Events written before
//! the chain was keyed (`keyed = false`, databases from earlier versions) keep their plain
//! `SHA-256(prev_hash ‖ canonical JSON)` and still verify; once a keyed event exists, every later
//! one must be keyed too. The canonical JSON is the object `{seq, at, actor, event, requestId,
//! agentId, details}` with every object's keys sorted by their UTF-8 bytes, no whitespace,
//! strings escaped as JSON requires (non-ASCII kept as UTF-8), and numbers as `serde_json` prints
//! them (integers in decimal). `at` is Unix milliseconds. Changing, deleting or reordering a row
//! breaks the chain at that row; signed [`checkpoint`]s kept beside the database catch a cut-off
//! tail or a chain rebuilt from scratch, and [`replay`] catches state rows edited behind the
//! service's back.
//!
//! Events never carry a token, key, session id or link secret.

pub(crate) mod checkpoint;
pub(crate) mod key;
pub(crate) mod replay;

pub(crate) use key::AuditKey;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::clock::Timestamp;
use crate::secret::{self, sha256_hex};
use key::Purpose;

/// `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub event: &'static str,
    pub request_id: Option<String>,
    pub agent_id: Option<String>,
    /// The details in canonical JSON: what is stored and hashed.
    pub details: Canonical,
}

impl NewEvent {
    /// An event of kind `event` by `actor` with `details` (a JSON object, or one already written
    /// in canonical form by [`CanonicalObject`]).
    pub fn new(
        actor: impl ToString,
        event: &'static str,
        details: impl Into<Canonical>,
    ) -> NewEvent {
        NewEvent {
            actor: actor.to_string(),
            event,
            request_id: None,
            agent_id: None,
            details: details.into(),
        }
    }

    /// Attaches the request this event is about.
    pub fn request(mut self, id: impl ToString) -> NewEvent {
        self.request_id = Some(id.to_string());
        self
    }

    /// Attaches the agent this event is about.
    pub fn agent(mut self, id: impl ToString) -> NewEvent {
        self.agent_id = Some(id.to_string());
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub event: String,
    pub request_id: Option<String>,
    pub agent_id: Option<String>,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
    /// Whether `hash` is keyed (HMAC with the audit key) or, for events from before keys, plain
    /// SHA-256.
    pub keyed: bool,
}

/// The parts of an event that its hash covers (besides `prev_hash`).
struct Hashed<'a> {
    seq: i64,
    at: Timestamp,
    actor: &'a str,
    event: &'a str,
    request_id: Option<&'a str>,
    agent_id: Option<&'a str>,
}

impl Hashed<'_> {
    /// What the hash covers, given `details` already in canonical JSON: `prev_hash` and then
    /// the event in canonical form (its keys are fixed, so their byte order is too).
    fn body(&self, prev_hash: &str, details: &str) -> String {
        let mut body = String::with_capacity(prev_hash.len() + details.len() + 256);
        body.push_str(prev_hash);
        body.push_str("{\"actor\":");
        write_str(self.actor, &mut body);
        body.push_str(",\"agentId\":");
        write_opt_str(self.agent_id, &mut body);
        body.push_str(",\"at\":");
        push_int(self.at.0, &mut body);
        body.push_str(",\"details\":");
        body.push_str(details);
        body.push_str(",\"event\":");
        write_str(self.event, &mut body);
        body.push_str(",\"requestId\":");
        write_opt_str(self.request_id, &mut body);
        body.push_str(",\"seq\":");
        push_int(self.seq, &mut body);
        body.push('}');
        body
    }
}

/// The hash of a chain link's body: keyed with the audit key, or plain SHA-256 (events from
/// before the chain was keyed).
pub(crate) fn link_hash(key: Option<&AuditKey>, body: &str) -> String {
    match key {
        Some(key) => key.mac(Purpose::Chain, body.as_bytes()),
        None => sha256_hex(body.as_bytes()),
    }
}

/// What the hash of a new event numbered `seq` covers, given the hash before it and the event's
/// details in canonical JSON (which the caller also stores); see [`link_hash`].
pub(crate) fn chain_body(
    prev_hash: &str,
    seq: i64,
    at: Timestamp,
    ev: &NewEvent,
    details: &str,
) -> String {
    Hashed {
        seq,
        at,
        actor: &ev.actor,
        event: ev.event,
        request_id: ev.request_id.as_deref(),
        agent_id: ev.agent_id.as_deref(),
    }
    .body(prev_hash, details)
}

impl StoredEvent {
    /// One line of `agent-otp audit export`: the hashed fields exactly as hashed (`at` in Unix
    /// milliseconds), plus `time` (the same instant in RFC 3339, not hashed), `prevHash` and `hash`.
    pub fn export_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "at": self.at.0,
            "time": self.at.rfc3339(),
            "actor": self.actor,
            "event": self.event,
            "requestId": self.request_id,
            "agentId": self.agent_id,
            "details": self.details,
            "prevHash": self.prev_hash,
            "hash": self.hash,
            "keyed": self.keyed,
        })
    }

    /// Recomputes this event's hash from its contents and its stored `prev_hash` (`key` for a
    /// keyed event; `None` there yields a hash that cannot match).
    pub fn recompute_hash(&self, key: Option<&AuditKey>) -> String {
        let body = Hashed {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            event: &self.event,
            request_id: self.request_id.as_deref(),
            agent_id: self.agent_id.as_deref(),
        }
        .body(&self.prev_hash, &canonical_json(&self.details));
        match (self.keyed, key) {
            (false, _) => link_hash(None, &body),
            (true, Some(key)) => link_hash(Some(key), &body),
            (true, None) => String::new(),
        }
    }
}

/// What kind of tampering a break looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// A row's contents no longer match its hash (a field was edited).
    Changed,
    /// A row is missing from its place (deleted, or its `seq` edited away).
    Missing,
    /// A row sits where it does not belong (rows swapped or moved).
    Reordered,
    /// A row cannot be checked (it is keyed, and the key is not at hand).
    Unverifiable,
}

impl BreakKind {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakKind::Changed => "changed",
            BreakKind::Missing => "missing",
            BreakKind::Reordered => "reordered",
            BreakKind::Unverifiable => "unverifiable",
        }
    }
}

/// Where and why a chain stops verifying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first `seq` at which the chain does not hold.
    pub seq: i64,
    pub kind: BreakKind,
    pub why: String,
    /// For a link that does not fit: the row's `prev_hash`, which [`Break::refine`] can look up.
    pub dangling_prev: Option<String>,
}

impl Break {
    /// Sharpens a broken link once the caller has looked up which row, if any, has the hash
    /// this row points back to: another row's hash means the rows were reordered; none means
    /// the row's `prev_hash` itself was edited.
    pub fn refine(mut self, linked_seq: Option<i64>) -> Break {
        if self.dangling_prev.take().is_some() {
            match linked_seq {
                Some(other) => {
                    self.kind = BreakKind::Reordered;
                    self.why = format!(
                        "this row follows event {other}, not event {} (rows swapped or moved)",
                        self.seq - 1
                    );
                }
                None => {
                    self.kind = BreakKind::Changed;
                    self.why = "prev_hash matches no event (prev_hash edited?)".to_owned();
                }
            }
        }
        self
    }
}

/// Checks events one at a time, in `seq` order, without holding them all.
#[derive(Debug)]
pub struct ChainVerifier {
    prev: String,
    count: i64,
    key: Option<AuditKey>,
    /// The first keyed event seen, if any: no unkeyed event may follow it.
    keyed_from: Option<i64>,
}

impl ChainVerifier {
    /// A verifier that checks keyed events with `key` (without it, a keyed event cannot verify).
    pub fn new(key: Option<AuditKey>) -> ChainVerifier {
        ChainVerifier {
            prev: GENESIS_HASH.to_owned(),
            count: 0,
            key,
            keyed_from: None,
        }
    }

    /// The `seq` of the first keyed event verified so far.
    pub fn keyed_from(&self) -> Option<i64> {
        self.keyed_from
    }

    /// Checks the next event against the chain so far.
    pub fn push(&mut self, e: &StoredEvent) -> Result<(), Break> {
        let expected_seq = self.count + 1;
        let broken = |seq, kind, why: String| Break {
            seq,
            kind,
            why,
            dangling_prev: None,
        };
        if e.seq > expected_seq {
            let why = format!(
                "event {expected_seq} is missing (next is {}: row deleted?)",
                e.seq
            );
            return Err(broken(expected_seq, BreakKind::Missing, why));
        }
        if e.seq < expected_seq {
            let why = "sequence goes backwards (reordered rows?)".to_owned();
            return Err(broken(e.seq, BreakKind::Reordered, why));
        }
        if e.prev_hash != self.prev {
            let why = "prev_hash does not match the previous event's hash".to_owned();
            return Err(Break {
                dangling_prev: Some(e.prev_hash.clone()),
                ..broken(e.seq, BreakKind::Reordered, why)
            });
        }
        if !e.keyed && self.keyed_from.is_some() {
            let why =
                "an unkeyed event after keyed ones (chain rebuilt without the key?)".to_owned();
            return Err(broken(e.seq, BreakKind::Changed, why));
        }
        if e.keyed && self.key.is_none() {
            let why = "the event is keyed and no audit key was given to check it".to_owned();
            return Err(broken(e.seq, BreakKind::Unverifiable, why));
        }
        if !secret::hashes_equal(&e.recompute_hash(self.key.as_ref()), &e.hash) {
            let why = "hash does not match the event's contents (row edited?)".to_owned();
            return Err(broken(e.seq, BreakKind::Changed, why));
        }
        if e.keyed && self.keyed_from.is_none() {
            self.keyed_from = Some(e.seq);
        }
        self.prev.clone_from(&e.hash);
        self.count += 1;
        Ok(())
    }

    /// How many events verified, and the hash of the last one (the head).
    pub fn finish(self) -> (i64, String) {
        (self.count, self.prev)
    }
}

/// Walks events in `seq` order; returns the count and head hash, or the first broken link (the
/// tests' shorthand for a [`ChainVerifier`] run).
#[cfg(test)]
pub(crate) fn verify<I: IntoIterator<Item = StoredEvent>>(
    events: I,
    key: Option<AuditKey>,
) -> Result<(i64, String), Break> {
    let mut v = ChainVerifier::new(key);
    for e in events {
        v.push(&e)?;
    }
    Ok(v.finish())
}

/// Canonical JSON: keys sorted by UTF-8 bytes at every level, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

/// A JSON object in canonical form ([`CanonicalObject`] writes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canonical(String);

impl Canonical {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Value> for Canonical {
    fn from(details: Value) -> Canonical {
        Canonical(canonical_json(&details))
    }
}

/// Writes a JSON object in canonical form as it goes, without building a `Value`: the caller
/// gives the entries in canonical key order (checked in debug builds, and by the tests that
/// compare with [`canonical_json`]).
pub(crate) struct CanonicalObject {
    out: String,
    last_key: &'static str,
}

impl CanonicalObject {
    pub(crate) fn with_capacity(bytes: usize) -> CanonicalObject {
        let mut out = String::with_capacity(bytes);
        out.push('{');
        CanonicalObject { out, last_key: "" }
    }

    fn key(&mut self, key: &'static str) -> &mut String {
        debug_assert!(
            self.out.len() == 1 || self.last_key.as_bytes() < key.as_bytes(),
            "{key:?} after {:?}",
            self.last_key
        );
        if self.out.len() > 1 {
            self.out.push(',');
        }
        self.last_key = key;
        write_str(key, &mut self.out);
        self.out.push(':');
        &mut self.out
    }

    pub(crate) fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        write_str(value, self.key(key));
        self
    }

    pub(crate) fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        write_opt_str(value, self.key(key));
        self
    }

    pub(crate) fn int(&mut self, key: &'static str, value: i64) -> &mut Self {
        push_int(value, self.key(key));
        self
    }

    pub(crate) fn object(&mut self, key: &'static str, value: &Map<String, Value>) -> &mut Self {
        write_object(value, self.key(key));
        self
    }

    pub(crate) fn value(&mut self, key: &'static str, value: &Value) -> &mut Self {
        write_canonical(value, self.key(key));
        self
    }

    pub(crate) fn finish(mut self) -> Canonical {
        self.out.push('}');
        Canonical(self.out)
    }
}

/// [`canonical_json`] of a JSON object, without wrapping it in a `Value` first.
pub(crate) fn canonical_json_object(map: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(map, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(text) => write_str(text, out),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Numbers: serde_json's own encoding is already canonical for them.
        Value::Number(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
fn write_str(text: &str, out: &mut String) {
    // Most strings (ids, names, hashes) need no escape: serde_json would copy them as they are.
    // Every byte is looked at (no early exit), which the compiler turns into vector compares.
    let needs_escape = text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
        return;
    }
    // Serializing a `str` cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

/// An integer in decimal, as serde_json prints it.
fn push_int(n: i64, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

fn write_opt_str(text: Option<&str>, out: &mut String) {
    match text {
        Some(t) => write_str(t, out),
        None => out.push_str("null"),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    // Sorted with their values, so no key is looked up (hashed) again.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(k, out);
        out.push(':');
        write_canonical(v, out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` events; those from `keyed_from` on keyed with `key`.
    fn chain(n: i64) -> Vec<StoredEvent> {
        mixed_chain(n, None, None)
    }

    fn mixed_chain(n: i64, key: Option<&AuditKey>, keyed_from: Option<i64>) -> Vec<StoredEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let keyed = keyed_from.is_some_and(|k| seq >= k);
                let ev = NewEvent::new(
                    "policy",
                    "permission.requested",
                    json!({"n": seq, "b": [1, "é"]}),
                )
                .request(format!("r{seq}"));
                let body = chain_body(&prev, seq, Timestamp(seq * 1000), &ev, ev.details.as_str());
                let hash = link_hash(key.filter(|_| keyed), &body);
                let stored = StoredEvent {
                    seq,
                    at: Timestamp(seq * 1000),
                    actor: ev.actor,
                    event: ev.event.to_owned(),
                    request_id: ev.request_id,
                    agent_id: None,
                    details: serde_json::from_str(ev.details.as_str()).unwrap(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                    keyed,
                };
                prev = hash;
                stored
            })
            .collect()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut texts: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        texts.extend(["", "plain", "é ✓ \u{1F600}", "\u{2028}\u{7f}", "x\"y\\z"].map(String::from));
        for text in texts {
            let mut out = String::new();
            write_str(&text, &mut out);
            assert_eq!(out, serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn scalars_print_as_serde_json_prints_them() {
        let values = json!([
            0,
            -1,
            u64::MAX,
            i64::MIN,
            1.5,
            0.1,
            -0.0,
            1e300,
            1e-7,
            123_456_789.125,
            true,
            false,
            null
        ]);
        for v in values.as_array().unwrap() {
            assert_eq!(
                canonical_json(v),
                serde_json::to_string(v).unwrap(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys_everywhere() {
        let v = json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
        let map = v.as_object().unwrap();
        assert_eq!(canonical_json_object(map), canonical_json(&v));
    }

    #[test]
    fn hash_body_is_the_canonical_json_of_the_event() {
        for (request_id, agent_id) in [(None, None), (Some("r\"1"), Some("a-é"))] {
            let details = json!({"z": 1, "a": ["x", {"k": null}], "ü": 1.5});
            let hashed = Hashed {
                seq: 7,
                at: Timestamp(1_700_000_000_123),
                actor: "human:bob \"b\"",
                event: "permission.approved",
                request_id,
                agent_id,
            };
            let body = json!({
                "seq": 7,
                "at": 1_700_000_000_123_i64,
                "actor": "human:bob \"b\"",
                "event": "permission.approved",
                "requestId": request_id,
                "agentId": agent_id,
                "details": details,
            });
            let expected =
                sha256_hex(format!("{GENESIS_HASH}{}", canonical_json(&body)).as_bytes());
            let got = link_hash(None, &hashed.body(GENESIS_HASH, &canonical_json(&details)));
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn intact_chain_verifies_and_tampering_is_located() {
        let events = chain(5);
        let (count, head) = verify(events.clone(), None).unwrap();
        assert_eq!((count, head.as_str()), (5, events[4].hash.as_str()));

        let mut changed = events.clone();
        changed[2].details = json!({"n": 99});
        assert_eq!(verify(changed, None).unwrap_err().seq, 3);

        let mut deleted = events.clone();
        deleted.remove(1);
        let b = verify(deleted, None).unwrap_err();
        assert_eq!((b.seq, b.kind), (2, BreakKind::Missing));

        // Swapped rows keep their seq values in the table: seq 2 now holds event 3's contents.
        let mut swapped = events.clone();
        let (a, b) = (swapped[1].clone(), swapped[2].clone());
        swapped[1] = StoredEvent { seq: 2, ..b };
        swapped[2] = StoredEvent { seq: 3, ..a };
        let b = verify(swapped, None).unwrap_err();
        assert_eq!(b.seq, 2);
        let linked = events
            .iter()
            .find(|e| Some(&e.hash) == b.dangling_prev.as_ref())
            .map(|e| e.seq);
        assert_eq!(b.refine(linked).kind, BreakKind::Reordered);

        let mut edited = events;
        edited[3].prev_hash = "f".repeat(64);
        let b = verify(edited, None).unwrap_err();
        assert_eq!((b.seq, b.refine(None).kind), (4, BreakKind::Changed));
    }

    #[test]
    fn a_keyed_chain_needs_its_key_and_cannot_be_rebuilt_without_it() {
        let key = AuditKey::from_hex(&"42".repeat(32)).unwrap();
        let other = AuditKey::from_hex(&"43".repeat(32)).unwrap();
        // Events 1–3 from before keys, 4–6 keyed: the old part still verifies as it is.
        let events = mixed_chain(6, Some(&key), Some(4));
        let mut v = ChainVerifier::new(Some(key.clone()));
        for e in &events {
            v.push(e).unwrap();
        }
        assert_eq!(v.keyed_from(), Some(4));
        assert_eq!(
            verify(events.clone(), None).unwrap_err().kind,
            BreakKind::Unverifiable
        );
        assert_eq!(verify(events.clone(), Some(other)).unwrap_err().seq, 4);

        // An intruder without the key edits event 5 and rebuilds the chain from there with plain
        // SHA-256: the unkeyed event after keyed ones gives it away.
        let mut rebuilt = mixed_chain(6, Some(&key), Some(4));
        rebuilt[4].details = json!({"n": 99});
        let mut prev = rebuilt[3].hash.clone();
        for e in rebuilt.iter_mut().skip(4) {
            e.prev_hash = prev.clone();
            e.keyed = false;
            e.hash = e.recompute_hash(None);
            prev = e.hash.clone();
        }
        let b = verify(rebuilt, Some(key.clone())).unwrap_err();
        assert_eq!((b.seq, b.kind), (5, BreakKind::Changed));
        assert!(b.why.contains("unkeyed"), "{}", b.why);

        // Rebuilding the keyed part with a guessed key fails at its first event.
        let mut guessed = mixed_chain(6, Some(&key), Some(4));
        guessed[4].details = json!({"n": 99});
        let b = verify(guessed, Some(key)).unwrap_err();
        assert_eq!((b.seq, b.kind), (5, BreakKind::Changed));
    }
}
