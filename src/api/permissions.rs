//! The agent routes: request, read (with long-poll), verify, use, revoke. An agent sees only its
//! own requests; anyone else's answer exactly like a missing one (404).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::AgentAuth;
use super::{envelope, resource};
use crate::domain::Actor;
use crate::domain::request::{RequestInput, check_action_details};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::service::{MAX_WAIT_SECS, RequestOutcome, Service};

/// Longest token string looked at; real ones are 44 characters.
const MAX_TOKEN_CHARS: usize = 256;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/permissions/request").route(web::post().to(request)))
        .service(resource("/permissions/{id}").route(web::get().to(get)))
        .service(resource("/permissions/{id}/verify").route(web::post().to(verify)))
        .service(resource("/permissions/{id}/use").route(web::post().to(use_token)))
        .service(resource("/permissions/{id}/revoke").route(web::post().to(revoke)));
}

async fn request(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    body: web::Json<RequestInput>,
) -> Result<HttpResponse> {
    let valid = body.into_inner().validate()?;
    Ok(match svc.request(&agent, valid).await? {
        RequestOutcome::Denied {
            id,
            reason,
            expires_at,
        } => envelope::ok(
            StatusCode::OK,
            json!({ "id": id, "status": "denied", "reason": reason, "expiresAt": expires_at }),
        ),
        RequestOutcome::Approved {
            id,
            token,
            scope,
            uses_remaining,
            expires_at,
        } => envelope::ok(
            StatusCode::CREATED,
            json!({
                "id": id,
                "status": "approved",
                "token": token.expose(),
                "scope": scope,
                "usesRemaining": uses_remaining,
                "expiresAt": expires_at,
            }),
        ),
        RequestOutcome::Pending {
            id,
            approval_url,
            webhook_url,
            expires_at,
        } => envelope::ok(
            StatusCode::ACCEPTED,
            json!({
                "id": id,
                "status": "pending",
                "approvalUrl": approval_url,
                "webhookUrl": webhook_url,
                "expiresAt": expires_at,
            }),
        ),
    })
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    wait: Option<u64>,
}

async fn get(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    id: web::Path<String>,
    query: web::Query<WaitQuery>,
) -> Result<HttpResponse> {
    let wait = query.wait.unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(Error::invalid(
            "wait",
            format!("must be between 0 and {MAX_WAIT_SECS} seconds"),
        ));
    }
    let view = svc
        .get_for_agent(&agent.id, &id, Duration::from_secs(wait))
        .await?;
    Ok(envelope::ok(StatusCode::OK, view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UseBody {
    token: String,
    #[serde(default)]
    action_details: Option<Map<String, Value>>,
}

fn token_from(raw: String) -> Result<Secret> {
    if raw.is_empty() || raw.chars().count() > MAX_TOKEN_CHARS {
        return Err(Error::invalid(
            "token",
            format!("must be 1–{MAX_TOKEN_CHARS} characters"),
        ));
    }
    Ok(Secret::new(raw))
}

async fn verify(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    id: web::Path<String>,
    body: web::Json<VerifyBody>,
) -> Result<HttpResponse> {
    let token = token_from(body.into_inner().token)?;
    let outcome = svc.verify(&agent.id, &id, token.expose()).await?;
    Ok(envelope::ok(StatusCode::OK, outcome))
}

async fn use_token(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    id: web::Path<String>,
    body: web::Json<UseBody>,
) -> Result<HttpResponse> {
    let UseBody {
        token,
        action_details,
    } = body.into_inner();
    let token = token_from(token)?;
    if let Some(details) = &action_details {
        check_action_details(details)?;
    }
    let outcome = svc.use_token(&agent.id, &id, token, action_details).await?;
    Ok(envelope::ok(StatusCode::OK, outcome))
}

async fn revoke(
    svc: web::Data<Service>,
    AgentAuth(agent): AgentAuth,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let actor = Actor::Agent(agent.id.0.clone());
    let view = svc.revoke(actor, Some(&agent.id), &id).await?;
    Ok(envelope::ok(StatusCode::OK, view))
}
