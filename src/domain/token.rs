//! Whether one use of a token is allowed: pure functions of the stored permission, what the
//! caller presents, and the time. The service runs them inside the transaction that consumes the
//! use, so what they read is what the use changes.

use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::domain::{Permission, RequestId, Status};
use crate::error::{Error, Result};
use crate::secret::{self, PERMISSION_TOKEN_PREFIX, Secret};
use crate::text::with_markers;

/// A use of a token, as an agent or a protected service presents it.
#[derive(Debug)]
pub struct UseRequest {
    pub token: Secret,
    /// The action the caller performs, if it says: it must be the token's.
    pub action: Option<String>,
    /// The resource the caller acts on, if it says, in its normal form: it must be the token's.
    pub resource: Option<String>,
    /// What the caller does, checked against the scope (and the exact binding, if any).
    pub details: Option<Map<String, Value>>,
}

/// Why a token is refused. Each has a stable code ([`Refusal::code`]) and a sentence
/// ([`Refusal::reason`]); a refusal consumes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not this permission's token (or none was issued).
    InvalidToken,
    /// A protected service presented a token for an action its key does not serve: it looks
    /// like an unknown token.
    NotServed,
    /// No uses left.
    Used,
    Expired,
    Revoked,
    /// Pending or denied.
    NotApproved,
    /// The use names another action than the token's.
    ActionMismatch {
        granted: String,
        presented: String,
    },
    /// The use names another resource than the token's.
    ResourceMismatch {
        granted: Option<String>,
        presented: String,
    },
    /// The grant demands `actionDetails` and the use gave none.
    DetailsRequired,
    /// The details differ from the exact details the token is bound to.
    DetailsMismatch,
    /// The details break the scope (the violation in words).
    ScopeViolation(String),
}

impl Refusal {
    /// The stable machine code (the answer's `code`).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidToken | Refusal::NotServed => "INVALID_TOKEN",
            Refusal::Used => "TOKEN_USED",
            Refusal::Expired => "TOKEN_EXPIRED",
            Refusal::Revoked => "TOKEN_REVOKED",
            Refusal::NotApproved => "NOT_APPROVED",
            Refusal::ActionMismatch { .. } => "ACTION_MISMATCH",
            Refusal::ResourceMismatch { .. } => "RESOURCE_MISMATCH",
            Refusal::DetailsRequired => "DETAILS_REQUIRED",
            Refusal::DetailsMismatch => "DETAILS_MISMATCH",
            Refusal::ScopeViolation(_) => "SCOPE_VIOLATION",
        }
    }

    /// The sentence for the caller (agent text in it is shown with markers).
    pub(crate) fn reason(&self) -> String {
        match self {
            Refusal::InvalidToken => "the token does not belong to this permission".into(),
            Refusal::NotServed => "the token is not valid for this service".into(),
            Refusal::Used => "the token has no uses left".into(),
            Refusal::Expired => "the token has expired".into(),
            Refusal::Revoked => "the permission was revoked".into(),
            Refusal::NotApproved => "the permission is not approved".into(),
            Refusal::ActionMismatch { granted, presented } => {
                format!(
                    "the token is for {granted:?}, not {:?}",
                    with_markers(presented)
                )
            }
            Refusal::ResourceMismatch { granted, presented } => {
                let granted = match granted {
                    Some(r) => format!("{r:?}"),
                    None => "no resource".to_owned(),
                };
                format!(
                    "the token is for {granted}, not {:?}",
                    with_markers(presented)
                )
            }
            Refusal::DetailsRequired => {
                "this permission must be used with the actionDetails it performs".into()
            }
            Refusal::DetailsMismatch => {
                "actionDetails differ from the exact details that were approved".into()
            }
            Refusal::ScopeViolation(why) => why.clone(),
        }
    }
}

/// A new token for request `id`: `otp_`, the id (a UUID) in 22 base62 characters, then 40 random
/// ones. The id is not secret (the agent has it already); it lets a protected service, which has
/// the token alone, find the request by its id. An index of token hashes would do it too, but its
/// random keys cost every issued token a write to a random page of the database. What is stored
/// and compared is still the SHA-256 of the whole token.
pub(crate) fn mint_token(id: &RequestId) -> Result<Secret> {
    // Only the spelling `named_request` gives back: a token must find its own request.
    let uuid = uuid::Uuid::parse_str(id.as_str())
        .ok()
        .filter(|u| u.hyphenated().to_string() == id.as_str())
        .ok_or_else(|| {
            Error::Internal(format!("request id {id:?} is not a UUID as we write it"))
        })?;
    let prefix = format!(
        "{PERMISSION_TOKEN_PREFIX}{}",
        secret::base62_u128(uuid.as_u128())
    );
    Ok(secret::generate(&prefix)?)
}

/// The request a token of [`mint_token`]'s shape names, read from its text alone (`otp_`, 22
/// base62 characters of a UUID, then 40 more); `None` for any other text (a token from before
/// tokens named their request, or not a token). Only the whole token's hash, compared with the
/// one stored for that request, says whether it is that request's token: the name is a hint.
pub(crate) fn named_request(token: &str) -> Option<RequestId> {
    let rest = token.strip_prefix(PERMISSION_TOKEN_PREFIX)?;
    if rest.len() != secret::U128_CHARS + secret::RANDOM_CHARS {
        return None;
    }
    let n = secret::parse_base62_u128(rest.get(..secret::U128_CHARS)?)?;
    Some(RequestId(uuid::Uuid::from_u128(n).to_string()))
}

/// Whether `token` is this permission's and still works at `now` (approved, uses left).
pub(crate) fn check_token(row: &Permission, token: &str, now: Timestamp) -> Result<(), Refusal> {
    match &row.token_hash {
        Some(hash) if secret::matches_hash(token, hash) => {}
        _ => return Err(Refusal::InvalidToken),
    }
    match row.status.effective(row.expires_at, now) {
        Status::Approved if row.uses_remaining > 0 => Ok(()),
        Status::Approved | Status::Used => Err(Refusal::Used),
        Status::Expired => Err(Refusal::Expired),
        Status::Revoked => Err(Refusal::Revoked),
        Status::Pending | Status::Denied => Err(Refusal::NotApproved),
    }
}

/// All the checks of one use, in order: the token, the action and resource it names, then the
/// details.
pub(crate) fn check_use(
    row: &Permission,
    presented: &UseRequest,
    now: Timestamp,
) -> Result<(), Refusal> {
    check_token(row, presented.token.expose(), now)?;
    check_binding(row, presented)?;
    check_details(row, presented.details.as_ref())
}

/// The action and resource a use names, if it names them, against the token's.
pub(crate) fn check_binding(row: &Permission, presented: &UseRequest) -> Result<(), Refusal> {
    if let Some(action) = &presented.action
        && *action != row.action
    {
        return Err(Refusal::ActionMismatch {
            granted: row.action.clone(),
            presented: action.clone(),
        });
    }
    // Both in their normal form (`domain::request::check_use_target`): `/srv/./a` is `/srv/a`.
    if let Some(resource) = &presented.resource
        && row.resource.as_deref() != Some(resource.as_str())
    {
        return Err(Refusal::ResourceMismatch {
            granted: row.resource.clone(),
            presented: resource.clone(),
        });
    }
    Ok(())
}

/// A use's `actionDetails` against the grant: required by the rule, equal to the exact details
/// the request was bound to, and within the scope. A use without details (when the rule allows
/// it) is not checked here.
pub(crate) fn check_details(
    row: &Permission,
    details: Option<&Map<String, Value>>,
) -> Result<(), Refusal> {
    let Some(details) = details else {
        if row.require_details {
            return Err(Refusal::DetailsRequired);
        }
        return Ok(());
    };
    if let Some(bound) = &row.details_digest
        && !secret::hashes_equal(bound, &details_digest(details))
    {
        return Err(Refusal::DetailsMismatch);
    }
    crate::scope::enforce(&row.scope, Some(details))
        .map_err(|v| Refusal::ScopeViolation(v.to_string()))
}

/// SHA-256 (hex) of the canonical JSON of `details`: what an exactly bound token is bound to.
pub(crate) fn details_digest(details: &Map<String, Value>) -> String {
    let canonical = crate::audit::canonical_json_object(details);
    secret::sha256_hex(canonical.as_bytes())
}

/// What the audit and the answer say of a use that carried no `actionDetails`.
pub(crate) const UNCHECKED_USE: &str = "details not given, scope not checked here";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AgentId, RequestId};
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_780_000_000_000);

    #[test]
    fn a_token_names_its_request_and_nothing_else_does() {
        let id = RequestId::new_random();
        let token = mint_token(&id).unwrap();
        let text = token.expose();
        assert!(text.starts_with("otp_"), "{text}");
        assert_eq!(text.len(), 4 + 22 + secret::RANDOM_CHARS);
        assert!(
            text[4..].bytes().all(|c| c.is_ascii_alphanumeric()),
            "{text}"
        );
        assert_eq!(named_request(text), Some(id.clone()));
        // Two tokens for one request share the name, never the secret.
        let again = mint_token(&id).unwrap();
        assert_eq!(again.expose()[..26], text[..26]);
        assert_ne!(again, token);

        let legacy = secret::generate(PERMISSION_TOKEN_PREFIX).unwrap();
        let cut = &text[..text.len() - 1];
        let longer = format!("{text}x");
        let other_prefix = format!("adm_{}", &text[4..]);
        let padded = format!(" {}", &text[..text.len() - 1]);
        let foreign = format!("otp_\u{ff10}{}", &text[5..]);
        for not_named in [
            legacy.expose(),
            cut,
            &longer,
            &other_prefix,
            &padded,
            &foreign,
            "",
            "otp_",
        ] {
            assert_eq!(named_request(not_named), None, "{not_named:?}");
        }
        assert!(mint_token(&RequestId("not-a-uuid".into())).is_err());
        // Another spelling of a UUID would name a request that no lookup finds.
        assert!(mint_token(&RequestId(id.as_str().to_uppercase())).is_err());
        assert!(mint_token(&RequestId(id.as_str().replace('-', ""))).is_err());
    }

    fn granted(token: &Secret) -> Permission {
        Permission {
            id: RequestId::new_random(),
            agent_id: AgentId::new_random(),
            agent_name: "mailer".into(),
            action: "gmail.send".into(),
            resource: Some("mailto:client@x.com".into()),
            requested_scope: Map::new(),
            scope: json!({"max_emails": 1})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            context: Map::new(),
            status: Status::Approved,
            reason: None,
            rule: None,
            policy_version: "v".into(),
            decided_by: Some("policy".into()),
            decided_at: Some(NOW),
            ttl_secs: 300,
            uses_total: 1,
            uses_remaining: 1,
            token_hash: Some(token.hash()),
            token_issued_at: Some(NOW),
            expires_at: NOW.plus_secs(300),
            created_at: NOW,
            require_details: false,
            action_details: None,
            details_digest: None,
        }
    }

    fn presented(token: &Secret) -> UseRequest {
        UseRequest {
            token: Secret::new(token.expose()),
            action: None,
            resource: None,
            details: None,
        }
    }

    #[test]
    fn a_live_token_passes_and_each_state_has_its_refusal() {
        let t = Secret::new("pt_live");
        let row = granted(&t);
        assert_eq!(check_use(&row, &presented(&t), NOW), Ok(()));
        let other = Secret::new("pt_other");
        assert_eq!(
            check_use(&row, &presented(&other), NOW),
            Err(Refusal::InvalidToken)
        );
        let later = NOW.plus_secs(300);
        assert_eq!(check_token(&row, t.expose(), later), Err(Refusal::Expired));
        for (status, refusal) in [
            (Status::Used, Refusal::Used),
            (Status::Revoked, Refusal::Revoked),
            (Status::Pending, Refusal::NotApproved),
            (Status::Denied, Refusal::NotApproved),
        ] {
            let row = Permission {
                status,
                ..granted(&t)
            };
            assert_eq!(check_token(&row, t.expose(), NOW), Err(refusal));
        }
        let spent = Permission {
            uses_remaining: 0,
            ..granted(&t)
        };
        assert_eq!(check_token(&spent, t.expose(), NOW), Err(Refusal::Used));
    }

    #[test]
    fn a_use_must_name_the_tokens_action_and_resource_if_it_names_any() {
        let t = Secret::new("pt_live");
        let row = granted(&t);
        let mut u = presented(&t);
        u.action = Some("gmail.delete".into());
        let refused = check_use(&row, &u, NOW).unwrap_err();
        assert_eq!(refused.code(), "ACTION_MISMATCH");
        assert_eq!(
            refused.reason(),
            "the token is for \"gmail.send\", not \"gmail.delete\""
        );
        u.action = Some("gmail.send".into());
        u.resource = Some("mailto:evil@x.com".into());
        assert_eq!(
            check_use(&row, &u, NOW).unwrap_err().code(),
            "RESOURCE_MISMATCH"
        );
        u.resource = Some("mailto:client@x.com".into());
        assert_eq!(check_use(&row, &u, NOW), Ok(()));
    }

    #[test]
    fn details_are_required_bound_and_within_scope() {
        let t = Secret::new("pt_live");
        let mut row = granted(&t);
        let d = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(check_details(&row, Some(&d(json!({"emails": 1})))), Ok(()));
        assert_eq!(
            check_details(&row, Some(&d(json!({"emails": 2}))))
                .unwrap_err()
                .code(),
            "SCOPE_VIOLATION"
        );
        row.require_details = true;
        assert_eq!(check_details(&row, None), Err(Refusal::DetailsRequired));
        let exact = d(json!({"to": "client@x.com", "emails": 1}));
        row.details_digest = Some(details_digest(&exact));
        // Key order does not matter; a changed value does.
        let reordered = d(json!({"emails": 1, "to": "client@x.com"}));
        assert_eq!(check_details(&row, Some(&reordered)), Ok(()));
        let changed = d(json!({"to": "client@y.com", "emails": 1}));
        assert_eq!(
            check_details(&row, Some(&changed)),
            Err(Refusal::DetailsMismatch)
        );
    }
}
