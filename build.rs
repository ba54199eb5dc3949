//! Tells the tests which outside tools are missing, so that tests needing them are reported as
//! ignored in the test summary (`cfg(no_browser)`, `cfg(no_deploy_validators)`) instead of
//! passing quietly. Under `CI=true` nothing is reported missing: those tests then run, and fail
//! without their tools. Reruns when PATH, CI, or a PATH directory changes (a tool installed).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_browser)");
    println!("cargo::rustc-check-cfg=cfg(no_deploy_validators)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path)
        .filter(|d| d.is_dir())
        .collect();
    for dir in &dirs {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return;
    }
    let on_path = |name: &str| dirs.iter().any(|d| d.join(name).is_file());
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .any(|n| on_path(n));
    if !(browser && on_path("chromedriver")) {
        println!("cargo::rustc-cfg=no_browser");
    }
    if !["systemd-analyze", "caddy", "nginx", "openssl"]
        .iter()
        .all(|n| on_path(n))
    {
        println!("cargo::rustc-cfg=no_deploy_validators");
    }
}
