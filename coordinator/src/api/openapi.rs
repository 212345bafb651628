//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use super::{admin, consumers, members, reads};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Runnel coordinator API",
        description = "Consumer groups: REST Proxy v2 consumer instances, KIP-848 style member heartbeats and commits, group administration. Every broker relays these routes to the coordinator owning the group."
    ),
    paths(
        members::heartbeat,
        members::commit,
        members::committed,
        members::lookup,
        consumers::create,
        consumers::remove,
        consumers::subscribe,
        consumers::subscription,
        consumers::unsubscribe,
        consumers::assign,
        consumers::assignments,
        reads::records,
        consumers::commit,
        consumers::committed,
        consumers::seek,
        consumers::seek_beginning,
        consumers::seek_end,
        admin::local_groups,
        admin::list_groups,
        admin::describe,
        admin::consumers,
        admin::lags,
        admin::reset_offsets,
        admin::delete_group,
    ),
    components(schemas(runnel_common::error::ErrorBody))
)]
pub struct ApiDoc;

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation documents its error body.
    #[test]
    fn every_operation_documents_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializes");
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 15);
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("operation map") {
                let responses = op["responses"].as_object().expect("responses");
                let has_error = responses
                    .keys()
                    .any(|code| code.starts_with('4') || code.starts_with('5'));
                assert!(has_error, "{method} {path} documents no error response");
            }
        }
    }
}
