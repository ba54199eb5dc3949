//! The OpenAPI document at `/openapi.json`: it names exactly the routes the server registers
//! (so it cannot drift), other methods answer 405 with `Allow`, and real answers validate
//! against the schemas it gives for them.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(s: &TestServer) -> Value {
    let resp = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    resp.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test]
async fn document_names_every_registered_route_and_nothing_else() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let registered: BTreeSet<(String, String)> = agent_otp::testing::api::routes()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_owned(), p))
        .collect();
    assert_eq!(documented(&doc), registered);

    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        }
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for name in ["agentKey", "adminToken", "webSession"] {
        assert!(schemes.contains_key(name), "{name} missing");
    }
}

#[tokio::test]
async fn other_methods_get_405_in_the_envelope_with_allow() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let allowed: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        let url = s.url(&path.replace("{id}", "x"));
        for method in METHODS.iter().map(|m| m.to_uppercase()) {
            if allowed.contains(&method) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let resp = s.http.request(m, &url).send().await.unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
            assert_eq!(allow, allowed.join(", "), "{path}");
        }
    }
}

/// Validates real answers against the schema the document gives for their route and status.
struct Checker {
    doc: Value,
}

impl Checker {
    fn check(&self, method: &str, path: &str, status: StatusCode, body: &Value) {
        let op = &self.doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not documented");
        let response = &op["responses"][status.as_str()];
        assert!(
            response.is_object(),
            "{method} {path} does not document {status}"
        );
        let mut schema = self.doc.clone();
        schema["$ref"] = json!("#/$defs/answer");
        schema["$defs"] = json!({ "answer": response["content"]["application/json"]["schema"] });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: {errors:?}\n{body}"
        );
    }
}

#[tokio::test]
async fn real_answers_validate_against_their_schemas() {
    let s = TestServer::start().await;
    let c = Checker {
        doc: document(&s).await,
    };
    let key = s.agent("checker").await;
    let admin = s.admin.clone();
    let call = |auth: &str, method: &str, path: &str, body: Option<Value>| {
        let (auth, method, path) = (auth.to_owned(), method.to_owned(), path.to_owned());
        let s = &s;
        async move { s.call(&auth, &method, &path, body).await }
    };
    let mut seen = BTreeSet::new();
    let mut check = |method: &str, doc_path: &str, (status, body): (StatusCode, Value)| {
        c.check(method, doc_path, status, &body);
        seen.insert(status.as_u16());
        body
    };

    let req = "/api/v1/permissions/request";
    let denied = check(
        "POST",
        req,
        call(&key, "POST", req, Some(json!({"action": "shell.rm"}))).await,
    );
    assert_eq!(denied["data"]["status"], "denied");
    let approved = check(
        "POST",
        req,
        call(
            &key,
            "POST",
            req,
            Some(json!({"action": "file.read", "ttl": 60.0, "scope": {"max_recipients_count": 1}})),
        )
        .await,
    );
    assert_eq!(approved["data"]["status"], "approved");
    let pending = check(
        "POST",
        req,
        call(
            &key,
            "POST",
            req,
            Some(json!({"action": "deploy", "resource": "prod"})),
        )
        .await,
    );
    assert_eq!(pending["data"]["status"], "pending");
    check(
        "POST",
        req,
        call(&key, "POST", req, Some(json!({"action": ""}))).await,
    );
    check(
        "POST",
        req,
        call(&key, "POST", req, Some(json!(["email.send"]))).await,
    );
    check(
        "POST",
        req,
        call("ak_nope", "POST", req, Some(json!({"action": "x"}))).await,
    );

    let id = approved["data"]["id"].as_str().unwrap();
    let token = approved["data"]["token"].as_str().unwrap();
    let one = "/api/v1/permissions/{id}";
    check(
        "GET",
        one,
        call(&key, "GET", &format!("/api/v1/permissions/{id}"), None).await,
    );
    check(
        "GET",
        one,
        call(&key, "GET", "/api/v1/permissions/nope", None).await,
    );
    let verify = "/api/v1/permissions/{id}/verify";
    let url = format!("/api/v1/permissions/{id}/verify");
    let valid = check(
        "POST",
        verify,
        call(&key, "POST", &url, Some(json!({"token": token}))).await,
    );
    assert_eq!(valid["data"]["valid"], true);
    let invalid = check(
        "POST",
        verify,
        call(&key, "POST", &url, Some(json!({"token": "otp_x"}))).await,
    );
    assert_eq!(invalid["data"]["valid"], false);
    let use_path = "/api/v1/permissions/{id}/use";
    let url = format!("/api/v1/permissions/{id}/use");
    let refused = check(
        "POST",
        use_path,
        call(
            &key,
            "POST",
            &url,
            Some(json!({"token": token, "actionDetails": {"recipients": ["a@x.org", "b@x.org"]}})),
        )
        .await,
    );
    assert_eq!(refused["data"]["success"], false);
    let used = check(
        "POST",
        use_path,
        call(
            &key,
            "POST",
            &url,
            Some(json!({"token": token, "actionDetails": {"recipients": ["a@x.org"]}})),
        )
        .await,
    );
    assert_eq!(used["data"]["success"], true);
    let revoke = "/api/v1/permissions/{id}/revoke";
    check(
        "POST",
        revoke,
        call(
            &key,
            "POST",
            &format!("/api/v1/permissions/{id}/revoke"),
            None,
        )
        .await,
    );

    let pid = pending["data"]["id"].as_str().unwrap();
    check(
        "GET",
        "/api/v1/admin/permissions",
        call(
            &admin,
            "GET",
            "/api/v1/admin/permissions?status=pending",
            None,
        )
        .await,
    );
    check(
        "GET",
        "/api/v1/admin/permissions",
        call(&admin, "GET", "/api/v1/admin/permissions?agent=ghost", None).await,
    );
    check(
        "GET",
        "/api/v1/admin/permissions",
        call(&key, "GET", "/api/v1/admin/permissions", None).await,
    );
    check(
        "GET",
        "/api/v1/admin/permissions/{id}",
        call(
            &admin,
            "GET",
            &format!("/api/v1/admin/permissions/{pid}"),
            None,
        )
        .await,
    );
    let approve = "/api/v1/admin/permissions/{id}/approve";
    let url = format!("/api/v1/admin/permissions/{pid}/approve");
    check(
        "POST",
        approve,
        call(&admin, "POST", &url, Some(json!({"ttl": 99999}))).await,
    );
    check(
        "POST",
        approve,
        call(&admin, "POST", &url, Some(json!(null))).await,
    );
    check("POST", approve, call(&admin, "POST", &url, None).await);
    let deny = "/api/v1/admin/permissions/{id}/deny";
    check(
        "POST",
        deny,
        call(
            &admin,
            "POST",
            &format!("/api/v1/admin/permissions/{pid}/deny"),
            None,
        )
        .await,
    );
    let agents = "/api/v1/admin/agents";
    let created = check(
        "POST",
        agents,
        call(&admin, "POST", agents, Some(json!({"name": "second"}))).await,
    );
    check(
        "POST",
        agents,
        call(&admin, "POST", agents, Some(json!({"name": "second"}))).await,
    );
    check("GET", agents, call(&admin, "GET", agents, None).await);
    let agent_id = created["data"]["id"].as_str().unwrap();
    check(
        "DELETE",
        "/api/v1/admin/agents/{id}",
        call(
            &admin,
            "DELETE",
            &format!("/api/v1/admin/agents/{agent_id}"),
            None,
        )
        .await,
    );
    check(
        "GET",
        "/api/v1/admin/audit",
        call(&admin, "GET", "/api/v1/admin/audit?limit=5", None).await,
    );
    check(
        "GET",
        "/api/v1/admin/audit",
        call(&admin, "GET", "/api/v1/admin/audit?since=yesterday", None).await,
    );
    check("GET", "/health", call("", "GET", "/health", None).await);
    check("GET", "/health", call(&admin, "GET", "/health", None).await);
    check(
        "GET",
        "/api/v1/health",
        call("", "GET", "/api/v1/health", None).await,
    );

    for status in [200, 201, 202, 400, 401, 403, 404, 409] {
        assert!(
            seen.contains(&status),
            "no answer with {status} was checked"
        );
    }
}
