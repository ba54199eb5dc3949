//! The response envelope: `{"success":true,"data":…[,"meta":…]}` or
//! `{"success":false,"error":{"code","message","details"}}`. The types here are also the
//! envelope's OpenAPI schemas, so the document describes exactly what is sent.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::wire::schema;

/// A success: `data` is the answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Success<T> {
    /// Always `true`.
    #[schema(schema_with = schema::always_true)]
    pub success: bool,
    pub data: T,
}

/// A success carrying one page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Page<T> {
    /// Always `true`.
    #[schema(schema_with = schema::always_true)]
    pub success: bool,
    pub data: Vec<T>,
    pub meta: PageMeta,
}

/// Where a page sits in its list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageMeta {
    /// This page, from 1.
    pub page: i64,
    /// Items per page.
    pub limit: i64,
    /// Items in the whole list.
    pub total: i64,
    /// Pages in the whole list (0 when it is empty).
    pub total_pages: i64,
}

/// A failure: no `data`, only `error`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Failure<'a> {
    /// Always `false`.
    #[schema(schema_with = schema::always_false)]
    pub success: bool,
    pub error: ErrorBody<'a>,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// A stable machine code.
    #[schema(schema_with = schema::error_code)]
    pub code: &'a str,
    /// A sentence for a human.
    pub message: &'a str,
    /// For `VALIDATION_ERROR`: each bad field (or `body`, `query`) with its problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, String>>)]
    pub details: Option<&'a Map<String, Value>>,
}
