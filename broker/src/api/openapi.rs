//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use super::model::*;
use super::{admin, internal, ops, produce, records};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Runnel broker API",
        description = "Topics, produce and read over HTTP/JSON, shaped like Confluent REST Proxy."
    ),
    paths(
        admin::list_clusters,
        admin::get_cluster,
        admin::list_brokers,
        admin::list_topics,
        admin::list_topic_names,
        admin::create_topic,
        admin::get_topic,
        admin::delete_topic,
        admin::list_partitions,
        admin::get_partition,
        admin::list_configs,
        admin::get_config,
        admin::set_config,
        admin::reset_config,
        admin::alter_configs,
        produce::produce_v3,
        produce::produce_v2,
        records::read_records,
        records::list_offsets,
        records::v2_offsets,
        internal::append_batch,
        internal::replicate,
        internal::epoch_end,
        internal::elect_preferred,
        admin::update_topic,
        admin::elect_preferred_leaders,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(
        runnel_common::error::ErrorBody,
        BatchProduceResponse,
        BatchPartitionResult
    ))
)]
pub struct ApiDoc;

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation that can fail documents its error body.
    #[test]
    fn every_fallible_operation_documents_errors() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializes");
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 20);
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("operation map") {
                // These cannot fail.
                if ["/healthz", "/metrics", "/topics", "/v3/clusters"].contains(&path.as_str()) {
                    continue;
                }
                let responses = op["responses"].as_object().expect("responses");
                let has_error = responses
                    .keys()
                    .any(|code| code.starts_with('4') || code.starts_with('5'));
                assert!(has_error, "{method} {path} documents no error response");
            }
        }
    }
}
