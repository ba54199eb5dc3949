//! Hand-written OpenAPI schemas for what the derive cannot say by itself: constant booleans, the
//! error codes, and the limits that `domain::request` and `scope` enforce on free-form JSON. Each
//! reads its numbers from the constant the server checks, so the document follows the code.

use serde_json::json;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{KnownFormat, SchemaFormat};

use super::permissions::MAX_TOKEN_CHARS;
use crate::agents::NAME_MAX_CHARS;
use crate::domain::request::{
    ACTION_MAX_CHARS, JSON_BYTES_MAX, JSON_DEPTH_MAX, JSON_KEYS_MAX, NOTE_MAX_CHARS,
    RESOURCE_MAX_CHARS,
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

/// `action`: a dotted name, 1–255 ASCII letters, digits and `._:-`.
pub fn action() -> Schema {
    text(1, ACTION_MAX_CHARS, "^[A-Za-z0-9._:-]+$".to_owned())
}

/// `resource`: up to 1024 characters, none of them hidden; or `null`. (Paths and URLs are also
/// normalised, and one whose `..` climbs above its root is refused.)
pub fn resource() -> Schema {
    nullable(text(0, RESOURCE_MAX_CHARS, format!("^{SHOWN_CHAR}*$")))
}

/// A human's note or reason: up to 1000 characters, no control characters but tab and newline;
/// or `null`.
pub fn note() -> Schema {
    nullable(text(0, NOTE_MAX_CHARS, format!("^{TEXT_CHAR}*$")))
}

/// An agent name.
pub fn agent_name() -> Schema {
    let pattern = format!("^[A-Za-z0-9._-]{{1,{NAME_MAX_CHARS}}}$");
    text(1, NAME_MAX_CHARS, pattern)
}

/// A permission token as presented (real ones are `otp_` and 40 more characters).
pub fn token() -> Schema {
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
pub fn always_true() -> Schema {
    constant(true)
}

/// `false`, always.
pub fn always_false() -> Schema {
    constant(false)
}

/// One of the envelope's error codes.
pub fn error_code() -> Schema {
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
pub fn status_denied() -> Schema {
    fixed("denied")
}

/// `"approved"`.
pub fn status_approved() -> Schema {
    fixed("approved")
}

/// `"pending"`.
pub fn status_pending() -> Schema {
    fixed("pending")
}

/// An instant, RFC 3339 in UTC with milliseconds.
pub fn timestamp() -> Schema {
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
pub fn json_object() -> Schema {
    object(limits_text()).into()
}

/// The same, or `null` (an optional field).
pub fn nullable_json_object() -> Schema {
    nullable(json_object())
}

/// A scope: free-form JSON whose conventional keys must have the right shape.
pub fn scope() -> Schema {
    let scalar = json!({ "type": ["string", "number", "boolean"] });
    let list = json!({ "type": "array", "items": scalar });
    let pattern_properties = json!({
        "^max_uses$": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
        "^max_.": { "type": "number", "minimum": 0 },
        "^max_$": false,
        "^allowed_.": list,
        "^allowed_$": false,
        "^blocked_.": list,
        "^blocked_$": false,
        ".+_pattern$": { "type": "string", "format": "regex" },
        "^_pattern$": false,
    });
    let description = format!(
        "{} Conventional keys are enforced when the token is used: `max_uses` caps uses, \
         `max_<field>` caps a number, `allowed_<field>` / `blocked_<field>` list allowed or \
         blocked values, `<field>_pattern` is a regex the field must match. Other keys pass \
         through to `verify`.",
        limits_text()
    );
    object(description)
        .extensions(Some(
            ExtensionsBuilder::new()
                .add("patternProperties", pattern_properties)
                .build(),
        ))
        .into()
}

/// The same, or `null` (an optional field).
pub fn nullable_scope() -> Schema {
    nullable(scope())
}
