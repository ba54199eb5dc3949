//! The JSON API under `/api/v1`: agent routes, admin routes, health, and the OpenAPI document
//! that describes them. Each area lists its endpoints; one table per prefix drives both the
//! router and [`routes`], which the OpenAPI test compares with the document. Request bodies are
//! size-limited and strictly parsed, and every error leaves in the one envelope of [`envelope`].

mod admin;
pub(crate) mod auth;
/// Request bodies: read within a timeout and a size, charged to the storage budget.
pub(crate) mod bodies;
pub(crate) mod envelope;
mod health;
mod id_routes;
mod json_body;
/// The rate limits' HTTP side.
pub(crate) mod limits;
/// `GET /metrics`.
pub(crate) mod metrics;
pub(crate) mod openapi;
mod permissions;
mod tokens;

use actix_web::error::QueryPayloadError;
use actix_web::http::Method;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, Route, guard, web};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::Error;
use id_routes::IdRoutes;

use crate::wire::MAX_BODY_BYTES;

/// Where the versioned API lives.
pub(crate) const PREFIX: &str = "/api/v1";

/// One route: a method on a path (relative to its prefix) and its handler.
struct Endpoint {
    method: Method,
    path: &'static str,
    route: Route,
}

impl Endpoint {
    fn new<F, Args>(method: Method, path: &'static str, handler: F) -> Endpoint
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Endpoint {
            route: web::route().guard(MethodIs(method.clone())).to(handler),
            method,
            path,
        }
    }
}

/// The method guard of every endpoint. Not `web::method`: actix's method guard records each
/// method it is asked about in the request's extensions (three allocations per request) for a
/// 405 it would build, and [`register`] answers 405 with `Allow` itself.
struct MethodIs(Method);

impl guard::Guard for MethodIs {
    fn check(&self, ctx: &guard::GuardContext<'_>) -> bool {
        ctx.head().method == self.0
    }
}

/// Endpoints outside `/api/v1`.
fn root_endpoints() -> Vec<Endpoint> {
    let mut all = health::endpoints();
    all.extend(openapi::endpoints());
    all
}

/// Endpoints under `/api/v1`.
fn versioned_endpoints() -> Vec<Endpoint> {
    let mut all = health::endpoints();
    all.extend(permissions::endpoints());
    all.extend(tokens::endpoints());
    all.extend(admin::endpoints());
    all
}

/// Every `(method, full path)` the API serves, in registration order.
pub fn routes() -> Vec<(Method, String)> {
    let root = root_endpoints()
        .into_iter()
        .map(|e| (e.method, e.path.to_owned()));
    let versioned = versioned_endpoints()
        .into_iter()
        .map(|e| (e.method, format!("{PREFIX}{}", e.path)));
    root.chain(versioned).collect()
}

/// Registers every API route, the body and query rules, and the JSON 404 under `/api/v1`
/// (other paths belong to the web pages, which answer with an HTML 404).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .configure(|cfg| register(cfg, root_endpoints()))
        .service(
            web::scope(PREFIX)
                .configure(|cfg| register(cfg, versioned_endpoints()))
                .default_service(web::to(not_found)),
        );
}

/// One resource per path, in first-seen order; other methods on it answer 405 with `Allow`.
/// Paths with an id (`/permissions/{id}/verify`) are matched by hand, one [`IdRoutes`] per
/// prefix, registered after every fixed path (so `/permissions/request` is never an id).
fn register(cfg: &mut web::ServiceConfig, endpoints: Vec<Endpoint>) {
    let mut paths: Vec<(&'static str, Vec<Method>, Vec<Route>)> = Vec::new();
    let mut by_id: Vec<IdRoutes> = Vec::new();
    for e in endpoints {
        if let Some((prefix, rest)) = IdRoutes::parse(e.path) {
            match by_id.iter_mut().find(|r| r.prefix() == prefix) {
                Some(routes) => routes.add(rest, e.method, e.route),
                None => {
                    let mut routes = IdRoutes::new(prefix);
                    routes.add(rest, e.method, e.route);
                    by_id.push(routes);
                }
            }
            continue;
        }
        match paths.iter_mut().find(|(p, ..)| *p == e.path) {
            Some((_, methods, routes)) => {
                methods.push(e.method);
                routes.push(e.route);
            }
            None => paths.push((e.path, vec![e.method], vec![e.route])),
        }
    }
    for (path, methods, routes) in paths {
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let resource = routes
            .into_iter()
            .fold(web::resource(path), |r, route| r.route(route))
            .default_service(web::to(move || {
                std::future::ready(method_not_allowed(&allow))
            }));
        cfg.service(resource);
    }
    for routes in by_id {
        cfg.service(routes);
    }
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::NotFound("no such route".into()))
}

/// 405 with `Allow: <allow>` (the methods the path has, comma-separated).
fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut resp = envelope::error_response(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this method is not allowed on this route",
        None,
    );
    if let Ok(v) = HeaderValue::from_str(allow) {
        resp.headers_mut().insert(ALLOW, v);
    }
    resp
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Error::invalid("query", err.to_string()).into()
}

/// A JSON body that must be an object. Serde alone would also read a struct from an array of
/// its fields in order (`["email.send"]`), which no client means and the document does not allow.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Accepts only a map, and hands its entries straight to `T` (no intermediate value).
        struct OnlyMap<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for OnlyMap<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(OnlyMap(std::marker::PhantomData))
            .map(Object)
    }
}

/// A JSON body that may be left out entirely or be `null` (then `T::default()`); otherwise it
/// must be an object, parsed as strictly as any other body.
fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    // JSON's own whitespace only: a form feed is not "nothing", it is a malformed body.
    let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = body
        .iter()
        .position(|b| !json_space(b))
        .unwrap_or(body.len());
    let end = body
        .iter()
        .rposition(|b| !json_space(b))
        .map_or(start, |i| i + 1);
    let text = &body[start..end];
    if text.is_empty() || text == b"null" {
        return Ok(T::default());
    }
    parse_object(text)
}

/// A body that must be one JSON object of type `T`, with every number in it read exactly
/// (`crate::number`: a float of 2^53 or more as the whole number it holds); else 400 naming
/// `body`.
fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let parse = |body: &[u8]| {
        serde_json::from_slice::<Object<T>>(body)
            .map(|o| o.0)
            .map_err(|e| Error::invalid("body", e.to_string()))
    };
    crate::number::parse_exact(body, parse, |why| Error::invalid("body", why))
}

/// `?page=&limit=` for lists: page from 1, limit 1–100 (default 20).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    #[param(schema_with = crate::wire::schema::page)]
    page: Option<i64>,
    #[param(schema_with = crate::wire::schema::limit)]
    limit: Option<i64>,
}

impl PageQuery {
    /// `(page, limit, offset)` after validation.
    fn resolve(&self) -> Result<(i64, i64, i64), Error> {
        use crate::wire::{LIMIT_DEFAULT, LIMIT_MAX, PAGE_MAX};
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(LIMIT_DEFAULT);
        if !(1..=PAGE_MAX).contains(&page) {
            return Err(Error::invalid(
                "page",
                format!("must be between 1 and {PAGE_MAX}"),
            ));
        }
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {LIMIT_MAX}"),
            ));
        }
        Ok((page, limit, (page - 1) * limit))
    }
}
