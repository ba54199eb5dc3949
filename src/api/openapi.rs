//! The OpenAPI 3.1 document of the JSON API, served at `GET /openapi.json`. It is generated from
//! the handlers' `#[utoipa::path]` attributes and the types they send and receive (each area
//! lists its own in a `Doc`), and a test checks that it names exactly the routes of
//! [`routes`](super::routes), so it cannot drift from what the server does.

use std::collections::HashSet;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::Method;
use actix_web::http::header::CONTENT_TYPE;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::ObjectBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, OpenApi as Document, Ref, Type};
use utoipa::{Modify, OpenApi, ToSchema};

use super::envelope::Failure;
use super::{Endpoint, PREFIX, admin, health, permissions, tokens};
use crate::error::Error;
use crate::service::sessions;

pub(super) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::new(Method::GET, "/openapi.json", openapi_json)]
}

const DESCRIPTION: &str = "\
Agents ask for permission to do one thing; a policy decides at once or asks a human; an approved \
agent gets a short-lived, scoped, single-use token.

Every answer is JSON in one envelope: `{\"success\": true, \"data\": …}` (lists add `meta`) or \
`{\"success\": false, \"error\": {\"code\", \"message\", \"details\"}}`. A method a path does not \
list answers 405 `METHOD_NOT_ALLOWED` with an `Allow` header; an unknown path under `/api/v1` \
answers 404 `NOT_FOUND`.

Agents authenticate with `Authorization: Bearer ak_…` (`agentKey`). The admin routes take an \
admin token, `Authorization: Bearer adm_…` (`adminToken`), or the web session cookie \
(`webSession`), which must also send its CSRF token in `X-CSRF-Token` on state-changing calls. \
A protected service introspects and uses tokens with its service key, `Authorization: Bearer sk_…` \
(`serviceKey`), for the actions it serves. An agent or service key on an admin route gets 403.";

#[derive(OpenApi)]
#[openapi(
    info(title = "agent-otp", description = DESCRIPTION),
    paths(openapi_json),
    components(schemas(Failure)),
    modifiers(&Security),
    tags(
        (name = "agent", description = "Routes for agents (agent key)"),
        (name = "service", description = "Routes for protected services that check tokens themselves (service key)"),
        (name = "admin", description = "Routes for humans scripting decisions (admin token or web session)"),
        (name = "health", description = "Liveness and the policy in force"),
        (name = "meta", description = "This document"),
    )
)]
struct Doc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |desc: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(desc))
                    .build(),
            )
        };
        for (name, schema) in crate::wire::schema::scope_components() {
            components.schemas.insert(name.to_owned(), schema.into());
        }
        components.add_security_scheme("agentKey", bearer("An agent key, `ak_…`"));
        components.add_security_scheme("adminToken", bearer("An admin token, `adm_…`"));
        components.add_security_scheme("serviceKey", bearer("A protected service's key, `sk_…`"));
        components.add_security_scheme(
            "webSession",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                sessions::COOKIE,
                format!(
                    "The web session cookie; state-changing calls also send {}",
                    sessions::CSRF_HEADER
                )
                .as_str(),
            ))),
        );
    }
}

/// The whole document: root routes, then the areas under `/api/v1`.
pub(crate) fn document() -> Document {
    let mut versioned = health::Doc::openapi();
    versioned.merge(permissions::Doc::openapi());
    versioned.merge(tokens::Doc::openapi());
    versioned.merge(admin::Doc::openapi());
    let mut doc = Doc::openapi();
    doc.merge(health::Doc::openapi());
    let mut doc = doc.nest(PREFIX, versioned);
    let too_many = ResponseBuilder::new()
        .description("Rate limited; retry after `Retry-After` seconds")
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .build(),
        )
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name(Failure::name()))),
        )
        .build();
    // The health route is served at the root and under the prefix: keep operation ids unique.
    let root_ids: HashSet<String> = doc
        .paths
        .paths
        .iter_mut()
        .filter(|(path, _)| !path.starts_with(PREFIX))
        .flat_map(|(_, item)| operations(item))
        .filter_map(|op| op.operation_id.clone())
        .collect();
    for (path, item) in doc.paths.paths.iter_mut() {
        let versioned = path.starts_with(PREFIX);
        for op in operations(item) {
            if let Some(id) = op.operation_id.as_mut()
                && versioned
                && root_ids.contains(id.as_str())
            {
                id.push_str("_v1");
            }
            op.responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(|| too_many.clone().into());
        }
    }
    doc
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The document as JSON, built once.
fn document_json() -> Result<&'static str, Error> {
    static JSON: OnceLock<String> = OnceLock::new();
    if let Some(json) = JSON.get() {
        return Ok(json);
    }
    let mut doc = serde_json::to_value(document())
        .map_err(|e| Error::Internal(format!("openapi document: {e}")))?;
    unprefix_keywords(&mut doc);
    let json = serde_json::to_string(&doc)
        .map_err(|e| Error::Internal(format!("openapi document: {e}")))?;
    Ok(JSON.get_or_init(|| json))
}

/// JSON Schema keywords utoipa's types have no field for. The schemas in `schema` write them as
/// extensions, which utoipa prefixes with `x-`; here they become the keywords they are.
const RAW_KEYWORDS: [&str; 7] = [
    "propertyNames",
    "patternProperties",
    "additionalProperties",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
];

fn unprefix_keywords(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for keyword in RAW_KEYWORDS {
                if let Some(raw) = map.remove(&format!("x-{keyword}")) {
                    map.insert(keyword.to_owned(), raw);
                }
            }
            map.values_mut().for_each(unprefix_keywords);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unprefix_keywords),
        _ => {}
    }
}

/// This document (no authentication).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Result<HttpResponse, Error> {
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(document_json()?))
}
