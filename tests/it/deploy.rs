//! Deployment: the Dockerfile (no Docker engine runs here, so its build steps must be the script
//! CI runs, and its runtime settings are checked as text) and `agent-otp health`, the image's
//! health check, run as the real binary.

use std::path::Path;
use std::process::Command;

use crate::support::ChildServer;

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-otp"));
    cmd.arg("health").args(args).env("NO_COLOR", "1");
    match listen {
        Some(l) => cmd.env("AGENT_OTP_LISTEN", l),
        None => cmd.env_remove("AGENT_OTP_LISTEN"),
    };
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
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
