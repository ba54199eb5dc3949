//! The permission state machine and the rules for agent input, as pure functions with the clock
//! passed in. Storage and transport live elsewhere; this module says what is allowed.

pub(crate) mod decision;
pub(crate) mod json;
pub(crate) mod records;
pub(crate) mod request;
pub(crate) mod token;

pub(crate) use records::{
    AdminToken, Agent, Approver, AuditFilter, OpenMessage, Permission, PermissionFilter,
    ProtectedService, Session,
};

/// How long a web session lasts from login unless `--session-max-age` says otherwise, in seconds
/// (7 days).
pub(crate) const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Where a permission request is in its life.
///
/// `pending → approved | denied | expired | revoked`; `approved → used | revoked | expired`.
/// `denied`, `expired`, `used` and `revoked` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
    Used,
    Revoked,
}

impl Status {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Used => "used",
            Status::Revoked => "revoked",
        }
    }

    /// Whether nothing can happen to the request any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Pending | Status::Approved)
    }

    /// The status as of `now`: a live request past its expiry reads as expired even before the
    /// sweeper has written that down.
    pub fn effective(self, expires_at: Timestamp, now: Timestamp) -> Status {
        if !self.is_final() && expires_at <= now {
            Status::Expired
        } else {
            self
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        Ok(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "expired" => Status::Expired,
            "used" => Status::Used,
            "revoked" => Status::Revoked,
            other => return Err(format!("unknown status {other:?}")),
        })
    }
}

/// Who did something, as recorded in `decidedBy` and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The policy file decided.
    Policy,
    /// A human, by the name of their admin token or web login.
    Human(String),
    /// An agent, by id.
    Agent(String),
    /// The service itself (expiry sweeper, start-up).
    System,
    /// An operator at the command line.
    Operator,
    /// A protected service, by id, using a token with its service key.
    Service(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Policy => f.write_str("policy"),
            Actor::Human(who) => write!(f, "human:{who}"),
            Actor::Agent(id) => write!(f, "agent:{id}"),
            Actor::System => f.write_str("system"),
            Actor::Operator => f.write_str("operator"),
            Actor::Service(id) => write!(f, "service:{id}"),
        }
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh id: a UUID v7, which starts with the time (then a counter and random
            /// bits), so new rows append to the id index instead of dirtying a random page of
            /// it. Ids are not secrets: every route that takes one also checks the caller.
            pub fn new_random() -> $name {
                $name(uuid::Uuid::now_v7().to_string())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies one permission request.
    RequestId
);
id_type!(
    /// Identifies one agent.
    AgentId
);
id_type!(
    /// Identifies one protected service (the holder of a service key).
    ServiceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_v7_in_creation_order() {
        let ids: Vec<RequestId> = (0..1000).map(|_| RequestId::new_random()).collect();
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
            assert_eq!(parsed.get_version_num(), 7, "{id}");
        }
        // Time first, then a counter: later ids sort after earlier ones, so they append.
        assert!(ids.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    }

    #[test]
    fn live_requests_expire_on_read_final_ones_do_not() {
        let t = Timestamp(10_000);
        assert_eq!(
            Status::Pending.effective(t, Timestamp(9_999)),
            Status::Pending
        );
        assert_eq!(Status::Pending.effective(t, t), Status::Expired);
        assert_eq!(
            Status::Approved.effective(t, Timestamp(20_000)),
            Status::Expired
        );
        assert_eq!(Status::Used.effective(t, Timestamp(20_000)), Status::Used);
        for s in [
            "pending", "approved", "denied", "expired", "used", "revoked",
        ] {
            assert_eq!(s.parse::<Status>().unwrap().as_str(), s);
        }
        assert!("nope".parse::<Status>().is_err());
    }
}
