//! The operator commands, run as the real binary against a data directory that a live server
//! is using at the same time.

use reqwest::StatusCode;
use serde_json::{Value, json};

use agent_otp::testing::store::recent::LEASE;

use crate::support::{Ran, TestServer, agent_otp_command, run_cli_on};

#[tokio::test(flavor = "multi_thread")]
async fn operator_commands_work_beside_a_running_server() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");

    let Ran {
        ok, stdout, stderr, ..
    } = run_cli_on(&data, &["agent", "create", "cron-bot"]);
    assert!(ok, "{stderr}");
    let db = std::path::absolute(s.db_path()).unwrap();
    assert!(
        stderr.contains(&format!("database: {}", db.display())),
        "a change names its database: {stderr}"
    );
    let key = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "the key is alone on stdout: {stdout}"
    );
    assert!(key.starts_with("ak_"));
    let (status, _) = s.request(key, json!({"action": "file.read"})).await;
    assert_eq!(status, StatusCode::CREATED);

    let Ran { ok, stderr, .. } = run_cli_on(&data, &["agent", "create", "cron-bot"]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["agent", "create", "bad name!"]);
    assert!(!ok && stderr.contains("name"), "{stderr}");

    let Ran { ok, stdout, .. } = run_cli_on(&data, &["agent", "list"]);
    assert!(
        ok && stdout.contains("cron-bot") && stdout.contains("active"),
        "{stdout}"
    );

    let Ran { ok, stderr, .. } = run_cli_on(&data, &["agent", "revoke", "cron-bot"]);
    assert!(ok, "{stderr}");
    let (status, _) = s
        .post(
            key,
            "/api/v1/permissions/request",
            json!({"action": "file.read"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let Ran { stdout, .. } = run_cli_on(&data, &["agent", "list"]);
    assert!(stdout.contains("revoked"), "{stdout}");

    let Ran {
        ok, stdout, stderr, ..
    } = run_cli_on(&data, &["admin", "token", "create", "--name", "bob"]);
    assert!(ok, "{stderr}");
    let admin = stdout.trim();
    assert!(admin.starts_with("adm_"));
    let (status, _) = s.get(admin, "/api/v1/admin/agents").await;
    assert_eq!(status, StatusCode::OK);

    let Ran {
        ok, stdout, stderr, ..
    } = run_cli_on(&data, &["audit", "verify"]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("audit chain ok:"), "{stdout}");
    s.stop().await;
}

/// The server remembers agents that authenticated; a revocation written by another process
/// must still stop the agent's very next call, on every route and also when the call would have
/// failed for another reason first (a bad body never reaches the database). Each call gets its
/// own freshly remembered agent, since the first refusal makes the server forget the key.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_revoked_by_the_cli_is_refused_on_every_route_at_once() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");
    let calls: [(&str, &str, Option<Value>); 10] = [
        ("POST", "/request", Some(json!({"action": ""}))),
        ("POST", "/request", Some(json!({"nope": 1}))),
        ("POST", "/request", Some(json!({"action": "file.read"}))),
        ("GET", "/{id}?wait=999", None),
        ("GET", "/{id}", None),
        ("GET", "/no-such-request", None),
        ("POST", "/{id}/verify", Some(json!({"token": ""}))),
        ("POST", "/{id}/verify", Some(json!({"token": "{token}"}))),
        ("POST", "/{id}/use", Some(json!({"token": "{token}"}))),
        ("POST", "/{id}/revoke", None),
    ];
    for (i, (method, path, body)) in calls.into_iter().enumerate() {
        let name = format!("remembered-{i}");
        let key = s.agent(&name).await;
        let (status, grant) = s
            .request(&key, json!({"action": "file.read", "uses": 3}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{grant}");
        let (id, token) = (
            grant["id"].as_str().unwrap(),
            grant["token"].as_str().unwrap(),
        );
        let Ran { ok, stderr, .. } = run_cli_on(&data, &["agent", "revoke", &name]);
        assert!(ok, "{stderr}");

        let path = format!("/api/v1/permissions{}", path.replace("{id}", id));
        let body =
            body.map(|b| serde_json::from_str(&b.to_string().replace("{token}", token)).unwrap());
        let (status, answer) = s.call(&key, method, &path, body.clone()).await;
        let call = format!("{method} {path} {body:?}: {answer}");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{call}");
        assert_eq!(answer["error"]["code"], "UNAUTHORIZED", "{call}");
    }
    s.stop().await;
}

/// Another process's write does not move the server's write generation, so `verify` may answer
/// from a read taken before it; `agent revoke` returns only after such a read has lapsed.
#[tokio::test(flavor = "multi_thread")]
async fn a_verify_right_after_the_cli_revokes_its_agent_is_refused() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");
    let key = s.agent("verifier").await;
    let (id, token) = s.grant(&key, 3).await;
    let (status, v) = s.verify(&key, &id, &token).await;
    assert_eq!(
        (status, v["data"]["valid"].clone()),
        (StatusCode::OK, json!(true))
    );

    let began = std::time::Instant::now();
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["agent", "revoke", "verifier"]);
    assert!(ok, "{stderr}");
    assert!(began.elapsed() >= LEASE, "the command waits out the lease");
    let (status, v) = s.verify(&key, &id, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    s.stop().await;
}

/// What bounds another process's write: `verify` answers from its remembered read (the change
/// is not seen) for at most one lease, then reads again.
#[tokio::test(flavor = "multi_thread")]
async fn verify_sees_another_process_write_within_one_lease() {
    let s = TestServer::start().await;
    let key = s.agent("leased").await;
    let (id, token) = s.grant(&key, 3).await;
    let (id, token) = (id.as_str(), token.as_str());
    let remaining = |v: &Value| v["data"]["usesRemaining"].clone();
    let before_read = std::time::Instant::now();
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(remaining(&v), 3, "{v}");

    let other = rusqlite::Connection::open(s.db_path()).unwrap();
    other
        .execute(
            "UPDATE permissions SET uses_remaining = 1 WHERE id = ?1",
            [id],
        )
        .unwrap();
    let (_, v) = s.verify(&key, id, token).await;
    if before_read.elapsed() < LEASE {
        assert_eq!(remaining(&v), 3, "answered from the remembered read: {v}");
    }
    tokio::time::sleep(LEASE).await;
    let (_, v) = s.verify(&key, id, token).await;
    assert_eq!(remaining(&v), 1, "read again after the lease: {v}");
    s.stop().await;
}

/// One server per data directory: a second one stops before it opens anything there, and the
/// directory is free again once the first has stopped (`restart` starts on it anew).
#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_one_data_directory_is_refused() {
    let mut s = TestServer::start().await;
    let refused = match agent_otp::app::start(s.config.clone()).await {
        Ok(_) => panic!("a second server started on the same data directory"),
        Err(e) => e,
    };
    assert!(
        matches!(refused, agent_otp::app::StartError::AlreadyServing { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("already serving"), "{refused}");
    s.restart().await;
    let key = s.agent("after-restart").await;
    assert!(key.starts_with("ak_"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_is_a_consistent_copy_taken_while_serving() {
    let s = TestServer::start().await;
    let key = s.agent("backed-up").await;
    for _ in 0..5 {
        s.request(&key, json!({"action": "file.read"})).await;
    }
    let data = s.dir.path().join("data");
    let file = s.dir.path().join("copy.db");
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["backup", file.to_str().unwrap()]);
    assert!(ok, "{stderr}");

    let copy = rusqlite_count(&file);
    assert_eq!(copy, 5);
    // Restored as docs/operations.md says (the copy, its checkpoint, the audit key), it opens as
    // a data directory of its own and its audit chain verifies, anchored.
    let restored = s.dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&file, restored.join("agent-otp.db")).unwrap();
    let anchor = s.dir.path().join("copy.db.checkpoints");
    std::fs::copy(&anchor, restored.join("audit.checkpoints")).unwrap();
    let Ran { ok, stdout, .. } = run_cli_on(&restored, &["audit", "verify"]);
    assert!(
        !ok,
        "without the audit key the keyed chain cannot be checked: {stdout}"
    );
    std::fs::copy(data.join("audit.key"), restored.join("audit.key")).unwrap();
    let Ran { ok, stdout, .. } = run_cli_on(&restored, &["audit", "verify"]);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("checkpoint at seq"), "{stdout}");
    s.stop().await;
}

fn rusqlite_count(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM permissions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn serve_runs_on_its_defaults_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let cwd = tempfile::tempdir().unwrap();
    let mut child = agent_otp_command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("agent-otp listening") {
            break;
        }
    }
    assert!(
        log.contains("policies.example.yaml"),
        "tells how to start a policy: {log}"
    );
    assert!(
        cwd.path().join("data/agent-otp.db").exists(),
        "default data dir ./data"
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful stop exits 0: {exit:?} {rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("agent-otp stopped")),
        "{rest:?}"
    );

    // Quiet: one summary with what an operator needs, no line per migration or worker.
    let summary = log.lines().last().unwrap();
    for field in [
        "addr=127.0.0.1:",
        "public_url=http://127.0.0.1:",
        "data_dir=",
        "policy=builtin",
        "policy_version=",
        "rules=1",
        "telegram=off",
    ] {
        assert!(summary.contains(field), "{field} in {summary}");
    }
    let all = format!("{log}{}", rest.join("\n"));
    for noise in [
        "database migrated",
        "starting 2 workers",
        "policy loaded",
        "worker",
    ] {
        assert!(!all.contains(noise), "{noise}: {all}");
    }
    assert!(log.lines().count() <= 3, "{log}");
    // The first start's login link stands out on stdout, alone on its line.
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("http://127.0.0.1:") && l.contains("/login/ll_"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        lines[0].starts_with("=====") && stdout.contains("First start"),
        "{stdout}"
    );
    assert_eq!((lines[at - 1], lines[at + 1]), ("", ""), "{stdout}");
}

/// Runs the binary in `cwd` with exactly these `AGENT_OTP_*` variables.
fn run_in(cwd: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Ran {
    Ran::of(
        agent_otp_command()
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().copied()),
    )
}

/// Run from the wrong directory (or with a mistyped `--data-dir`), an operator command used to
/// make a second, empty database, and its key then got a bare 401 from the real server. Now
/// every command but `serve` and `init` refuses, names the file it looked for and says how to
/// point it at the right one; nothing is created.
#[test]
fn operator_commands_never_create_a_database() {
    let cwd = tempfile::tempdir().unwrap();
    let missing = cwd.path().join("data");
    let db = missing.join("agent-otp.db");
    let commands: [&[&str]; 12] = [
        &["agent", "create", "bot"],
        &["agent", "list"],
        &["agent", "revoke", "bot"],
        &["admin", "token", "create"],
        &["service", "create", "mailer", "--actions", "gmail.*"],
        &["service", "list"],
        &["login", "--public-url", "https://otp.example.com"],
        &["audit", "verify"],
        &["audit", "head"],
        &["backup", "copy.db"],
        &["telegram", "link"],
        &["telegram", "list"],
    ];
    let d = missing.to_str().unwrap();
    for args in commands {
        // The default ./data, the environment and the flag all name the same missing directory.
        for (env, flag) in [
            (vec![], vec![]),
            (vec![("AGENT_OTP_DATA_DIR", d)], vec![]),
            (vec![], vec!["--data-dir", d]),
        ] {
            let Ran {
                ok, stdout, stderr, ..
            } = run_in(cwd.path(), &env, &[args, &flag[..]].concat());
            let what = format!("{args:?} {env:?} {flag:?}: {stderr}");
            assert!(!ok, "{what}");
            assert!(stdout.is_empty(), "{what} printed {stdout}");
            assert!(
                stderr.contains(&format!("no agent-otp database at {}", db.display())),
                "{what}"
            );
            assert!(
                stderr.contains("--data-dir") && stderr.contains("AGENT_OTP_DATA_DIR"),
                "{what}"
            );
            assert!(!missing.exists(), "{what}: created {}", missing.display());
        }
    }
    assert!(!cwd.path().join("copy.db").exists());

    // `init` makes one on purpose; then the commands work on it and name it when they change it.
    let Ran { ok, stderr, .. } = run_in(cwd.path(), &[], &["init"]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("database created: {}", db.display())),
        "{stderr}"
    );
    let Ran { ok, stderr, .. } = run_in(cwd.path(), &[], &["init"]);
    assert!(ok && stderr.contains("database already exists"), "{stderr}");
    let Ran {
        ok,
        stdout: key,
        stderr,
        ..
    } = run_in(cwd.path(), &[], &["agent", "create", "bot"]);
    assert!(ok && key.trim().starts_with("ak_"), "{stderr}");
    assert!(
        stderr.contains(&format!("database: {}", db.display())),
        "{stderr}"
    );
    let Ran {
        ok,
        stdout: listed,
        stderr,
        ..
    } = run_in(cwd.path(), &[], &["agent", "list"]);
    assert!(ok && listed.contains("bot"), "{stderr}");
    assert!(
        !stderr.contains("database:"),
        "a read changes nothing: {stderr}"
    );
}

/// A link code is only useful with a bot: without one anywhere, `telegram link` says so.
#[tokio::test(flavor = "multi_thread")]
async fn telegram_link_without_a_bot_says_so() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");
    let d = data.to_str().unwrap();
    let Ran {
        ok, stdout, stderr, ..
    } = run_in(s.dir.path(), &[], &["telegram", "link", "--data-dir", d]);
    assert!(!ok, "{stdout}");
    assert!(stdout.is_empty(), "no code is printed: {stdout}");
    for words in [
        "no Telegram bot is configured",
        "the server last started without a bot",
        "AGENT_OTP_TELEGRAM_TOKEN",
        "docs/telegram.md",
    ] {
        assert!(stderr.contains(words), "{words}: {stderr}");
    }
    // About to start the server with a bot: the token is set in this shell, so a code it is.
    let env = [("AGENT_OTP_TELEGRAM_TOKEN", "123456:abc")];
    let Ran {
        ok,
        stdout: code,
        stderr,
        ..
    } = run_in(s.dir.path(), &env, &["telegram", "link", "--data-dir", d]);
    assert!(ok, "{stderr}");
    assert_eq!(code.trim().len(), 16, "{code}");
    assert!(stderr.contains("database: "), "{stderr}");
    s.stop().await;
}

/// Admin tokens have a life cycle: listed with their last use, revoked by the CLI beside a
/// running server (the very next call is refused), and past their expiry refused by the server's
/// clock.
#[tokio::test(flavor = "multi_thread")]
async fn admin_tokens_are_listed_revoked_at_once_and_expire() {
    let s = TestServer::start().await;
    let data = s.dir.path().join("data");
    let create = |extra: &[&str]| {
        let Ran {
            ok, stdout, stderr, ..
        } = run_cli_on(
            &data,
            &[&["admin", "token", "create", "--name", "bob"], extra].concat(),
        );
        assert!(ok, "{stderr}");
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        (stdout.trim().to_owned(), stderr)
    };
    let (token, said) = create(&["--expires", "30d"]);
    assert!(said.contains("valid until"), "{said}");
    let (second, said) = create(&[]);
    assert!(said.contains("does not expire"), "{said}");
    assert_eq!(
        s.get(&token, "/api/v1/admin/agents").await.0,
        StatusCode::OK
    );

    let Ran {
        ok, stdout: list, ..
    } = run_cli_on(&data, &["admin", "token", "list"]);
    assert!(ok);
    assert!(!list.contains(&token) && !list.contains("adm_"), "{list}");
    let bob: Vec<&str> = list.lines().filter(|l| l.contains(" bob ")).collect();
    assert_eq!(bob.len(), 2, "{list}");
    // Newest first: the second token was never used; the first was, at the server's time.
    assert!(
        bob[0].contains("never") && bob[0].ends_with("active"),
        "{list}"
    );
    let used_at = s.clock.now().to_string();
    assert!(bob[1].contains(&used_at), "{used_at} in {list}");
    let first_id = bob[1].split_whitespace().next().unwrap().to_owned();

    // Two live tokens named bob: the name is ambiguous, the id is not.
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["admin", "token", "revoke", "bob"]);
    assert!(!ok && stderr.contains(&first_id), "{stderr}");
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["admin", "token", "revoke", &first_id]);
    assert!(ok, "{stderr}");
    let (status, body) = s.get(&token, "/api/v1/admin/agents").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        s.get(&second, "/api/v1/admin/agents").await.0,
        StatusCode::OK
    );
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["admin", "token", "revoke", &first_id]);
    assert!(!ok && stderr.contains("already revoked"), "{stderr}");
    // Now only one live bob: the name is enough.
    let Ran { ok, stderr, .. } = run_cli_on(&data, &["admin", "token", "revoke", "bob"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        s.get(&second, "/api/v1/admin/agents").await.0,
        StatusCode::UNAUTHORIZED
    );
    let Ran { stdout: list, .. } = run_cli_on(&data, &["admin", "token", "list"]);
    assert_eq!(list.matches("revoked 20").count(), 2, "{list}");
    let Ran { ok, stderr, .. } =
        run_cli_on(&data, &["admin", "token", "create", "--expires", "soon"]);
    assert!(!ok && stderr.contains("30d"), "{stderr}");

    // Expiry is the server's clock: an hour later the token is refused.
    let now = s.clock.now();
    let svc = &s.handle.as_ref().unwrap().service;
    let (_, hourly) = svc
        .create_admin_token(
            agent_otp::testing::domain::Actor::Operator,
            "temp",
            Some(now.plus_secs(3600)),
        )
        .await
        .unwrap();
    let hourly = hourly.expose().to_owned();
    s.clock.advance(std::time::Duration::from_secs(3599));
    assert_eq!(
        s.get(&hourly, "/api/v1/admin/agents").await.0,
        StatusCode::OK
    );
    s.clock.advance(std::time::Duration::from_secs(1));
    let (status, body) = s.get(&hourly, "/api/v1/admin/agents").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let Ran { stdout: list, .. } = run_cli_on(&data, &["admin", "token", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains(" temp ") && l.ends_with("expired")),
        "{list}"
    );
    s.stop().await;
}
