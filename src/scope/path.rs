//! Lexical path normalisation, for path-like scope fields and for `resource`. Nothing touches
//! the file system: `//` collapses, `.` parts drop, `..` removes the part before it, and a `..`
//! with nothing left to remove (climbing above the root, or above the start of a relative path)
//! is refused. `/` is the only separator; a backslash is refused rather than guessed at. A
//! trailing `/` (also one implied by a final `.` or `..`) is kept, so `/srv/a/..` reads `/srv/`.

use std::borrow::Cow;
use std::fmt;

use crate::text::first_hidden;

/// Why a path cannot be normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    Empty,
    Backslash,
    Hidden(char),
    AboveRoot,
    /// A character that some systems read as `/`, `\\` or `.` (full-width, compatibility or
    /// "best fit" look-alikes such as U+FF0F, U+2215, U+FF0E, U+2025).
    LookAlike(char),
    /// A part that another reader may take for `.` or `..`: percent-encoded dots (`%2e%2e`,
    /// `%252e`, `..%2f` whose encoded separator makes a `..` segment), a `..;param` part, or a
    /// part of only dots and spaces other than `.` and `..` (`...`, `.. `).
    Ambiguous,
    /// A percent-encoded control character (`%00`, `%0a`, `%7f`, also as `%2500`): a reader that
    /// decodes it may cut the path there (`/etc/passwd%00.pdf` ends in `.pdf` here only).
    EncodedControl,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("is an empty path"),
            PathError::Backslash => f.write_str("contains a backslash (only / separates parts)"),
            PathError::Hidden(c) => write!(
                f,
                "contains the invisible character U+{:04X}",
                u32::from(*c)
            ),
            PathError::AboveRoot => f.write_str("climbs above its root with `..`"),
            PathError::LookAlike(c) => write!(
                f,
                "contains `{c}` (U+{:04X}), which some systems read as `/`, `\\` or `.`",
                u32::from(*c)
            ),
            PathError::Ambiguous => f.write_str(
                "has a part that may be read as `.`, `..` or a separator (percent-encoded, \
                 `..;`, or only dots and spaces)",
            ),
            PathError::EncodedControl => f.write_str(
                "contains a percent-encoded control character (%00 to %1F or %7F), \
                 which a reader that decodes it may cut the path at",
            ),
        }
    }
}

/// A normalised path: its parts, whether it is absolute and whether it names a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CleanPath<'a> {
    absolute: bool,
    parts: Vec<&'a str>,
    dir: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Skip,
    Up,
    Name,
}

/// A plain path part: only a literal `.` or `..` is special.
fn literal(part: &str) -> Part {
    match part {
        "" | "." => Part::Skip,
        ".." => Part::Up,
        _ => Part::Name,
    }
}

/// A URL path part: `%2e` counts as a dot, as URL parsers read it.
fn url_part(part: &str) -> Part {
    match part.to_ascii_lowercase().as_str() {
        "" | "." | "%2e" => Part::Skip,
        ".." | ".%2e" | "%2e." | "%2e%2e" => Part::Up,
        _ => Part::Name,
    }
}

/// The first character of `s` that reads as `/`, `\\` or `.` somewhere else: under Unicode
/// compatibility normalisation (NFKC), or under the "best fit" mapping Windows applies when it
/// turns a name into a legacy code page.
pub(crate) fn first_look_alike(s: &str) -> Option<char> {
    s.chars().find(|c| {
        matches!(
            c,
            '\u{2024}' // one dot leader (NFKC `.`)
                | '\u{2025}' // two dot leader (NFKC `..`)
                | '\u{FE52}' // small full stop
                | '\u{FF0E}' // full-width full stop
                | '\u{FF0F}' // full-width solidus
                | '\u{FF3C}' // full-width reverse solidus
                | '\u{FE68}' // small reverse solidus
                | '\u{2044}' // fraction slash
                | '\u{2215}' // division slash
                | '\u{2216}' // set minus
                | '\u{29F5}' // reverse solidus operator
                | '\u{29F8}' // big solidus
                | '\u{29F9}' // big reverse solidus
        )
    })
}

/// True when `s` holds a percent-encoded control character, also under encoded `%` (`%2500`).
fn has_encoded_control(s: &str) -> bool {
    let mut text = s.to_ascii_lowercase();
    for _ in 0..4 {
        let next = text.replace("%25", "%");
        if next == text {
            break;
        }
        text = next;
    }
    let b = text.as_bytes();
    (0..b.len().saturating_sub(2)).any(|i| {
        b[i] == b'%'
            && std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .is_some_and(|v| v < 0x20 || v == 0x7f)
    })
}

/// True for a part that some reader may take for `.`, `..` or a separator although it is a
/// plain name here (see [`PathError::Ambiguous`]).
fn ambiguous(part: &str) -> bool {
    let raw = part.to_ascii_lowercase();
    let mut text = raw.clone();
    // Undo percent-encoding of dots, separators and `%` itself, a few layers deep.
    for _ in 0..4 {
        let next = text
            .replace("%25", "%")
            .replace("%2e", ".")
            .replace("%2f", "/")
            .replace("%5c", "\\");
        if next == text {
            break;
        }
        text = next;
    }
    let decoded = text != raw;
    let dots_only = |t: &str| !t.is_empty() && t.chars().all(|c| c == '.' || c == ' ');
    // An encoded separator alone is lawful (`group%2Fproject` in GitLab's API); one that makes
    // a `.` or `..` segment, like any other reading as dots, is not.
    text.split(['/', '\\']).any(|segment| {
        let head = segment.split(';').next().unwrap_or_default();
        dots_only(head) && (decoded || head != segment || (head != "." && head != ".."))
    })
}

fn clean_with(s: &str, kind: fn(&str) -> Part) -> Result<CleanPath<'_>, PathError> {
    if s.contains('\\') {
        return Err(PathError::Backslash);
    }
    if let Some(c) = first_look_alike(s) {
        return Err(PathError::LookAlike(c));
    }
    if has_encoded_control(s) {
        return Err(PathError::EncodedControl);
    }
    let mut parts = Vec::new();
    let mut dir = false;
    for part in s.split('/') {
        let k = kind(part);
        if k == Part::Name && ambiguous(part) {
            return Err(PathError::Ambiguous);
        }
        match k {
            Part::Skip => {}
            Part::Up => {
                parts.pop().ok_or(PathError::AboveRoot)?;
            }
            Part::Name => parts.push(part),
        }
        dir = k != Part::Name;
    }
    Ok(CleanPath {
        absolute: s.starts_with('/'),
        parts,
        dir,
    })
}

/// Normalises a path-like value from a scope or `actionDetails`.
pub(crate) fn clean(s: &str) -> Result<CleanPath<'_>, PathError> {
    if s.is_empty() {
        return Err(PathError::Empty);
    }
    if let Some(c) = first_hidden(s) {
        return Err(PathError::Hidden(c));
    }
    clean_with(s, literal)
}

impl CleanPath<'_> {
    /// True when `other` is this path or lies below it, comparing whole parts (`/etc` covers
    /// `/etc/shadow`, not `/etcetera`). An absolute path never covers a relative one, nor the
    /// reverse. With `fold`, parts compare ignoring case and reading look-alikes of ASCII as
    /// ASCII (`/ｅtc` is `/etc` to a reader that applies NFKC).
    pub(crate) fn covers(&self, other: &CleanPath<'_>, fold: bool) -> bool {
        self.absolute == other.absolute
            && self.parts.len() <= other.parts.len()
            && self
                .parts
                .iter()
                .zip(&other.parts)
                .all(|(a, b)| if fold { folded(a) == folded(b) } else { a == b })
    }

    pub(crate) fn is_absolute(&self) -> bool {
        self.absolute
    }
}

/// A path part as a block list compares it: look-alikes of ASCII read as ASCII, without final
/// dots and spaces, in lower case.
fn folded(part: &str) -> String {
    // Windows drops a name's final dots and spaces: `/etc./passwd` opens `/etc/passwd`.
    super::ascii_look_alikes(part)
        .trim_end_matches(['.', ' '])
        .to_lowercase()
}

impl fmt::Display for CleanPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.absolute {
            f.write_str("/")?;
        } else if self.parts.is_empty() {
            return f.write_str(".");
        }
        f.write_str(&self.parts.join("/"))?;
        if self.dir && !self.parts.is_empty() {
            f.write_str("/")?;
        }
        Ok(())
    }
}

/// True for a field whose values are paths: `path`, `file`, `dir`, `directory`, `folder`, any
/// name ending in `_path`, `_file`, `_dir`, `_directory` or `_folder`, and their plurals; in
/// camelCase (`filePath`) or with `-` (`file-path`) too.
pub(crate) fn is_path_field(field: &str) -> bool {
    const NAMES: [&str; 5] = ["path", "file", "dir", "directory", "folder"];
    let mut snake = String::with_capacity(field.len() + 4);
    let mut after_lower = false;
    for c in field.chars() {
        if c.is_ascii_uppercase() && after_lower {
            snake.push('_');
        }
        after_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        snake.push(if c == '-' {
            '_'
        } else {
            c.to_ascii_lowercase()
        });
    }
    super::singulars(&snake).iter().any(|name| {
        NAMES
            .iter()
            .any(|n| name == n || name.strip_suffix(n).is_some_and(|head| head.ends_with('_')))
    })
}

/// The `scheme` of `scheme:rest`, with `rest` (RFC 3986 scheme syntax).
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some((scheme, rest))
}

fn render(kept: &str, path: &str, kind: fn(&str) -> Part, tail: &str) -> Result<String, String> {
    let clean = clean_with(path, kind).map_err(|e| e.to_string())?;
    Ok(format!("{kept}{clean}{tail}"))
}

/// Normalises a request's `resource` so the policy sees one spelling of it:
/// - `/…` is a path: normalised;
/// - `file:…` (with or without `//host`) has its path normalised, `%2e` read as a dot;
/// - `scheme://host/path?query#fragment` has its path normalised, query and fragment kept;
/// - anything else is kept as it is, but refused when one of its `/`-separated parts is `.` or
///   `..` (such a name has no single meaning).
///
/// The error says what is wrong, in a few words.
pub(crate) fn normalize_resource(s: &str) -> Result<Cow<'_, str>, String> {
    if let Some(c) = first_hidden(s) {
        return Err(PathError::Hidden(c).to_string());
    }
    let out = if s.starts_with('/') {
        render("", s, literal, "")?
    } else if let Some((scheme, rest)) = split_scheme(s)
        && let Some(after) = rest.strip_prefix("//")
    {
        let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
        let host_part = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
        if host_part.contains('\\') {
            // WHATWG parsers read `\` as `/` (host `a.com` in `https://a.com\@evil.com/`),
            // others as part of the user name (host `evil.com`): no single meaning.
            return Err(PathError::Backslash.to_string());
        }
        let (path, tail) = path.split_at(path.find(['?', '#']).unwrap_or(path.len()));
        if path.is_empty() {
            return Ok(Cow::Borrowed(s));
        }
        render(&format!("{scheme}://{authority}"), path, url_part, tail)?
    } else if let Some((scheme, rest)) = split_scheme(s)
        && scheme.eq_ignore_ascii_case("file")
        && !rest.is_empty()
    {
        render(&format!("{scheme}:"), rest, url_part, "")?
    } else if s.split('/').any(|part| part == "." || part == "..") {
        return Err(
            "has a `.` or `..` part but is neither a path starting with / nor a URL".into(),
        );
    } else if s.contains('/') && s.split('/').any(ambiguous) {
        return Err(PathError::Ambiguous.to_string());
    } else if s.contains('/')
        && let Some(c) = first_look_alike(s)
    {
        return Err(PathError::LookAlike(c).to_string());
    } else {
        return Ok(Cow::Borrowed(s));
    };
    Ok(if out == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(out)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn a_percent_encoded_control_character_is_refused() {
        for bad in [
            "/etc/passwd%00.pdf",
            "/srv/a%0a/b",
            "/srv/a%2500",
            "/srv/%7F",
            "/srv/%1f",
        ] {
            assert_eq!(
                super::clean(bad).err(),
                Some(super::PathError::EncodedControl),
                "{bad}"
            );
        }
        for good in [
            "/srv/a%20b",
            "/srv/100%",
            "/srv/a%2Fb",
            "/srv/%e2%82%ac",
            "/srv/%0",
        ] {
            assert!(super::clean(good).is_ok(), "{good}");
        }
    }

    use super::*;

    #[test]
    fn paths_normalise_lexically() {
        let table = [
            ("/etc/shadow", "/etc/shadow"),
            ("/etc//shadow", "/etc/shadow"),
            ("/etc/./shadow", "/etc/shadow"),
            ("/etc/../etc/shadow", "/etc/shadow"),
            ("/srv/reports/", "/srv/reports/"),
            ("/srv/reports/..", "/srv/"),
            ("/srv/reports/.", "/srv/reports/"),
            ("/", "/"),
            ("//", "/"),
            ("a/./b//c", "a/b/c"),
            ("a/..", "."),
            ("./x", "x"),
        ];
        for (input, want) in table {
            assert_eq!(clean(input).unwrap().to_string(), want, "{input}");
        }
        for (input, err) in [
            ("/..", PathError::AboveRoot),
            ("/srv/../..", PathError::AboveRoot),
            ("../x", PathError::AboveRoot),
            ("a/../../b", PathError::AboveRoot),
            ("", PathError::Empty),
            ("C:\\x", PathError::Backslash),
            ("/etc/\u{200B}shadow", PathError::Hidden('\u{200B}')),
            ("/etc/sha\0dow", PathError::Hidden('\0')),
        ] {
            assert_eq!(clean(input).unwrap_err(), err, "{input}");
        }
    }

    #[test]
    fn look_alike_and_encoded_dots_are_refused() {
        // Each reads as `..` or `/` to some reader (a percent-decoding service, Tomcat's `;`
        // parameters, NFKC, Windows best-fit), so a `startsWith` rule or a path prefix that
        // passes it here would not hold there.
        for bad in [
            "/srv/reports/%2e%2e/etc/passwd",
            "/srv/reports/%2E%2E/etc/passwd",
            "/srv/reports/.%2e/etc",
            "/srv/reports/%252e%252e/etc",
            "/srv/reports/..%2fetc",
            "/srv/reports/..%5cetc",
            "/srv/reports/..;/..;/etc",
            "/srv/reports/.../x",
            "/srv/reports/.. /x",
            "/srv/reports/\u{FF0E}\u{FF0E}/etc",
            "/srv/reports/x\u{FF0F}..\u{FF0F}..\u{FF0F}etc",
            "/srv/reports/\u{2215}..\u{2215}..",
            "/srv/reports/\u{2025}/\u{2025}/etc/passwd",
            "/srv/reports/\u{FF3C}..",
        ] {
            assert!(clean(bad).is_err(), "{bad}");
            assert!(normalize_resource(bad).is_err(), "{bad}");
        }
        for bad in [
            "https://h/public/%2e%2e;x/admin",
            "https://h/public/%252e%252e/admin",
            "https://h/public/..%2fadmin",
            "file:///srv/reports/..;/x",
            "reports/%2e%2e/secret",
            "reports/.../secret",
            "reports/\u{FF0E}\u{FF0E}/secret",
        ] {
            assert!(normalize_resource(bad).is_err(), "{bad}");
        }
        // Lawful names with dots, percent signs and semicolons still pass.
        for good in [
            "/srv/reports/a.csv",
            "/srv/reports/.hidden",
            "/srv/reports/a..b",
            "/srv/reports/100%25",
            "/srv/reports/a;b",
            "/srv/reports/Draft\u{2026}.docx",
        ] {
            assert!(clean(good).is_ok(), "{good}");
            assert_eq!(normalize_resource(good).unwrap(), good);
        }
        assert!(normalize_resource("v1.2..v1.3").is_ok());
        assert!(normalize_resource("https://h/a?x=%2e%2e/..;").is_ok());
        assert!(normalize_resource("https://h?x=a\\b").is_ok());
        assert!(
            normalize_resource("https://gitlab.com/api/v4/projects/group%2Fproject/issues").is_ok()
        );
        assert!(clean("/srv/a%2fb").is_ok());
        assert!(normalize_resource("https://h/a?x=a\\b#c\\d").is_ok());
    }

    #[test]
    fn covering_compares_whole_parts() {
        let etc = clean("/etc").unwrap();
        for yes in [
            "/etc",
            "/etc/",
            "/etc/shadow",
            "/etc//shadow",
            "/etc/../etc/x/y",
        ] {
            assert!(etc.covers(&clean(yes).unwrap(), false), "{yes}");
        }
        for no in ["/etcetera", "/", "/var/etc", "etc/shadow", "/srv/../x"] {
            assert!(!etc.covers(&clean(no).unwrap(), false), "{no}");
        }
        assert!(!etc.covers(&clean("/ETC/shadow").unwrap(), false));
        assert!(etc.covers(&clean("/ETC/shadow").unwrap(), true));
        assert!(clean("/").unwrap().covers(&etc, false));
    }

    #[test]
    fn path_fields_are_named_by_convention() {
        for yes in [
            "path",
            "paths",
            "file",
            "files",
            "dir",
            "dirs",
            "directory",
            "directories",
            "folder",
            "src_path",
            "dest_paths",
            "config_file",
            "output_dir",
            "Path",
            "filePath",
            "srcPaths",
            "logFile",
            "output-dir",
            "FILE_PATH",
        ] {
            assert!(is_path_field(yes), "{yes}");
        }
        for no in [
            "pathname",
            "filename",
            "profile",
            "xpath",
            "XPath",
            "fileName",
            "recipients",
            "amount",
        ] {
            assert!(!is_path_field(no), "{no}");
        }
    }

    #[test]
    fn resources_normalise_by_kind() {
        let table = [
            ("/srv/reports/../../etc/passwd", "/etc/passwd"),
            ("/srv/reports/a.csv", "/srv/reports/a.csv"),
            ("file:///srv/./x//y", "file:///srv/x/y"),
            ("file:/srv/a/../b", "file:/srv/b"),
            ("file://host/a/%2e%2e/b", "file://host/b"),
            (
                "https://api.example.com/public/../admin?x=../y#..",
                "https://api.example.com/admin?x=../y#..",
            ),
            ("https://api.example.com", "https://api.example.com"),
            ("https://api.example.com/", "https://api.example.com/"),
            ("invoice/2026-03", "invoice/2026-03"),
            ("client@x.com", "client@x.com"),
            ("gmail:inbox", "gmail:inbox"),
            ("v1.2..v1.3", "v1.2..v1.3"),
            ("", ""),
        ];
        for (input, want) in table {
            assert_eq!(normalize_resource(input).unwrap(), want, "{input}");
        }
        assert!(matches!(normalize_resource("/srv/a"), Ok(Cow::Borrowed(_))));
        for bad in [
            "/srv/reports/../../../..",
            "/..",
            "file:///..",
            "file:../x",
            "https://h/%2E%2E",
            "https://h/a\\..\\b",
            "https://api.example.com\\@evil.com/",
            "https://api.example.com\\",
            "reports/../secret",
            "./x",
            "C:/Windows/../x",
        ] {
            assert!(normalize_resource(bad).is_err(), "{bad}");
        }
    }
}
