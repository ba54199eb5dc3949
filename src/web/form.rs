//! `application/x-www-form-urlencoded` bodies, with repeated keys (checkbox lists), and turning
//! the approval form into [`Edits`]: the page offers only narrowing edits, and whatever
//! arrives is still checked by `service.approve`, which refuses any widening.

use crate::wire::permissions::PermissionView;
use serde_json::{Map, Number, Value};

use crate::domain::request::Edits;

/// A parsed form: every `(name, value)` pair in order.
#[derive(Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses an urlencoded body (malformed escapes decode lossily, as browsers send them).
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or `None` when missing or blank.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Every `(name, value)` pair, in order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().cloned()
    }

    /// Every value of `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Form field names of the approval page, keyed by scope key.
pub(super) fn number_field(key: &str) -> String {
    format!("num:{key}")
}
pub(super) fn list_field(key: &str) -> String {
    format!("list:{key}")
}
pub(super) fn flag_field(key: &str) -> String {
    format!("flag:{key}")
}

/// Builds the edits of the "approve" form against the request as it is. Field problems are
/// returned as one sentence for the page.
pub(super) fn approval_edits(form: &Form, req: &PermissionView) -> Result<Edits, String> {
    let int = |name: &str| -> Result<Option<i64>, String> {
        match form.text(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("{name}: {v:?} is not a whole number")),
        }
    };
    // The page asks for minutes; `ttl` (seconds) is still read for older pages.
    let ttl = match form.text("ttl_min") {
        Some(m) => Some(
            m.parse::<f64>()
                .ok()
                .filter(|m| m.is_finite() && *m > 0.0 && *m < 1e9)
                .map(|m| (m * 60.0).round() as i64)
                .ok_or_else(|| format!("Token valid for: {m:?} is not a number of minutes"))?,
        ),
        None => int("ttl")?,
    };
    let uses = int("uses")?;
    let mut scope = Map::new();
    // Only keys the page offered are read; an edit to any other key is ignored, not applied.
    for (key, current) in &req.scope {
        match current {
            Value::Number(_) => {
                let Some(raw) = form.text(&number_field(key)) else {
                    continue;
                };
                scope.insert(
                    key.clone(),
                    parse_number(&raw).map_err(|why| format!("{key}: {why}"))?,
                );
            }
            Value::Array(items) if form.get(&format!("has:{key}")).is_some() => {
                let mut keep = Vec::new();
                for raw in form.all(&list_field(key)) {
                    let i: usize = raw
                        .parse()
                        .map_err(|_| format!("{key}: {raw:?} is not an entry of the list"))?;
                    let item = items
                        .get(i)
                        .ok_or_else(|| format!("{key}: entry {i} is not in the list"))?;
                    if !keep.contains(item) {
                        keep.push(item.clone());
                    }
                }
                scope.insert(key.clone(), Value::Array(keep));
            }
            Value::Bool(_) if form.get(&format!("has:{key}")).is_some() => {
                scope.insert(
                    key.clone(),
                    Value::Bool(form.get(&flag_field(key)).is_some()),
                );
            }
            _ => {}
        }
    }
    Ok(Edits {
        ttl,
        uses,
        scope: (!scope.is_empty()).then_some(scope),
        note: form.text("note"),
    })
}

/// The number the approver typed, when it is one and is read without rounding
/// (`crate::number`); else the sentence that says why not.
fn parse_number(raw: &str) -> Result<Value, String> {
    if let Some(why) = crate::number::typed_refusal(raw) {
        return Err(format!("{raw:?} {why}"));
    }
    // A whole number as that integer (`7`, `4611686018427840512.0`), as the API keeps it.
    crate::number::integer(raw)
        .or_else(|| raw.parse::<f64>().ok().and_then(Number::from_f64))
        .map(Value::Number)
        .ok_or_else(|| format!("{raw:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_and_escapes() {
        let f = Form::parse(b"a=1&list%3Ax=0&list%3Ax=2&note=hi+there&empty=");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.all("list:x").collect::<Vec<_>>(), ["0", "2"]);
        assert_eq!(f.text("note").as_deref(), Some("hi there"));
        assert_eq!(f.text("empty"), None);
        assert_eq!(parse_number("2.5"), Ok(serde_json::json!(2.5)));
        assert_eq!(parse_number("7"), Ok(serde_json::json!(7)));
        // Above i64, a whole number stays whole rather than become the float beside it.
        assert_eq!(
            parse_number("18446744073709551615"),
            Ok(serde_json::json!(u64::MAX))
        );
        assert_eq!(parse_number("NaN"), Err("\"NaN\" is not a number".into()));
        assert!(parse_number("99.999999999999999999").is_err_and(|e| e.contains("read as 100.0")));
        // Kept as the float holds it, 512 over what was typed: refused, not kept.
        assert_eq!(
            parse_number("4.61168601842784e18"),
            Err(
                "\"4.61168601842784e18\" would be read as 4611686018427840512; type the whole \
                 number you mean in digits"
                    .into()
            )
        );
        assert_eq!(
            parse_number("4611686018427840512"),
            Ok(serde_json::json!(4_611_686_018_427_840_512u64))
        );
        // The page shows a number with every digit in place; sent back unchanged, it is the
        // same number.
        for json in [
            "1e21",
            "1.2345678901234567e25",
            "1.5e-7",
            "-1000000.0",
            "59.97000000000001",
        ] {
            let n: Number = serde_json::from_str(json).unwrap();
            let back = parse_number(&crate::number::positional(&n)).unwrap();
            let back = back.as_number().unwrap();
            assert_eq!(
                crate::number::cmp(back, &n),
                std::cmp::Ordering::Equal,
                "{json}"
            );
        }
        // A whole number with a point is kept whole, as the API keeps it.
        assert_eq!(
            parse_number("4611686018427840512.0"),
            Ok(serde_json::json!(4_611_686_018_427_840_512u64))
        );
        // "+5", ".5" and "5." are numbers, as a person types them.
        assert_eq!(parse_number("+5"), Ok(serde_json::json!(5)));
        assert_eq!(parse_number(".5"), Ok(serde_json::json!(0.5)));
        assert_eq!(parse_number("5."), Ok(serde_json::json!(5)));
    }
}
