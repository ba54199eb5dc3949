//! The layering the README's "Layout" describes, checked on the source: channels reach records
//! only through the service, nothing below the channels imports one, and the layout block names
//! every module there is (and nothing that is not).

use std::path::{Path, PathBuf};

/// Where an import of `module` may appear: files under these paths.
const CHANNELS: &[&str] = &["api", "web", "telegram", "cli", "mcp.rs"];
/// Above the channels: they wire everything together.
const TOP: &[&str] = &["app.rs", "main.rs", "lib.rs", "config.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn rust_files(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((rel, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

fn all_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    assert!(files.len() > 50, "found only {} source files", files.len());
    files
}

fn under(rel: &str, roots: &[&str]) -> bool {
    roots
        .iter()
        .any(|r| rel == *r || rel.starts_with(&format!("{r}/")))
}

/// Lines of code (not comments) that name `crate::<module>`.
fn imports<'a>(text: &'a str, module: &str) -> Vec<&'a str> {
    let needle = format!("crate::{module}");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .filter(|l| {
            l.match_indices(&needle).any(|(i, _)| {
                let next = l[i + needle.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect()
}

#[test]
fn channels_do_not_name_the_store() {
    let mut found = Vec::new();
    for (rel, text) in all_files() {
        if under(&rel, CHANNELS) {
            found.extend(
                imports(&text, "store")
                    .into_iter()
                    .map(|l| format!("{rel}: {l}")),
            );
        }
    }
    assert!(
        found.is_empty(),
        "channels must go through the service:\n{}",
        found.join("\n")
    );
}

#[test]
fn nothing_below_the_channels_imports_one() {
    let mut found = Vec::new();
    for (rel, text) in all_files() {
        if under(&rel, CHANNELS) || under(&rel, TOP) {
            continue;
        }
        for channel in ["api", "web", "telegram", "cli", "mcp"] {
            found.extend(
                imports(&text, channel)
                    .into_iter()
                    .map(|l| format!("{rel}: {l}")),
            );
        }
    }
    assert!(
        found.is_empty(),
        "a lower layer imports a channel:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_above_can_fail() {
    // The scanner sees an import and ignores comments and longer names.
    assert_eq!(imports("use crate::store::Store;", "store").len(), 1);
    assert!(imports("// see crate::store", "store").is_empty());
    assert!(imports("use crate::storefront;", "store").is_empty());
}

#[test]
fn the_readme_layout_names_every_module_and_only_real_paths() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("## Layout").expect("a Layout section");
    let block = &readme[start..];
    let block = &block[block.find("```").unwrap() + 3..];
    let block = &block[..block.find("```").unwrap()];
    // One entry per line: a path from the repository's root, then what it owns.
    let entries: Vec<&str> = block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for path in &entries {
        assert!(
            root.join(path).exists(),
            "the README layout names {path}, which does not exist"
        );
    }
    for entry in std::fs::read_dir(src()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if entry.path().is_dir() {
            format!("src/{name}/")
        } else {
            format!("src/{name}")
        };
        assert!(
            entries.contains(&path.as_str()),
            "the README layout does not mention {path}"
        );
    }
}
