//! Protected services and their keys. A protected service (the mailer that receives `otpToken`,
//! the payment gateway) holds its own key, `sk_…`, for the actions it serves (`gmail.*`). With it
//! it can introspect and use any token for those actions by the token alone, sending the real
//! details of what it does: that is where a scope is enforced strictly, since an agent's own
//! `actionDetails` are self-reported. A service key opens no agent, admin or human route.
//!
//! Each change is written with its audit event in the caller's transaction; keys are handed
//! back once and stored only as SHA-256.

use crate::domain::ProtectedService;
use rusqlite::Transaction;

use super::Service;
use serde_json::json;

use crate::audit::NewEvent;
use crate::clock::Timestamp;
use crate::domain::records::check_name;
use crate::domain::{Actor, ServiceId};
use crate::error::{Error, Result};
use crate::secret::{self, SERVICE_KEY_PREFIX, Secret};
use crate::store::audit;
use crate::store::services as sql;

/// Most action patterns one service may hold.
pub(crate) const MAX_PATTERNS: usize = 32;
/// Longest action pattern, in characters.
pub(crate) const PATTERN_MAX_CHARS: usize = 255;

/// Splits and checks `gmail.*,calendar.read`: each pattern is an action name (ASCII letters,
/// digits, `.`, `_`, `:`, `-`) in which `*` stands for any run of characters.
pub(crate) fn parse_patterns(list: &str) -> Result<Vec<String>> {
    let patterns: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let bad = |why: String| Error::invalid("actions", why);
    if patterns.is_empty() || patterns.len() > MAX_PATTERNS {
        return Err(bad(format!(
            "give 1–{MAX_PATTERNS} action patterns, comma-separated (e.g. gmail.*,calendar.read)"
        )));
    }
    for p in &patterns {
        let ok = p.chars().count() <= PATTERN_MAX_CHARS
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-' | '*'));
        if !ok {
            return Err(bad(format!(
                "{:?} is not an action pattern (letters, digits, '.', '_', ':', '-' and '*', \
                 at most {PATTERN_MAX_CHARS} characters)",
                crate::text::with_markers(p)
            )));
        }
    }
    Ok(patterns)
}

/// Whether `action` matches `pattern`, where `*` stands for any run of characters (also none,
/// also dots): `gmail.*` matches `gmail.send` and `gmail.drafts.create`, not `gmail` or
/// `gmailx.send`.
pub(crate) fn pattern_matches(pattern: &str, action: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = action.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: the whole action must equal the pattern
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

impl ProtectedService {
    /// Whether this service may introspect and use tokens for `action`.
    pub fn serves(&self, action: &str) -> bool {
        self.actions.iter().any(|p| pattern_matches(p, action))
    }
}

/// Creates a service for `patterns` and returns it with its key (shown once).
pub(crate) fn create(
    tx: &Transaction<'_>,
    name: &str,
    patterns: Vec<String>,
    by: &Actor,
    now: Timestamp,
) -> Result<(ProtectedService, Secret)> {
    check_name(name)?;
    let key = secret::generate(SERVICE_KEY_PREFIX)?;
    let service = ProtectedService {
        id: ServiceId::new_random(),
        name: name.to_owned(),
        actions: patterns,
        created_at: now,
        revoked_at: None,
        key_hash: key.hash(),
    };
    if !sql::insert(tx, &service)? {
        return Err(Error::Conflict(format!(
            "a service named {name:?} already exists"
        )));
    }
    let details = json!({ "id": service.id, "name": name, "actions": service.actions });
    audit::append(tx, now, &NewEvent::new(by, "service.created", details))?;
    Ok((service, key))
}

/// Revokes a service by id or name; its key stops working at once. Already revoked → conflict.
pub(crate) fn revoke(
    tx: &Transaction<'_>,
    id_or_name: &str,
    by: &Actor,
    now: Timestamp,
) -> Result<ProtectedService> {
    let Some(mut service) = sql::by_id_or_name(tx, id_or_name)? else {
        return Err(Error::NotFound(format!(
            "no service with id or name {id_or_name:?}"
        )));
    };
    if !sql::revoke(tx, &service.id, now)? {
        return Err(Error::Conflict(format!(
            "service {:?} is already revoked",
            service.name
        )));
    }
    let details = json!({ "id": service.id, "name": service.name });
    audit::append(tx, now, &NewEvent::new(by, "service.revoked", details))?;
    service.revoked_at = Some(now);
    Ok(service)
}

impl Service {
    /// Every protected service, oldest first.
    pub async fn protected_services(&self) -> Result<Vec<ProtectedService>> {
        self.store.read(|c| sql::list(c).map_err(Error::from)).await
    }

    /// Creates a protected service for the comma-separated action patterns `actions`; returns
    /// it with its key, shown this once.
    pub async fn create_protected_service(
        &self,
        by: Actor,
        name: &str,
        actions: &str,
    ) -> Result<(ProtectedService, Secret)> {
        let patterns = parse_patterns(actions)?;
        let (now, name) = (self.now(), name.to_owned());
        self.store
            .write(move |tx| create(tx, &name, patterns.clone(), &by, now))
            .await
    }

    /// Revokes a protected service by id or name (see [`revoke`]).
    pub async fn revoke_protected_service(
        &self,
        by: Actor,
        id_or_name: &str,
    ) -> Result<ProtectedService> {
        let (now, id_or_name) = (self.now(), id_or_name.to_owned());
        self.store
            .write(move |tx| revoke(tx, &id_or_name, &by, now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_actions_with_stars_for_any_run() {
        let cases = [
            ("gmail.*", "gmail.send", true),
            ("gmail.*", "gmail.drafts.create", true),
            ("gmail.*", "gmail", false),
            ("gmail.*", "gmailx.send", false),
            ("gmail.*", "xgmail.send", false),
            ("gmail.send", "gmail.send", true),
            ("gmail.send", "gmail.sendx", false),
            ("gmail.send", "gmail.sen", false),
            ("*.read", "file.read", true),
            ("*.read", "file.reader", false),
            ("bank.*.eur", "bank.transfer.eur", true),
            ("bank.*.eur", "bank.transfer.usd", false),
            ("bank.*.eur", "bank..eur", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*", "anything.at.all", true),
        ];
        for (pattern, action, expected) in cases {
            assert_eq!(
                pattern_matches(pattern, action),
                expected,
                "{pattern} ~ {action}"
            );
        }
    }

    #[test]
    fn pattern_lists_are_checked() {
        assert_eq!(
            parse_patterns(" gmail.* , calendar.read ").unwrap(),
            ["gmail.*", "calendar.read"]
        );
        for bad in ["", " , ", "gmail send", "gmail.\u{202E}*", "a/b", "ü"] {
            assert!(parse_patterns(bad).is_err(), "{bad:?}");
        }
    }
}
