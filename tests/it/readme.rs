//! The README's own curl examples, taken from README.md when the test runs and executed with
//! `sh` and the real `curl` against a real server: each answer must be the envelope, with a
//! status the README documents, and where the README shows an answer (`# → {…}` after the
//! command, alternatives joined by "or") the answer must have the keys shown in one of them, and
//! any `true`/`false` shown. Run both with the built-in policy and with `policies.example.yaml`.
//!
//! What is taken: every fenced ```sh block; in it, each command line starting with `curl`
//! (continuation lines and multi-line quoted strings joined). `$KEY` is an agent key, `$ID` the
//! id from the first `/permissions/request` answer, `$SERVICE_KEY` a service key for `gmail.*`,
//! `$ADMIN` an admin token, `otp_...` the token handed out; `http://127.0.0.1:8787` is the test
//! server. Between the
//! request and the next example, a pending request is approved by a human (the admin API), as
//! it would be from the phone. Other lines (assignments, `agent-otp …`) are not run.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestServer;

/// One curl example: the block it is in, its command, and the answer shown after it.
#[derive(Debug)]
struct Example {
    block: usize,
    command: String,
    shown: String,
}

/// Whether `text` leaves a single- or double-quoted string open.
fn open_quote(text: &str) -> bool {
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    quote.is_some()
}

/// `text` without a trailing shell comment (a `#` outside quotes, after a space).
fn without_comment(text: &str) -> &str {
    let mut quote = None;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev.is_whitespace() => return text[..i].trim_end(),
            _ => {}
        }
        prev = c;
    }
    text.trim_end()
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let (mut block, mut inside) = (0, false);
    let mut logical = String::new();
    for line in readme.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            inside = !inside && ["```sh", "```bash", "```shell"].contains(&fence.trim_end());
            block += usize::from(inside);
            logical.clear();
            continue;
        }
        if !inside {
            continue;
        }
        if logical.is_empty() && line.trim_start().starts_with('#') {
            // A comment line: part of the answer shown after the last command, if any.
            if let Some(last) = out.last_mut().filter(|e| e.block == block) {
                last.shown.push(' ');
                last.shown
                    .push_str(line.trim_start().trim_start_matches('#'));
            }
            continue;
        }
        logical.push_str(line);
        if let Some(rest) = logical.strip_suffix('\\') {
            logical = rest.to_owned();
            continue;
        }
        if open_quote(&logical) {
            logical.push('\n');
            continue;
        }
        let full = std::mem::take(&mut logical);
        let command = without_comment(full.trim()).to_owned();
        let shown = full.trim()[command.len()..]
            .trim_start_matches([' ', '#'])
            .to_owned();
        if command.starts_with("curl ") {
            out.push(Example {
                block,
                command,
                shown,
            });
        }
    }
    out
}

/// The alternatives of a shown answer: each top-level `{…}`, as its depth-1 keys and the
/// booleans shown for them.
fn alternatives(shown: &str) -> Vec<Vec<(String, Option<bool>)>> {
    let shown = shown.split_once('→').map_or(shown, |(_, rest)| rest);
    let mut alts = Vec::new();
    let (mut depth, mut current) = (0, Vec::new());
    let mut chars = shown.char_indices().peekable();
    let mut after_colon = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                after_colon = false;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    alts.push(std::mem::take(&mut current));
                }
            }
            ':' => after_colon = true,
            ',' => after_colon = false,
            '"' => {
                let end = shown[i + 1..].find('"').map_or(shown.len(), |e| i + 1 + e);
                let word = &shown[i + 1..end];
                while chars.peek().is_some_and(|(j, _)| *j <= end) {
                    chars.next();
                }
                if depth == 1 && !after_colon {
                    let rest = shown[end + 1..].trim_start();
                    let value = rest.strip_prefix(':').map(str::trim_start);
                    let flag = match value {
                        Some(v) if v.starts_with("true") => Some(true),
                        Some(v) if v.starts_with("false") => Some(false),
                        _ => None,
                    };
                    current.push((word.to_owned(), flag));
                }
            }
            _ => {}
        }
    }
    alts
}

/// Runs one example with `sh`; returns the HTTP status and the JSON answer.
fn run(example: &Example, base: &str, vars: &[(&str, &str)], token: &str) -> (u16, Value) {
    let command = example
        .command
        .replace("http://127.0.0.1:8787", base)
        .replace("otp_...", token);
    let script = format!("{command} -w '\\n%{{http_code}}'");
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let json = serde_json::from_str(body).unwrap_or_else(|_| json!({ "raw": body }));
    (status.trim().parse().unwrap_or(0), json)
}

/// The statuses the README's error table and request answers document.
const DOCUMENTED: [u16; 12] = [200, 201, 202, 400, 401, 403, 404, 405, 409, 413, 429, 500];

fn check_answer(example: &Example, status: u16, body: &Value) {
    let what = format!(
        "block {} `{}`: {status} {body}",
        example.block, example.command
    );
    assert!(DOCUMENTED.contains(&status), "undocumented status: {what}");
    match body["success"].as_bool() {
        Some(true) => assert!(body["data"].is_object(), "envelope: {what}"),
        Some(false) => {
            assert!(body["error"]["code"].is_string(), "{what}");
            assert!(body["error"]["message"].is_string(), "{what}");
        }
        None => panic!("not the envelope: {what}"),
    }
    let alts = alternatives(&example.shown);
    if alts.is_empty() {
        return;
    }
    let data = &body["data"];
    let fits = |alt: &Vec<(String, Option<bool>)>| {
        alt.iter().all(|(key, flag)| {
            data.get(key)
                .is_some_and(|v| flag.is_none_or(|f| v.as_bool() == Some(f)))
        })
    };
    assert!(
        alts.iter().any(fits),
        "the answer has none of the shapes the README shows ({alts:?}): {what}"
    );
}

/// Runs every example in README order; returns each command with its status and answer.
async fn run_readme(policy: Option<&str>) -> Vec<(String, u16, Value)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples = examples(&readme);
    let s = TestServer::with_policy(policy).await;
    let key = s.agent("my-agent").await;
    let service = s.service("mailer", "gmail.*").await;
    let base = s.url("");
    let (mut id, mut token) = (String::from("none"), String::from("otp_none"));
    let mut first_status = None;
    let mut answers = Vec::new();
    for example in &examples {
        let vars = [
            ("KEY", key.as_str()),
            ("ID", id.as_str()),
            ("SERVICE_KEY", service.as_str()),
            ("ADMIN", s.admin.as_str()),
        ];
        let (status, body) = run(example, &base, &vars, &token);
        check_answer(example, status, &body);
        let data = &body["data"];
        if example.command.contains("/permissions/request") && first_status.is_none() {
            first_status = Some(status);
            id = data["id"].as_str().unwrap_or("none").to_owned();
            if let Some(t) = data["token"].as_str() {
                token = t.to_owned();
            }
            if data["status"] == "pending" {
                // A human approves it from the phone.
                let path = format!("/api/v1/admin/permissions/{id}/approve");
                let (st, b) = s.post(&s.admin, &path, json!({})).await;
                assert_eq!(st, StatusCode::OK, "{b}");
            }
        } else if let Some(t) = data["token"].as_str() {
            token = t.to_owned();
        }
        answers.push((example.command.clone(), status, body));
    }
    s.stop().await;
    answers
}

/// The answer to the first example whose command contains `part`.
fn answer<'a>(answers: &'a [(String, u16, Value)], part: &str) -> &'a (String, u16, Value) {
    answers
        .iter()
        .find(|(c, _, _)| c.contains(part))
        .unwrap_or_else(|| panic!("no README example with {part}"))
}

/// The walk the README describes: ask, a human approves, wait gets the token, verify says it is
/// valid, the use succeeds.
fn check_the_walk(answers: &[(String, u16, Value)]) {
    assert!(answers.len() >= 5, "{answers:#?}");
    let (_, status, body) = answer(answers, "/permissions/request");
    assert!(
        matches!(status, 201 | 202),
        "the request gets a token: {status} {body}"
    );
    let (_, _, waited) = answer(answers, "?wait=");
    let (_, _, verified) = answer(answers, "/verify");
    assert_eq!(verified["data"]["valid"], true, "{verified}");
    let (_, _, used) = answer(answers, "/use");
    assert_eq!(used["data"]["success"], true, "{used}");
    if *status == 202 {
        assert!(waited["data"]["token"].is_string(), "{waited}");
    }
}

#[test]
fn readme_examples_are_found() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let found = examples(&readme);
    assert!(found.len() >= 5, "the README's curl examples: {found:#?}");
    let request = found
        .iter()
        .find(|e| e.command.contains("/permissions/request"))
        .expect("a request example");
    assert!(request.command.contains("-d '{"), "{request:?}");
    // The shapes shown are read as the README writes them.
    let alts = alternatives(
        r#"→ {"valid":true,"id":"…","scope":{…},"n":1} or {"valid":false,"reason":"…"}"#,
    );
    assert_eq!(alts.len(), 2);
    assert_eq!(alts[0][0], ("valid".to_owned(), Some(true)));
    let keys: Vec<_> = alts[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["valid", "id", "scope", "n"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_curl_examples_with_the_builtin_policy() {
    let answers = run_readme(None).await;
    assert_eq!(
        answer(&answers, "/permissions/request").1,
        202,
        "the built-in rule asks a human"
    );
    check_the_walk(&answers);
}

/// After `cp policies.example.yaml policies.yaml`, the README's request must still be one that
/// gets a token (approved at once, or by the human in between), or the examples after it
/// cannot give the answers shown.
#[tokio::test(flavor = "multi_thread")]
async fn readme_curl_examples_with_the_example_policy() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies.example.yaml"
    ))
    .unwrap();
    check_the_walk(&run_readme(Some(&example)).await);
}
