//! Who is calling. Agents present `Authorization: Bearer ak_…` (a bare `ak_…` value works too);
//! humans scripting the admin API present an `adm_…` admin token (live: not revoked, not past
//! its expiry; its last use is noted at most once a minute), or use the session cookie of the
//! web pages (then a state-changing call must also carry the session's CSRF token in
//! `X-CSRF-Token`; a session limited to one request gets 403). Presented secrets are hashed and the hash looked up, then compared again in
//! constant time. An agent key never passes as a human: on admin routes it gets 403.
//!
//! Rate limits ([`crate::rate_limit`]) are applied around the lookup: a known key over its rate,
//! or an unknown key from an address with too many failed authentications, is refused before
//! the database is asked.

use crate::domain::{Agent, ProtectedService};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Payload, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError, web};

use super::limits;
use crate::error::Error;
use crate::secret::{
    ADMIN_TOKEN_PREFIX, AGENT_KEY_PREFIX, SERVICE_KEY_PREFIX, Secret, hashes_equal,
};
use crate::service::Service;
use crate::service::sessions;

/// An authenticated, unrevoked agent. When it came from memory, the operation confirms it
/// against the database in its own read or write (see `store::known_agents`).
pub(crate) struct AgentAuth(pub Arc<Agent>);

/// An authenticated, unrevoked protected service (`Authorization: Bearer sk_…`). Each operation
/// confirms it again in the read or write it does.
pub(crate) struct ServiceAuth(pub Arc<ProtectedService>);

/// An authenticated human, by the name of their admin token or web login.
pub(crate) struct HumanAuth {
    pub name: String,
}

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, Error>>>>;

/// The credential in the Authorization header, if any.
fn credential(req: &HttpRequest) -> Option<Secret> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?.trim();
    let value = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    (!value.is_empty()).then(|| Secret::new(value))
}

fn service(req: &HttpRequest) -> Result<web::Data<Service>, Error> {
    req.app_data::<web::Data<Service>>()
        .cloned()
        .ok_or_else(|| Error::Internal("service missing from app data".into()))
}

/// Finds the live owner of a presented secret by its SHA-256 (`find` looks the hash up, then
/// `stored` gives the owner's stored hash — `None` if the owner is not live — compared in
/// constant time), under the failed-authentication limits: a flood of bad secrets is refused
/// before the database.
async fn limited_lookup<T>(
    svc: &Service,
    req: &HttpRequest,
    cred: &Secret,
    is_agent: bool,
    find: impl AsyncFnOnce(&str) -> Result<Option<T>, Error>,
    stored: fn(&T) -> Option<&str>,
) -> Result<Option<T>, Error> {
    let hash = cred.hash();
    let now = svc.now();
    let attempt = limits::before_lookup(svc.limiter(), req, &hash, is_agent, now)?;
    let found = find(&hash)
        .await?
        .filter(|owner| stored(owner).is_some_and(|h| hashes_equal(h, &hash)));
    limits::after_lookup(
        svc.limiter(),
        req,
        attempt,
        &hash,
        is_agent,
        found.is_some(),
        now,
    )?;
    Ok(found)
}

/// Marks a call whose agent came from memory; [`confirm_remembered`] reads it.
#[derive(Clone)]
struct Remembered(Arc<Agent>);

/// The agent with this key hash: remembered (a claim each operation confirms, see
/// `store::known_agents`, and marked on the request for [`confirm_remembered`]) or read from
/// the agents table and then remembered.
async fn find_agent(
    svc: &Service,
    req: &HttpRequest,
    key_hash: &str,
) -> Result<Option<Arc<Agent>>, Error> {
    let Some(found) = svc.agent_by_key_hash(key_hash).await? else {
        return Ok(None);
    };
    if found.remembered {
        req.extensions_mut()
            .insert(Remembered(Arc::clone(&found.agent)));
    }
    Ok(Some(found.agent))
}

impl FromRequest for AgentAuth {
    type Error = Error;
    type Future = Pending<AgentAuth>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let svc = service(req);
        let cred = credential(req);
        let req = req.clone();
        Box::pin(async move {
            let svc = svc?;
            let unauthorized = || Error::Unauthorized("a valid agent key is required".into());
            let cred = cred.filter(|c| c.expose().starts_with(AGENT_KEY_PREFIX));
            let Some(cred) = cred else {
                return Err(unauthorized());
            };
            let find = async |hash: &str| find_agent(&svc, &req, hash).await;
            let agent = limited_lookup(&svc, &req, &cred, true, find, |a| {
                a.revoked_at.is_none().then_some(a.key_hash.as_str())
            })
            .await?;
            agent.map(AgentAuth).ok_or_else(unauthorized)
        })
    }
}

impl FromRequest for ServiceAuth {
    type Error = Error;
    type Future = Pending<ServiceAuth>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let svc = service(req);
        let cred = credential(req);
        let req = req.clone();
        Box::pin(async move {
            let svc = svc?;
            let unauthorized = || Error::Unauthorized("a valid service key is required".into());
            let cred = cred.filter(|c| c.expose().starts_with(SERVICE_KEY_PREFIX));
            let Some(cred) = cred else {
                return Err(unauthorized());
            };
            let find = async |hash: &str| svc.protected_service_by_key_hash(hash.to_owned()).await;
            let found = limited_lookup(&svc, &req, &cred, false, find, |s| {
                Some(s.key_hash.as_str())
            })
            .await?;
            found
                .map(|s| ServiceAuth(Arc::new(s)))
                .ok_or_else(unauthorized)
        })
    }
}

impl FromRequest for HumanAuth {
    type Error = Error;
    type Future = Pending<HumanAuth>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let svc = service(req);
        let cred = credential(req);
        let cookie = req.cookie(sessions::COOKIE).map(|c| Secret::new(c.value()));
        let csrf = req
            .headers()
            .get(sessions::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD);
        let req = req.clone();
        Box::pin(async move {
            let svc = svc?;
            let unauthorized =
                || Error::Unauthorized("an admin token or a web session is required".into());
            let Some(cred) = cred else {
                let Some(cookie) = cookie else {
                    return Err(unauthorized());
                };
                let Some(session) = svc.session(&cookie).await? else {
                    return Err(unauthorized());
                };
                if session.request_id.is_some() {
                    return Err(Error::Forbidden(
                        "this web login is for one request only; it cannot use the admin API"
                            .into(),
                    ));
                }
                if changes_state && !csrf.is_some_and(|t| sessions::csrf_ok(cookie.expose(), &t)) {
                    return Err(Error::Forbidden(format!(
                        "with a web session, send its CSRF token in the {} header",
                        sessions::CSRF_HEADER
                    )));
                }
                return Ok(HumanAuth {
                    name: session.human,
                });
            };
            if cred.expose().starts_with(AGENT_KEY_PREFIX) {
                return Err(Error::Forbidden(
                    "agent keys cannot use admin routes".into(),
                ));
            }
            if cred.expose().starts_with(SERVICE_KEY_PREFIX) {
                return Err(Error::Forbidden(
                    "service keys cannot use admin routes".into(),
                ));
            }
            if !cred.expose().starts_with(ADMIN_TOKEN_PREFIX) {
                return Err(unauthorized());
            }
            let find = async |hash: &str| svc.admin_token_by_hash(hash.to_owned()).await;
            let found = limited_lookup(&svc, &req, &cred, false, find, |t| {
                Some(t.token_hash.as_str())
            })
            .await?;
            let Some(token) = found else {
                return Err(unauthorized());
            };
            svc.note_admin_token_used(&token).await?;
            Ok(HumanAuth { name: token.name })
        })
    }
}

/// For answers to calls whose agent came from memory (run on every answer, it does nothing to
/// others). An operation that reached the database confirmed the agent there; one that failed
/// earlier (a bad body, say) did not, so before such an error leaves, the agent is confirmed
/// now: a revoked or replaced key answers 401, never anything else. Either way a refused
/// remembered key is forgotten and charged to the client's address as a failed authentication.
pub(crate) async fn confirm_remembered<B>(
    res: ServiceResponse<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let claim = res.request().extensions().get::<Remembered>().cloned();
    let status = res.status();
    let Some(Remembered(agent)) = claim.filter(|_| status.is_client_error()) else {
        return Ok(res.map_into_left_body());
    };
    let svc = service(res.request())?;
    let refused = status == StatusCode::UNAUTHORIZED || !svc.agent_still_live(&agent).await?;
    if !refused {
        return Ok(res.map_into_left_body());
    }
    svc.forget_agent_key(&agent.key_hash);
    let client = limits::client_key(res.request(), &svc.limiter().limits);
    svc.limiter()
        .refuse_remembered(client, &agent.key_hash, svc.now());
    if status == StatusCode::UNAUTHORIZED {
        return Ok(res.map_into_left_body());
    }
    let (req, _) = res.into_parts();
    let answer = crate::service::unauthorized().error_response();
    Ok(ServiceResponse::new(req, answer).map_into_right_body())
}
