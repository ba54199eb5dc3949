//! The policy file as written: serde types that mirror the YAML one to one. Unknown keys are
//! rejected here (`deny_unknown_fields`), as are wrong shapes (a list where a mapping belongs, a
//! null `conditions`); serde-saphyr attaches the line and column. Values whose meaning depends on
//! other values (condition paths, operator names and operands, regexes, scope templates) are kept
//! with their source location (`Spanned`) and checked in `compile`, which reports every problem at
//! once with an exact position.

use std::fmt;

use serde::Deserialize;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::Effect;

/// Top level: a list of rules, either bare (the original Agent OTP's form) or under the one key
/// `policies`. Both forms are read by the same strict rule types.
#[derive(Debug)]
pub(crate) struct RawFile {
    pub(crate) policies: Vec<Spanned<RawRule>>,
}

/// What the top level must be, in the words every shape error uses.
pub(crate) const TOP_LEVEL: &str = "a list of rules (or `policies:` followed by a list)";

struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = RawFile;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TOP_LEVEL)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawFile, A::Error> {
        let mut policies = Vec::new();
        while let Some(rule) = seq.next_element()? {
            policies.push(rule);
        }
        Ok(RawFile { policies })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
        let mut policies = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "policies" {
                return Err(serde::de::Error::custom(format!(
                    "unknown top-level key `{key}` (expected {TOP_LEVEL})"
                )));
            }
            if policies.is_some() {
                return Err(serde::de::Error::duplicate_field("policies"));
            }
            policies = Some(map.next_value::<RulesList>()?.0);
        }
        policies
            .map(|policies| RawFile { policies })
            .ok_or_else(|| serde::de::Error::missing_field("policies"))
    }
}

impl<'de> Deserialize<'de> for RawFile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FileVisitor)
    }
}

/// The list under `policies:`; anything else there is the same shape error as at the top.
struct RulesList(Vec<Spanned<RawRule>>);

impl<'de> Deserialize<'de> for RulesList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = RulesList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of rules under `policies:` (each starting with `- name:`)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RulesList, A::Error> {
                FileVisitor
                    .visit_seq(seq)
                    .map(|file| RulesList(file.policies))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// One rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRule {
    pub(crate) name: Spanned<String>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) agent: Option<Spanned<String>>,
    pub(crate) conditions: RawConditions,
    pub(crate) action: Effect,
    #[serde(default)]
    pub(crate) priority: Option<i64>,
    #[serde(default)]
    pub(crate) scope_template: Option<Spanned<Map<String, Value>>>,
    #[serde(default)]
    pub(crate) require_action_details: bool,
    #[serde(default)]
    pub(crate) bind: Option<Bind>,
    #[serde(default)]
    pub(crate) confirm: bool,
}

/// How tightly a grant is bound to what the request said it will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bind {
    /// The request must carry the exact `actionDetails`; every use must present the same.
    Exact,
}

/// `path -> operator map`, in file order. A null or non-mapping value is rejected.
#[derive(Debug)]
pub(crate) struct RawConditions(pub(crate) Vec<(Spanned<String>, RawOperators)>);

/// `operator -> operand`, in file order; operator names and operands are checked in `compile`.
#[derive(Debug)]
pub(crate) struct RawOperators(pub(crate) Vec<(Spanned<String>, Spanned<Value>)>);

struct PairsVisitor<K, V> {
    expecting: &'static str,
    _pairs: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<K, V> {
    type Value = Vec<(K, V)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<K>()? {
            let value = map.next_value::<V>()?;
            pairs.push((key, value));
        }
        Ok(pairs)
    }
}

/// `deserialize_any` (not `deserialize_map`) so that a null is an error instead of an empty map:
/// `conditions:` with nothing after it must not silently match everything.
fn pairs<'de, D, K, V>(deserializer: D, expecting: &'static str) -> Result<Vec<(K, V)>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
{
    deserializer.deserialize_any(PairsVisitor {
        expecting,
        _pairs: std::marker::PhantomData,
    })
}

impl<'de> Deserialize<'de> for RawConditions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        pairs(
            deserializer,
            "a mapping of condition paths (use `{}` to match every request)",
        )
        .map(RawConditions)
    }
}

impl<'de> Deserialize<'de> for RawOperators {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        pairs(
            deserializer,
            "a mapping of operators, e.g. `{ equals: \"file.read\" }`",
        )
        .map(RawOperators)
    }
}
