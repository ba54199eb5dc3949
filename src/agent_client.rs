//! A client for the agent API (`/api/v1/permissions/…`), used by the `request`/`status`/`verify`/
//! `use`/`revoke` commands and by the MCP server. It speaks the wire contract of DESIGN §3: a
//! response is an error unless its HTTP status is 2xx *and* its envelope says `success: true`.
//!
//! Retries: a connection that could not be made is retried for every call (nothing reached the
//! server); other transport failures only for reads, because repeating a `request` or `use`
//! whose answer was lost could act twice. A `429` is retried after its `Retry-After` (capped).
//! Waiting for a human uses the server's long-poll (`?wait=`), never a tight loop.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::secret::Secret;
use crate::wire::MAX_WAIT_SECS;

/// How many times a call is retried after a refused connection or a 429.
const RETRIES: u32 = 3;
/// Longest `Retry-After` honoured before giving up on a 429.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Time allowed for one HTTP exchange on top of any long-poll wait.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error envelope (or a non-2xx status).
    #[error("{}", .0)]
    Api(Box<ApiError>),
    /// The server could not be reached or the connection failed.
    #[error("cannot reach the server: {0}")]
    Network(String),
    /// The answer was not the JSON envelope the contract promises.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// Bad settings on this side (URL, key).
    #[error("{0}")]
    Config(String),
}

/// An error answer from the server.
#[derive(Debug, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The envelope's `error.code`, e.g. `UNAUTHORIZED`.
    pub code: String,
    pub message: String,
    /// The envelope's `error.details` (for validation errors: one entry per bad field).
    pub details: Map<String, Value>,
    /// Seconds from `Retry-After`, on a 429.
    pub retry_after: Option<u64>,
}

impl ClientError {
    /// The server's error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The error as a JSON object `{code, message, details?}` for printing.
    pub fn to_json(&self) -> Value {
        let (code, details) = match self {
            ClientError::Api(e) => (e.code.as_str(), Some(&e.details)),
            ClientError::Network(_) => ("NETWORK_ERROR", None),
            ClientError::Protocol(_) => ("PROTOCOL_ERROR", None),
            ClientError::Config(_) => ("CONFIG_ERROR", None),
        };
        let message = match self {
            ClientError::Api(e) => e.message.clone(),
            other => other.to_string(),
        };
        let mut v = serde_json::json!({ "code": code, "message": message });
        if let Some(d) = details.filter(|d| !d.is_empty()) {
            v["details"] = Value::Object(d.clone());
        }
        v
    }
}

/// The body of `POST /permissions/request`.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionRequest {
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
}

/// An agent's connection to one agent-otp server.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: Secret,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8787`) using an agent key.
    pub fn new(base_url: &str, key: Secret) -> Result<Client, ClientError> {
        let base = Url::parse(base_url.trim_end_matches('/'))
            .map_err(|e| ClientError::Config(format!("invalid server URL {base_url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "invalid server URL {base_url:?}: must be http:// or https://"
            )));
        }
        if key.expose().trim().is_empty() {
            return Err(ClientError::Config("the agent key is empty".into()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("agent-otp-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, key })
    }

    /// Asks for a permission; returns the answer's `data` (`status` is `approved`, `pending` or
    /// `denied`).
    pub async fn request(&self, body: &PermissionRequest) -> Result<Value, ClientError> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Config(e.to_string()))?;
        self.send(
            Method::POST,
            &["permissions", "request"],
            None,
            Some(body),
            None,
        )
        .await
    }

    /// Reads a request, waiting up to `wait_secs` (≤ 60) while it is pending. The first read
    /// after a human approval carries the token.
    pub async fn get(&self, id: &str, wait_secs: u64) -> Result<Value, ClientError> {
        let wait = wait_secs.min(MAX_WAIT_SECS);
        let query = (wait > 0).then(|| format!("wait={wait}"));
        self.send(
            Method::GET,
            &["permissions", id],
            query.as_deref(),
            None,
            Some(Duration::from_secs(wait)),
        )
        .await
    }

    /// Long-polls until the request leaves `pending` or `timeout` has passed; returns the last
    /// read (still `pending` if time ran out).
    pub async fn wait_for_decision(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Round up so a fractional remainder still waits; the server caps at 60 s.
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let view = self.get(id, secs).await?;
            if view["status"] != "pending" || Instant::now() >= deadline {
                return Ok(view);
            }
        }
    }

    /// Checks a token without consuming it: `{valid, …}`.
    pub async fn verify(&self, id: &str, token: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({ "token": token });
        self.send(
            Method::POST,
            &["permissions", id, "verify"],
            None,
            Some(body),
            None,
        )
        .await
    }

    /// Uses a token once: `{success, usesRemaining, reason?, code?}`.
    pub async fn use_token(
        &self,
        id: &str,
        token: &str,
        action_details: Option<Map<String, Value>>,
    ) -> Result<Value, ClientError> {
        let mut body = serde_json::json!({ "token": token });
        if let Some(d) = action_details {
            body["actionDetails"] = Value::Object(d);
        }
        self.send(
            Method::POST,
            &["permissions", id, "use"],
            None,
            Some(body),
            None,
        )
        .await
    }

    /// Revokes a request; its token stops working at once.
    pub async fn revoke(&self, id: &str) -> Result<Value, ClientError> {
        self.send(
            Method::POST,
            &["permissions", id, "revoke"],
            None,
            None,
            None,
        )
        .await
    }

    fn url(&self, segments: &[&str], query: Option<&str>) -> Result<Url, ClientError> {
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(ClientError::Config(
                "a request id cannot be empty, . or ..".into(),
            ));
        }
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ClientError::Config("the server URL cannot take a path".into()))?;
            path.pop_if_empty().extend(["api", "v1"]);
            // Each segment is percent-encoded, so an id cannot walk to another route.
            path.extend(segments);
        }
        url.set_query(query);
        Ok(url)
    }

    /// One call with the retry rules of the module docs; returns the envelope's `data`.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&str>,
        body: Option<Value>,
        wait: Option<Duration>,
    ) -> Result<Value, ClientError> {
        let url = self.url(segments, query)?;
        let idempotent = method == Method::GET;
        let timeout = EXCHANGE_TIMEOUT + wait.unwrap_or_default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(self.key.expose())
                .timeout(timeout);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let result = match req.send().await {
                Ok(resp) => read_envelope(resp).await,
                Err(e) => Err((
                    ClientError::Network(describe(&e)),
                    e.is_connect() || idempotent,
                )),
            };
            match result {
                Ok(data) => return Ok(data),
                Err((err, retryable)) if retryable && attempt <= RETRIES => {
                    let retry_after = match &err {
                        ClientError::Api(e) => e.retry_after.map(Duration::from_secs),
                        _ => None,
                    };
                    let pause = retry_after.unwrap_or(Duration::from_millis(250 << attempt));
                    if pause > MAX_RETRY_AFTER {
                        return Err(err);
                    }
                    tracing::debug!(attempt, ?pause, error = %err, "retrying");
                    tokio::time::sleep(pause).await;
                }
                Err((err, _)) => return Err(err),
            }
        }
    }
}

/// Reads an envelope; the error side says whether trying again could help.
async fn read_envelope(resp: reqwest::Response) -> Result<Value, (ClientError, bool)> {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let text = resp
        .text()
        .await
        .map_err(|e| (ClientError::Network(describe(&e)), false))?;
    let json: Option<Value> = serde_json::from_str(&text).ok();
    let ok = status.is_success() && json.as_ref().is_some_and(|j| j["success"] == true);
    if ok {
        return match json {
            Some(Value::Object(mut m)) => Ok(m.remove("data").unwrap_or(Value::Null)),
            _ => Err((ClientError::Protocol("not a JSON object".into()), false)),
        };
    }
    let error = json.as_ref().map(|j| &j["error"]);
    let text_of = |k: &str| error.and_then(|e| e[k].as_str()).map(str::to_owned);
    let code = text_of("code").unwrap_or_else(|| code_for(status).to_owned());
    let message = text_of("message").unwrap_or_else(|| {
        let snippet: String = text.chars().take(200).collect();
        format!("HTTP {status}: {snippet}")
    });
    let details = error
        .and_then(|e| e["details"].as_object().cloned())
        .unwrap_or_default();
    let retryable = status == StatusCode::TOO_MANY_REQUESTS;
    Err((
        ClientError::Api(Box::new(ApiError {
            status: status.as_u16(),
            code,
            message,
            details,
            retry_after: retry_after.or(retryable.then_some(1)),
        })),
        retryable,
    ))
}

/// The error code to assume when the server (or a proxy in front of it) sent no envelope.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 422 => "VALIDATION_ERROR",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        429 => "RATE_LIMITED",
        s if s >= 500 => "INTERNAL_ERROR",
        _ => "PROTOCOL_ERROR",
    }
}

/// A transport error with its causes, without the URL's query (harmless here, but short).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
