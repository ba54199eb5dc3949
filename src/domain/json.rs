//! JSON objects read strictly: a key written twice in one object is refused, at every level.
//!
//! serde_json keeps the last of two equal keys, while other parsers keep the first or both, so
//! `{"amount": 1000, "amount": 5}` could be checked here as 5 and performed elsewhere as 1000.
//! Every object an agent or a human sends (`scope`, `context`, `actionDetails`, scope edits) is
//! read through [`strict_object`], so it has one meaning for everyone who reads it.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::text::with_markers;

/// `deserialize_with` for an optional object: absent or `null` is `None`; an object with a
/// duplicate key anywhere inside is an error naming the key.
pub(crate) fn strict_object<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Map<String, Value>>, D::Error> {
    struct Optional;

    impl<'de> Visitor<'de> for Optional {
        type Value = Option<Map<String, Value>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(Strict).and_then(|v| match v {
                Value::Object(map) => Ok(Some(map)),
                _ => Err(de::Error::custom("expected a JSON object")),
            })
        }
    }

    d.deserialize_option(Optional)
}

/// Builds a [`Value`] like serde_json does, refusing a key seen twice in one object.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number must be finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(256));
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}` in one object; send each key once",
                    with_markers(&key)
                )));
            }
            let value = map.next_value_seed(Strict)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default, deserialize_with = "strict_object")]
        details: Option<Map<String, Value>>,
    }

    fn parse(text: &str) -> Result<Option<Map<String, Value>>, String> {
        serde_json::from_str::<Body>(text)
            .map(|b| b.details)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_key_written_twice_is_refused_at_any_depth() {
        for bad in [
            r#"{"details": {"amount": 1000, "amount": 5}}"#,
            r#"{"details": {"payment": {"amount": 1000, "amount": 5}}}"#,
            r#"{"details": {"items": [{"to": "a", "to": "b"}]}}"#,
            r#"{"details": {"a": 1, "\u0061": 2}}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("duplicate key"), "{bad}: {err}");
        }
    }

    #[test]
    fn lawful_objects_read_as_serde_json_reads_them() {
        let text = r#"{"details": {"a": [1, -2, 3.5, 18446744073709551615, true, null, "x"],
            "b": {"c": {}}, "A": 1, "e": 1e300}}"#;
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            parse(text).unwrap().map(Value::Object).unwrap(),
            want["details"]
        );
        assert_eq!(parse(r#"{"details": null}"#).unwrap(), None);
        assert_eq!(parse("{}").unwrap(), None);
        assert!(parse(r#"{"details": [1]}"#).is_err());
        assert!(parse(r#"{"details": "x"}"#).is_err());
    }
}
