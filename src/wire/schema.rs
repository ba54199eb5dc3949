//! Hand-written OpenAPI schemas for what the derive cannot say by itself: constant booleans, the
//! error codes, and the limits that `domain::request` and `scope` enforce on free-form JSON. Each
//! reads its numbers from the constant the server checks, so the document follows the code.

use serde_json::json;
use utoipa::openapi::Ref;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, SchemaFormat};

use super::permissions::MAX_TOKEN_CHARS;
use crate::domain::records::NAME_MAX_CHARS;
use crate::domain::request::{
    ACTION_MAX_CHARS, JSON_BYTES_MAX, JSON_DEPTH_MAX, JSON_KEYS_MAX, NOTE_MAX_CHARS,
    RESOURCE_MAX_CHARS, TTL_DEFAULT, TTL_MAX, TTL_MIN, USES_DEFAULT, USES_MAX, USES_MIN,
};
use crate::error::CODES;

/// Characters the server accepts in free text: no control characters but tab and newline.
const TEXT_CHAR: &str = "[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]";

/// Characters the server accepts in an identifier-like field (`resource`, a use's `action` and
/// `resource`): no control, bidi, zero-width or other invisible format characters (see
/// `crate::text::is_hidden`; the astral tag and variation-selector blocks, which a JSON Schema
/// pattern cannot name portably, are refused by the server too).
const SHOWN_CHAR: &str = "[^\\u0000-\\u001F\\u007F-\\u009F\\u00AD\\u034F\\u061C\\u115F\\u1160\\u17B4\\u17B5\\u180B-\\u180F\\u200B-\\u200F\\u2028-\\u202E\\u205F-\\u206F\\u3164\\uFE00-\\uFE0F\\uFEFF\\uFFA0\\uFFF9-\\uFFFB]";

fn text(min: usize, max: usize, pattern: String) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

fn nullable(schema: Schema) -> Schema {
    match schema {
        Schema::Object(mut o) => {
            if let SchemaType::Type(t) = o.schema_type {
                o.schema_type = SchemaType::from_iter([t, Type::Null]);
            }
            Schema::Object(o)
        }
        other => other,
    }
}

/// `action`: a dotted name, 1–255 ASCII letters, digits and `._:-`, not starting or ending with
/// `.` or `:` and without an empty part (`..`), as `domain::request` checks it.
pub(crate) fn action() -> Schema {
    let pattern = r"^[A-Za-z0-9_-](?:[A-Za-z0-9_:-]*(?:\.[A-Za-z0-9_:-]+)*\.?[A-Za-z0-9_-])?$";
    text(1, ACTION_MAX_CHARS, pattern.to_owned())
}

/// `resource`: up to 1024 characters, none of them hidden; or `null`. (Paths and URLs are also
/// normalised, and one whose `..` climbs above its root is refused.)
pub(crate) fn resource() -> Schema {
    nullable(text(0, RESOURCE_MAX_CHARS, format!("^{SHOWN_CHAR}*$")))
}

/// A human's note or reason: up to 1000 characters, no control characters but tab and newline;
/// or `null`.
pub(crate) fn note() -> Schema {
    nullable(text(0, NOTE_MAX_CHARS, format!("^{TEXT_CHAR}*$")))
}

/// An agent name.
pub(crate) fn agent_name() -> Schema {
    let pattern = format!("^[A-Za-z0-9._-]{{1,{NAME_MAX_CHARS}}}$");
    text(1, NAME_MAX_CHARS, pattern)
}

/// A permission token as presented (real ones are `otp_`, 22 characters naming the request and 40
/// secret ones; older ones `otp_` and 40).
pub(crate) fn token() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_TOKEN_CHARS))
        .into()
}

fn constant(value: bool) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .enum_values(Some([value]))
        .into()
}

/// `true`, always.
pub(crate) fn always_true() -> Schema {
    constant(true)
}

/// `false`, always.
pub(crate) fn always_false() -> Schema {
    constant(false)
}

/// One of the envelope's error codes.
pub(crate) fn error_code() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CODES.iter().copied()))
        .into()
}

/// One fixed string (a status in an answer that has only one).
fn fixed(value: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .into()
}

/// `"denied"`.
pub(crate) fn status_denied() -> Schema {
    fixed("denied")
}

/// `"approved"`.
pub(crate) fn status_approved() -> Schema {
    fixed("approved")
}

/// `"pending"`.
pub(crate) fn status_pending() -> Schema {
    fixed("pending")
}

/// An optional whole number from `min` to `max` (absent or `null`: the default), described by
/// `what`: the bounds are the constants the input rules check.
fn bounded_integer(min: i64, max: i64, what: String) -> Schema {
    nullable(
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(min))
            .maximum(Some(max))
            .description(Some(what))
            .into(),
    )
}

/// A request's `ttl`.
pub(crate) fn ttl() -> Schema {
    bounded_integer(
        TTL_MIN,
        TTL_MAX,
        format!("Token lifetime in seconds (default {TTL_DEFAULT})."),
    )
}

/// A request's `uses`.
pub(crate) fn uses() -> Schema {
    bounded_integer(
        USES_MIN,
        USES_MAX,
        format!("How many times the token may be used (default {USES_DEFAULT})."),
    )
}

/// A list's `?page=`.
pub(crate) fn page() -> Schema {
    bounded_integer(1, super::PAGE_MAX, "Page number, from 1.".into())
}

/// A list's `?limit=`.
pub(crate) fn limit() -> Schema {
    bounded_integer(
        1,
        super::LIMIT_MAX,
        format!("Items per page (default {}).", super::LIMIT_DEFAULT),
    )
}

/// `?wait=` on a request's read.
pub(crate) fn wait() -> Schema {
    let max = i64::try_from(super::MAX_WAIT_SECS).unwrap_or(i64::MAX);
    bounded_integer(
        0,
        max,
        "Seconds to wait while the request is pending.".into(),
    )
}

/// An approval's `ttl`.
pub(crate) fn shorter_ttl() -> Schema {
    bounded_integer(
        TTL_MIN,
        TTL_MAX,
        "A shorter token lifetime, in seconds (at most what was asked).".into(),
    )
}

/// An approval's `uses`.
pub(crate) fn fewer_uses() -> Schema {
    bounded_integer(
        USES_MIN,
        USES_MAX,
        "Fewer uses (at most what was asked).".into(),
    )
}

/// An instant, RFC 3339 in UTC with milliseconds.
pub(crate) fn timestamp() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

fn limits_text() -> String {
    format!(
        "A JSON object of at most {JSON_BYTES_MAX} bytes, nesting at most {JSON_DEPTH_MAX} levels, \
         with at most {JSON_KEYS_MAX} keys per object."
    )
}

fn object(description: String) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .max_properties(Some(JSON_KEYS_MAX))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
}

/// Free-form JSON from an agent (`context`, `actionDetails`), within the input limits.
pub(crate) fn json_object() -> Schema {
    object(limits_text()).into()
}

/// The same, or `null` (an optional field).
pub(crate) fn nullable_json_object() -> Schema {
    nullable(json_object())
}

/// Scope keys: plain identifiers (`scope::check_key`).
const SCOPE_KEY: &str = "^[A-Za-z0-9_]+$";
/// A key that is no convention, as `scope::classify` reads it (the only kind allowed in a list).
const PLAIN_KEY: &str = "^(?!max_|min_|allowed_|blocked_)(?!.*_pattern$)[A-Za-z0-9_]+$";
/// Keys of a request's exact details, at every depth (`domain::request::unclear_key`).
const DETAIL_KEY: &str = "^[A-Za-z0-9_-]{1,64}$";
/// The component a nested object of a scope refers to.
pub(crate) const SCOPE_LEVEL: &str = "ScopeLevel";
/// The component a value inside a scope's list refers to.
pub(crate) const SCOPE_INERT: &str = "ScopeInert";

/// The conventional keys of one scope level and the shape of their values, one pattern per kind
/// in `scope::classify`'s order (so no key matches two of them); `top` allows `max_uses`.
fn conventions(top: bool) -> serde_json::Value {
    let list = json!({ "type": "array", "items": { "type": ["string", "number", "boolean"] } });
    let max_uses = if top {
        json!({ "type": "integer", "minimum": 1, "maximum": u32::MAX })
    } else {
        json!(false)
    };
    json!({
        "^max_uses$": max_uses,
        "^max_.+_count$": { "type": "integer", "minimum": 0 },
        "^max_(?!uses$)(?!.+_count$).+$": { "type": "number", "minimum": 0 },
        "^min_.+$": { "type": "number" },
        "^allowed_.+$": list,
        "^blocked_.+$": list,
        "^(?!max_|min_|allowed_|blocked_).+_pattern$": { "type": "string", "format": "regex" },
        "^(max|min|allowed|blocked)_$": false,
        "^_pattern$": false,
    })
}

/// What a key that is no convention may hold: a scalar, a list of inert values, or a nested
/// scope level.
fn other_value() -> serde_json::Value {
    json!({ "anyOf": [
        { "type": ["string", "number", "boolean", "null"] },
        { "type": "array", "items": { "$ref": format!("#/components/schemas/{SCOPE_INERT}") } },
        { "$ref": format!("#/components/schemas/{SCOPE_LEVEL}") },
    ]})
}

/// One level of a scope. The parts utoipa's types cannot say (`propertyNames`,
/// `patternProperties`, an `anyOf` of additional properties) go in as extensions, written as is.
fn level(top: bool, description: Option<String>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(description)
        .max_properties(Some(JSON_KEYS_MAX))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("propertyNames", json!({ "pattern": SCOPE_KEY }))
                .add("patternProperties", conventions(top))
                .add("additionalProperties", other_value())
                .build(),
        ))
        .into()
}

/// A scope: JSON whose keys are identifiers at every level and whose conventional keys have the
/// right shape wherever they are (`scope::validate`).
pub(crate) fn scope() -> Schema {
    let description = format!(
        "{} Keys are plain identifiers (ASCII letters, digits, _). Conventional keys are enforced \
         when the token is used with actionDetails, at every level (a nested object checks the \
         same object of the details): `max_uses` caps uses, `max_<field>` / `min_<field>` bound \
         a number, `max_<field>_count` caps a list's length, `allowed_<field>` / \
         `blocked_<field>` list allowed or blocked values, `<field>_pattern` is a regex the field \
         must match. Other keys are passed on to the protected service (docs/scopes.md).",
        limits_text()
    );
    level(true, Some(description))
}

/// The component a value inside a request's exact `actionDetails` refers to.
pub(crate) const EXACT_VALUE: &str = "ExactValue";

/// A request's exact `actionDetails` (exact binding): free-form JSON, within the input limits.
/// Its numbers, as the schema says them, are ones every reader keeps exactly: a 64-bit integer,
/// or a number below 2^53 in magnitude. The server also takes any float by its shortest
/// spelling, one of 2^53 or more as the whole number it holds (`crate::number`).
pub(crate) fn nullable_exact_details() -> Schema {
    nullable(
        object(limits_text())
            .additional_properties(None::<AdditionalProperties<Schema>>)
            .extensions(Some(
                ExtensionsBuilder::new()
                    .add(
                        "additionalProperties",
                        json!({ "$ref": format!("#/components/schemas/{EXACT_VALUE}") }),
                    )
                    .add("propertyNames", json!({ "pattern": DETAIL_KEY }))
                    .build(),
            ))
            .into(),
    )
}

/// [`EXACT_VALUE`]: any JSON value whose numbers are exact (see [`nullable_exact_details`]).
fn exact_value() -> Schema {
    let me = || Ref::from_schema_name(EXACT_VALUE);
    let raw = |v: serde_json::Value| {
        let mut b = ExtensionsBuilder::new();
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m {
                b = b.add(k, v);
            }
        }
        b.build()
    };
    let other = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::String,
        Type::Boolean,
        Type::Null,
    ]));
    let integer = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .extensions(Some(raw(
            json!({ "minimum": i64::MIN, "maximum": u64::MAX }),
        )));
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .extensions(Some(raw(json!({
            "exclusiveMinimum": -9_007_199_254_740_992_i64,
            "exclusiveMaximum": 9_007_199_254_740_992_i64,
        }))));
    let list = ArrayBuilder::new().items(me());
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(me().into())))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("propertyNames", json!({ "pattern": DETAIL_KEY }))
                .build(),
        ));
    AnyOfBuilder::new()
        .item(other)
        .item(integer)
        .item(number)
        .item(list)
        .item(object)
        .into()
}

/// The components [`scope`] and [`nullable_exact_details`] refer to: a nested scope level, a
/// value inside a scope's list (where no key may be a convention, which could not be enforced
/// there), and an exact value.
pub(crate) fn scope_components() -> [(&'static str, Schema); 3] {
    let inert_ref = || Ref::from_schema_name(SCOPE_INERT);
    let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter([
        Type::String,
        Type::Number,
        Type::Boolean,
        Type::Null,
    ]));
    let list = ArrayBuilder::new().items(inert_ref());
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(JSON_KEYS_MAX))
        .additional_properties(Some(AdditionalProperties::RefOr(inert_ref().into())))
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("propertyNames", json!({ "pattern": PLAIN_KEY }))
                .build(),
        ));
    let inert = AnyOfBuilder::new().item(scalar).item(list).item(object);
    [
        (SCOPE_LEVEL, level(false, None)),
        (SCOPE_INERT, inert.into()),
        (EXACT_VALUE, exact_value()),
    ]
}

/// The same, or `null` (an optional field).
pub(crate) fn nullable_scope() -> Schema {
    nullable(scope())
}

/// Instants are RFC 3339 strings in UTC with milliseconds (see [`timestamp`]).
impl utoipa::PartialSchema for crate::clock::Timestamp {
    fn schema() -> utoipa::openapi::RefOr<Schema> {
        timestamp().into()
    }
}

impl utoipa::ToSchema for crate::clock::Timestamp {}
