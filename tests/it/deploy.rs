//! Deployment: the Dockerfile (no Docker engine runs here, so its build steps must be the script
//! CI runs, and its runtime settings are checked as text) and `agent-otp health`, the image's
//! health check, run as the real binary.

use std::path::Path;
use std::process::Command;

use crate::support::{ChildServer, Ran, agent_otp_command, eventually};

/// One Dockerfile instruction: keyword (upper case) and the rest, continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Dockerfile's stages, each a list of instructions starting with its `FROM`.
fn stages() -> Vec<Vec<Instruction>> {
    let text = read("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for line in joined {
        let (keyword, args) = line.split_once(' ').unwrap_or((&line, ""));
        let ins = Instruction {
            keyword: keyword.to_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if ins.keyword == "FROM" {
            stages.push(vec![ins]);
        } else {
            stages
                .last_mut()
                .expect("instruction before FROM")
                .push(ins);
        }
    }
    stages
}

fn all<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

#[test]
fn the_image_is_built_by_the_script_ci_runs() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "builder and final stage: {stages:#?}");
    let (builder, runtime) = (&stages[0], &stages[1]);
    assert!(
        builder[0].args.starts_with("rust:") && builder[0].args.ends_with(" AS builder"),
        "{:?}",
        builder[0]
    );

    // Every build step is the script: the only RUN that compiles calls it, nothing calls cargo.
    let runs = all(builder, "RUN");
    let building: Vec<_> = runs
        .iter()
        .filter(|r| r.contains("build-release.sh"))
        .collect();
    assert_eq!(building.len(), 1, "{runs:#?}");
    assert!(
        building[0].contains("\"$(scripts/build-release.sh)\""),
        "{building:?}"
    );
    assert!(
        !read("Dockerfile").contains("cargo "),
        "the Dockerfile must not build on its own; change scripts/build-release.sh"
    );
    // CI builds the binary it tests with the same script, and builds it once.
    let ci = read(".ci/run");
    assert!(ci.contains("scripts/build-release.sh"), "{ci}");
    assert!(!ci.contains("cargo build"), "{ci}");
    let sdk = read("sdk/run-tests.sh");
    assert!(
        !sdk.contains("cargo build"),
        "the SDK suites reuse the one release build: {sdk}"
    );
    let script = read("scripts/build-release.sh");
    assert!(
        script.contains("cargo build --profile dist --locked --bin agent-otp"),
        "{script}"
    );

    // Final stage: small base, non-root, data in a volume, the health command.
    assert!(
        runtime[0].args.contains("distroless") || runtime[0].args.contains("slim"),
        "{:?}",
        runtime[0]
    );
    assert!(
        all(runtime, "RUN").is_empty(),
        "nothing built in the final stage"
    );
    let user = all(runtime, "USER");
    assert_eq!(user.len(), 1);
    let uid = user[0].split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runs as non-root: {uid}");
    assert_eq!(all(runtime, "VOLUME"), ["/data"]);
    let env = all(runtime, "ENV").join(" ");
    for setting in ["AGENT_OTP_DATA_DIR=/data", "AGENT_OTP_LISTEN=0.0.0.0:8787"] {
        assert!(env.contains(setting), "{setting} in {env}");
    }
    assert_eq!(all(runtime, "EXPOSE"), ["8787"]);
    let health = all(runtime, "HEALTHCHECK");
    assert_eq!(health.len(), 1);
    assert!(
        health[0].ends_with(r#"CMD ["agent-otp", "health"]"#),
        "{health:?}"
    );
    assert_eq!(all(runtime, "ENTRYPOINT"), [r#"["agent-otp"]"#]);
    assert_eq!(all(runtime, "CMD"), [r#"["serve"]"#]);
    let copies = all(runtime, "COPY");
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=builder /agent-otp ")),
        "{copies:?}"
    );
}

/// The shipped binary's profile keeps the size settings; `--release` stays the quick one.
#[test]
fn the_shipped_binary_has_its_own_profile() {
    let cargo = read("Cargo.toml");
    let section = |name: &str| {
        let start = cargo
            .find(&format!("\n[{name}]\n"))
            .unwrap_or_else(|| panic!("[{name}]"));
        let body = &cargo[start + name.len() + 4..];
        body[..body.find("\n[").unwrap_or(body.len())].to_owned()
    };
    let dist = section("profile.dist");
    for setting in [
        "inherits = \"release\"",
        "lto = \"fat\"",
        "codegen-units = 1",
        "strip = true",
    ] {
        assert!(
            dist.contains(setting),
            "{setting} in [profile.dist]: {dist}"
        );
    }
    assert!(section("profile.dist.package.\"*\"").contains("opt-level = \"z\""));
    // The request path stays at full speed.
    for hot in [
        "actix-web",
        "actix-http",
        "http",
        "tokio",
        "rusqlite",
        "serde_json",
        "sha2",
    ] {
        assert!(
            section(&format!("profile.dist.package.{hot}")).contains("opt-level = 3"),
            "{hot} at opt-level 3"
        );
    }
    let release = section("profile.release");
    assert!(
        !release.contains("lto"),
        "--release is the quick build: {release}"
    );
    assert!(
        !cargo.contains("[profile.release.package"),
        "per-package settings are dist's"
    );
}

#[test]
fn the_build_context_keeps_what_the_build_needs() {
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches('/').to_owned())
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "templates",
        "static",
        "scripts",
        "policies.example.yaml",
    ] {
        assert!(
            !ignored.iter().any(|i| i == needed),
            "{needed} is in .dockerignore"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(needed).exists(),
            "{needed}"
        );
    }
    for heavy in ["target", ".git"] {
        assert!(
            ignored.iter().any(|i| i == heavy),
            "{heavy} is sent to the builder"
        );
    }
}

/// Runs `agent-otp health ARGS` with `AGENT_OTP_LISTEN` set as given.
fn health(listen: Option<&str>, args: &[&str]) -> (i32, String) {
    let mut cmd = agent_otp_command();
    cmd.arg("health").args(args).env("NO_COLOR", "1");
    if let Some(l) = listen {
        cmd.env("AGENT_OTP_LISTEN", l);
    }
    let ran = Ran::of(&mut cmd);
    (ran.code, ran.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_command_checks_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = ChildServer::start(
        &dir.path().join("data"),
        &dir.path().join("policies.yaml"),
        "warn",
    )
    .await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();

    let (code, out) = health(None, &["--url", &server.base]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    // The image's setting: listening on every interface, checked over loopback.
    let (code, out) = health(Some(&format!("0.0.0.0:{port}")), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("127.0.0.1:{port}/health")), "{out}");

    // Not a health answer: a page that is not /health, a port nobody listens on.
    let (code, out) = health(None, &["--url", &format!("{}/nothing-here", server.base)]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("unhealthy"), "{out}");
    server.stop();
    let (code, out) = health(Some(&format!("127.0.0.1:{port}")), &["--timeout", "1"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unhealthy"), "{out}");
}

// ---- deploy/: the systemd units and the reverse proxies, checked by their own tools ----

/// A validator on PATH (`systemd-analyze`, `caddy`, `nginx`, `openssl`). `.ci/run` installs
/// them; under `CI=true` a missing one fails the test. Elsewhere the tests that need them are
/// reported as ignored (build.rs); one removed since the build is skipped with a notice.
fn tool(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let fix = "apt-get install -y --no-install-recommends systemd caddy nginx openssl";
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{name} is needed to check deploy/; {fix}"
        );
        eprintln!("NOTE: skipping a deploy/ check, {name} is missing; {fix}");
    }
    found
}

/// The `Key=value` lines of one section of a systemd unit, in order.
fn unit_section(file: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in read(file).lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
        } else if inside && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').unwrap();
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    out
}

fn values<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The unit's `Environment=` settings.
fn unit_env(file: &str) -> Vec<(String, String)> {
    values(&unit_section(file, "Service"), "Environment")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

const UNITS: [&str; 3] = [
    "deploy/agent-otp.service",
    "deploy/agent-otp-backup.service",
    "deploy/agent-otp-backup.timer",
];

#[test]
fn deploy_the_unit_settings_match_the_server_and_the_proxies() {
    let service = unit_section("deploy/agent-otp.service", "Service");
    let one = |k: &str| {
        let v = values(&service, k);
        assert_eq!(v.len(), 1, "{k}: {v:?}");
        v[0].to_owned()
    };
    assert_eq!(one("User"), "agent-otp");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("StateDirectory"), "agent-otp");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ExecStart"), "/usr/local/bin/agent-otp serve");
    let env = unit_env("deploy/agent-otp.service");
    let env_of = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(env_of("AGENT_OTP_DATA_DIR"), Some("/var/lib/agent-otp"));
    assert_eq!(one("WorkingDirectory"), "/var/lib/agent-otp");
    assert_eq!(env_of("AGENT_OTP_TRUST_FORWARDED_FOR"), Some("true"));
    let listen = env_of("AGENT_OTP_LISTEN").unwrap();
    assert!(
        listen.starts_with("127.0.0.1:"),
        "only the proxy reaches it: {listen}"
    );
    for (name, _) in &env {
        assert!(
            agent_otp::config::KNOWN_ENV.contains(&name.as_str()),
            "{name}"
        );
    }
    // The proxies send to the address the unit listens on.
    assert!(read("deploy/Caddyfile").contains(&format!("reverse_proxy {listen}")));
    assert!(read("deploy/nginx.conf").contains(&format!("proxy_pass http://{listen};")));
    let backup = unit_env("deploy/agent-otp-backup.service");
    assert!(backup.contains(&("AGENT_OTP_DATA_DIR".into(), "/var/lib/agent-otp".into())));
}

#[test]
#[cfg_attr(
    no_deploy_validators,
    ignore = "systemd-analyze, caddy, nginx or openssl missing: apt-get install systemd caddy nginx openssl"
)]
fn deploy_systemd_units_verify_and_are_hardened() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    // `verify` checks that each command exists: point them at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_agent-otp");
    let mut files = Vec::new();
    for unit in UNITS {
        let name = Path::new(unit).file_name().unwrap();
        let copy = dir.path().join(name);
        std::fs::write(&copy, read(unit).replace("/usr/local/bin/agent-otp", bin)).unwrap();
        files.push(copy);
    }
    let out = Command::new(&analyze)
        .arg("verify")
        .args(&files)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    for (unit, most) in [
        ("agent-otp.service", 2.0),
        ("agent-otp-backup.service", 2.0),
    ] {
        let out = Command::new(&analyze)
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(dir.path().join(unit))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| {
                l.split_once("Overall exposure level for ")?
                    .1
                    .split_once(": ")
            })
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
        assert!(
            score <= most,
            "{unit}: exposure {score} (at most {most})\n{text}"
        );
    }
}

/// A self-signed certificate for the nginx checks; (cert, key).
fn certificate(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let openssl = tool("openssl")?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new(openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=otp.example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl could not make a certificate");
    Some((cert, key))
}

/// nginx's main configuration around a site file, with everything in `dir`.
fn nginx_main(dir: &Path, site: &Path) -> std::path::PathBuf {
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         include {};\n}}\n",
        site.display()
    );
    let path = dir.join("nginx-main.conf");
    std::fs::write(&path, main).unwrap();
    path
}

fn nginx_site(cert: &Path, key: &Path) -> String {
    read("deploy/nginx.conf")
        .replace(
            "/etc/letsencrypt/live/otp.example.com/fullchain.pem",
            &cert.display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/otp.example.com/privkey.pem",
            &key.display().to_string(),
        )
}

#[test]
#[cfg_attr(
    no_deploy_validators,
    ignore = "systemd-analyze, caddy, nginx or openssl missing: apt-get install systemd caddy nginx openssl"
)]
fn deploy_proxy_configs_pass_their_validators() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(caddy) = tool("caddy") {
        let out = Command::new(caddy)
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Caddyfile"))
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        // Formatted as `caddy fmt` would have it (its warning otherwise says so on every start).
        assert!(!said.contains("not formatted"), "{said}");
    }
    if let (Some(nginx), Some((cert, key))) = (tool("nginx"), certificate(dir.path())) {
        let site = dir.path().join("site.conf");
        std::fs::write(&site, nginx_site(&cert, &key)).unwrap();
        let main = nginx_main(dir.path(), &site);
        let out = Command::new(nginx)
            .arg("-t")
            .arg("-c")
            .arg(&main)
            .args(["-e", "stderr"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("test is successful"), "{said}");
        assert!(!said.contains("[warn]"), "{said}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(url: &str, http: &reqwest::Client) -> reqwest::StatusCode {
    eventually(6, &format!("an answer from {url}"), || async {
        http.get(url).send().await.ok().map(|r| r.status())
    })
    .await
}

/// Kills a child process when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the machine allows of the unit without systemd as PID 1: the unit's `ExecStart` with
/// exactly its `Environment=` (state and configuration directories moved to a temp dir, the port
/// to a free one), its working directory and `UMask`; nginx and Caddy from deploy/ in front of
/// it (on loopback ports); the backup unit's commands; a SIGTERM stop within `TimeoutStopSec`.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    no_deploy_validators,
    ignore = "systemd-analyze, caddy, nginx or openssl missing: apt-get install systemd caddy nginx openssl"
)]
async fn deploy_the_service_runs_with_the_units_settings_behind_the_proxies() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("var/lib/agent-otp");
    let backups = root.path().join("var/lib/agent-otp-backups");
    let etc = root.path().join("etc/agent-otp");
    for d in [&state, &backups, &etc] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies.example.yaml"),
        etc.join("policies.yaml"),
    )
    .unwrap();
    let port = free_port();
    let moved = |v: &str| {
        v.replace("/var/lib/", &format!("{}/var/lib/", root.path().display()))
            .replace("/etc/agent-otp", &etc.display().to_string())
            .replace("127.0.0.1:8787", &format!("127.0.0.1:{port}"))
    };
    let service = unit_section("deploy/agent-otp.service", "Service");
    let exec: Vec<String> = values(&service, "ExecStart")[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(exec[0], "/usr/local/bin/agent-otp");
    let umask = values(&service, "UMask")[0].to_owned();
    let bin = env!("CARGO_BIN_EXE_agent-otp");
    let env: Vec<(String, String)> = unit_env("deploy/agent-otp.service")
        .into_iter()
        .map(|(k, v)| (k, moved(&v)))
        // A tighter limit than the default, to see whose address the limiter counts.
        .chain([("AGENT_OTP_RATE_LIMIT_AUTH_FAILURES".into(), "3/min".into())])
        .collect();
    let log = root.path().join("server.log");
    let server = Running(
        Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$@\""))
            .arg("sh")
            .arg(bin)
            .args(&exec[1..])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(moved(values(&service, "WorkingDirectory")[0]))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let direct = format!("http://127.0.0.1:{port}");
    assert_eq!(wait_for(&format!("{direct}/health"), &http).await, 200);
    let summary = std::fs::read_to_string(&log).unwrap();
    assert!(
        summary.contains(&format!("data_dir={}", state.display()))
            && summary.contains("rules=")
            && summary.contains("policy=")
            && summary.contains("telegram=off"),
        "{summary}"
    );
    let db = state.join("agent-otp.db");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "UMask={umask}");

    // Behind each proxy, a client cannot pick the address the limiter counts: three wrong keys
    // claiming three different addresses are one client (the address the proxy saw), and the
    // fourth is refused. Each proxy's client connects from its own loopback address.
    let dir = root.path();
    let mut proxies: Vec<(String, Running)> = Vec::new();
    if let (Some(nginx), Some((cert, key))) = (tool("nginx"), certificate(dir)) {
        let tls = free_port();
        let site = nginx_site(&cert, &key)
            .replace(
                "    listen 80;\n    listen [::]:80;\n",
                &format!("    listen 127.0.0.1:{};\n", free_port()),
            )
            .replace("    listen [::]:443 ssl http2;\n", "")
            .replace(
                "listen 443 ssl http2;",
                &format!("listen 127.0.0.1:{tls} ssl http2;"),
            )
            .replace("127.0.0.1:8787", &format!("127.0.0.1:{port}"));
        let path = dir.join("site.conf");
        std::fs::write(&path, site).unwrap();
        let main = nginx_main(dir, &path);
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&main)
            .args(["-e", "stderr"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        proxies.push((format!("https://127.0.0.1:{tls}"), Running(child)));
    }
    if let Some(caddy) = tool("caddy") {
        let front = free_port();
        let file = read("deploy/Caddyfile")
            .replace(
                "otp.example.com {",
                &format!("{{\n\tadmin off\n}}\n\nhttp://127.0.0.1:{front} {{"),
            )
            .replace("127.0.0.1:8787", &format!("127.0.0.1:{port}"));
        let path = dir.join("Caddyfile");
        std::fs::write(&path, file).unwrap();
        let child = Command::new(caddy)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir)
            .env("XDG_DATA_HOME", dir)
            .env("XDG_CONFIG_HOME", dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        proxies.push((format!("http://127.0.0.1:{front}"), Running(child)));
    }
    for (i, (front, _)) in proxies.iter().enumerate() {
        let client: std::net::IpAddr = format!("127.0.0.{}", 2 + i).parse().unwrap();
        let via = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .local_address(client)
            .build()
            .unwrap();
        assert_eq!(
            wait_for(&format!("{front}/health"), &via).await,
            200,
            "{front}"
        );
        let wrong_key = |base: &str, claimed: &str| {
            via.get(format!("{base}/api/v1/permissions/none"))
                .bearer_auth("ak_wrong")
                .header("X-Forwarded-For", claimed.to_owned())
                .send()
        };
        let mut seen = Vec::new();
        for n in 1..=4 {
            let r = wrong_key(front, &format!("203.0.113.{n}")).await.unwrap();
            seen.push(r.status().as_u16());
        }
        assert_eq!(seen, [401, 401, 401, 429], "through {front}");
        // What was counted is the address the proxy saw, not any the client claimed.
        let counted = wrong_key(&direct, &client.to_string()).await.unwrap();
        assert_eq!(counted.status(), 429, "{client} via {front}");
        let claimed = wrong_key(&direct, "203.0.113.1").await.unwrap();
        assert_eq!(claimed.status(), 401, "203.0.113.1 via {front}");
    }
    assert_eq!(
        proxies.len(),
        [tool("nginx"), tool("caddy")].iter().flatten().count(),
        "every installed proxy was tried"
    );
    drop(proxies);

    // The backup unit's commands, with its environment, while the server runs.
    let backup = unit_section("deploy/agent-otp-backup.service", "Service");
    let benv: Vec<(String, String)> = unit_env("deploy/agent-otp-backup.service")
        .into_iter()
        .map(|(k, v)| (k, moved(&v)))
        .collect();
    for key in ["ExecStart", "ExecStartPost"] {
        let line = moved(values(&backup, key)[0])
            .replace("/usr/local/bin/agent-otp", bin)
            .replace("%%", "%");
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(benv.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut copies: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    copies.sort();
    assert_eq!(copies.len(), 2, "the copy and its checkpoint: {copies:?}");
    let anchor = copies[1].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(anchor.ends_with(".db.checkpoints"), "{anchor}");
    let name = copies[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("agent-otp-20") && name.ends_with(".db"),
        "{name}"
    );

    // systemd stops it with SIGTERM and waits TimeoutStopSec.
    let mut server = server;
    let ok = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let limit: u64 = values(&service, "TimeoutStopSec")[0]
        .trim_end_matches('s')
        .parse()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed().as_secs() < limit,
            "not stopped within {limit}s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
