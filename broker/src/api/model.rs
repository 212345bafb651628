//! JSON shapes of the client API, as in Confluent REST Proxy v3/v2 where it has one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterList {
    pub kind: &'static str,
    pub data: Vec<ClusterData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterData {
    pub kind: &'static str,
    pub cluster_id: String,
    /// The broker currently elected controller; null during an election.
    pub controller_id: Option<u32>,
    pub brokers: Vec<BrokerData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerList {
    pub kind: &'static str,
    pub data: Vec<BrokerData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrokerData {
    pub broker_id: u32,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// A `{name, value}` config pair as REST Proxy takes them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicRequest {
    pub topic_name: String,
    /// Defaults to the broker's `--num-partitions`.
    pub partitions_count: Option<i64>,
    /// Defaults to 1.
    pub replication_factor: Option<i64>,
    #[serde(default)]
    pub configs: Vec<ConfigEntry>,
}

/// `PATCH` body of a topic: grow its partition count (partitions can only be added).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTopicRequest {
    pub partitions_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicData {
    pub kind: &'static str,
    pub cluster_id: String,
    pub topic_name: String,
    pub topic_id: String,
    pub is_internal: bool,
    pub partitions_count: u32,
    pub replication_factor: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicList {
    pub kind: &'static str,
    pub data: Vec<TopicData>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartitionData {
    pub kind: String,
    pub cluster_id: String,
    pub topic_name: String,
    pub partition_id: u32,
    /// Broker id of the leader; null while there is none.
    pub leader_id: Option<u32>,
    pub leader_epoch: u32,
    pub replicas: Vec<u32>,
    /// In-sync replicas.
    pub isr: Vec<u32>,
    /// First offset still in the log.
    pub earliest_offset: Option<i64>,
    /// Offset after the last record readers can see (the high watermark).
    pub latest_offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartitionList {
    pub kind: &'static str,
    pub data: Vec<PartitionData>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicConfigData {
    pub kind: &'static str,
    pub cluster_id: String,
    pub topic_name: String,
    pub name: String,
    pub value: String,
    pub is_default: bool,
    pub is_read_only: bool,
    pub is_sensitive: bool,
    /// `DYNAMIC_TOPIC_CONFIG` for a topic override, `DEFAULT_CONFIG` otherwise.
    pub source: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicConfigList {
    pub kind: &'static str,
    pub data: Vec<TopicConfigData>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetConfigRequest {
    pub value: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigsRequest {
    pub data: Vec<AlterConfigEntry>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlterConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// `SET` (default) or `DELETE`.
    pub operation: Option<String>,
}

/// Key or value of a v3 record: `{"type": "JSON"|"STRING"|"BINARY", "data": ...}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct V3Data {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct V3Header {
    pub name: String,
    /// Base64; null for a null header value.
    pub value: Option<String>,
}

/// One record to produce (v3). Send several concatenated to stream them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct V3ProduceRecord {
    pub partition_id: Option<i64>,
    pub key: Option<V3Data>,
    pub value: Option<V3Data>,
    pub headers: Option<Vec<V3Header>>,
    /// Milliseconds since the epoch, or an RFC 3339 string.
    #[schema(value_type = Object)]
    pub timestamp: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct V3SizeType {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: usize,
}

/// The answer for one produced record (v3).
#[derive(Debug, Serialize, ToSchema)]
pub struct V3ProduceResult {
    pub error_code: u32,
    pub cluster_id: String,
    pub topic_name: String,
    pub partition_id: u32,
    pub offset: i64,
    /// RFC 3339.
    pub timestamp: String,
    pub key: Option<V3SizeType>,
    pub value: Option<V3SizeType>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct V2ProduceRecord {
    #[schema(value_type = Object)]
    pub key: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub value: Option<serde_json::Value>,
    pub partition: Option<i64>,
}

/// v2 produce body: `Content-Type: application/vnd.kafka.json.v2+json` (or `application/json`,
/// or `application/vnd.kafka.binary.v2+json` for base64 keys and values). With
/// `Content-Type: application/x-ndjson` the body is instead one `V2ProduceRecord` per line.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct V2ProduceRequest {
    pub records: Vec<V2ProduceRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct V2Offset {
    pub partition: Option<u32>,
    pub offset: Option<i64>,
    pub error_code: Option<u32>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct V2ProduceResponse {
    pub key_schema_id: Option<i64>,
    pub value_schema_id: Option<i64>,
    pub offsets: Vec<V2Offset>,
}

/// The answer to an NDJSON batch: one entry per partition written.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchProduceResponse {
    pub partitions: Vec<BatchPartitionResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchPartitionResult {
    pub partition: u32,
    pub base_offset: Option<i64>,
    pub last_offset: Option<i64>,
    pub record_count: usize,
    pub error_code: Option<u32>,
    pub message: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OffsetsData {
    pub cluster_id: String,
    pub topic_name: String,
    pub partition_id: u32,
    pub earliest_offset: i64,
    pub latest_offset: i64,
    pub log_end_offset: i64,
    /// With `?timestamp=`: the first record at or after it; null when every record is older.
    pub offset_for_timestamp: Option<TimestampOffset>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct V2Offsets {
    pub beginning_offset: i64,
    pub end_offset: i64,
}

/// A page of records read from one partition.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsPage {
    pub cluster_id: String,
    pub topic_name: String,
    pub partition_id: u32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Where the next read should start.
    pub next_offset: i64,
    pub records: Vec<ReadRecord>,
}

/// One record as read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadRecord {
    pub offset: i64,
    pub timestamp: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub timestamp_type: String,
    pub key: Option<V3Data>,
    pub value: Option<V3Data>,
    pub headers: Vec<V3Header>,
}

/// The answer of the internal append endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}
