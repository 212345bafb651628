//! The broker's error type and its mapping onto the shared code table.

use axum::response::{IntoResponse, Response};
use runnel_common::error::{ApiError, ErrorCode};
use runnel_common::meta::MetaError;

use crate::log::LogError;

/// Everything a broker request can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    MalformedRequest(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("topic '{0}' not found")]
    TopicNotFound(String),
    #[error("partition {partition} of topic '{topic}' not found")]
    PartitionNotFound { topic: String, partition: i64 },
    #[error("cluster '{0}' not found")]
    ClusterNotFound(String),
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported content type {found:?}; expected one of: {expected}")]
    UnsupportedMediaType { found: String, expected: String },
    #[error("broker {broker_id} is not the leader of {topic}-{partition}; the leader is {leader}")]
    NotLeader {
        broker_id: u32,
        topic: String,
        partition: u32,
        leader: String,
    },
    #[error("broker {broker_id} is not the controller; the controller is {controller}")]
    NotController { broker_id: u32, controller: String },
    #[error("record of {size} bytes exceeds max.message.bytes ({limit})")]
    RecordTooLarge { size: usize, limit: u64 },
    #[error(
        "offset {requested} is out of range for {topic}-{partition}: valid offsets are [{log_start}, {log_end}]"
    )]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid config '{name}': {reason}")]
    InvalidConfig { name: String, reason: String },
    #[error("storage failure: {0}")]
    Storage(String),
    #[error("metadata store unavailable: {0}")]
    MetadataUnavailable(String),
    #[error("partition {topic}-{partition} has no available leader")]
    LeaderNotAvailable { topic: String, partition: u32 },
    #[error("broker is not ready: {0}")]
    NotReady(String),
    #[error(
        "{topic}-{partition} has {isr} in-sync replicas, fewer than min.insync.replicas ({min_insync})"
    )]
    NotEnoughReplicas {
        topic: String,
        partition: u32,
        isr: usize,
        min_insync: usize,
    },
    #[error("{topic}-{partition}: {reason}; the write may or may not become committed")]
    NotEnoughReplicasAfterAppend {
        topic: String,
        partition: u32,
        reason: String,
    },
    #[error("topic '{topic}' is compacted: every record needs a key")]
    RecordKeyRequired { topic: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl BrokerError {
    /// The shared code of this error. Exhaustive on purpose: a new variant must choose.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MalformedRequest(_) => ErrorCode::MalformedRequest,
            Self::InvalidParameter(_) => ErrorCode::InvalidParameter,
            Self::TopicNotFound(_) => ErrorCode::TopicNotFound,
            Self::PartitionNotFound { .. } => ErrorCode::PartitionNotFound,
            Self::ClusterNotFound(_) => ErrorCode::ClusterNotFound,
            Self::TopicAlreadyExists(_) => ErrorCode::TopicAlreadyExists,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::NotLeader { .. } | Self::NotController { .. } => ErrorCode::NotLeader,
            Self::RecordTooLarge { .. } => ErrorCode::RecordTooLarge,
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidConfig { .. } => ErrorCode::InvalidConfig,
            Self::Storage(_) => ErrorCode::Storage,
            Self::MetadataUnavailable(_) => ErrorCode::MetadataUnavailable,
            Self::LeaderNotAvailable { .. } => ErrorCode::LeaderNotAvailable,
            Self::NotReady(_) => ErrorCode::NotReady,
            Self::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            Self::NotEnoughReplicasAfterAppend { .. } => ErrorCode::NotEnoughReplicasAfterAppend,
            Self::RecordKeyRequired { .. } => ErrorCode::RecordKeyRequired,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The error as sent: 5xx details are logged here and replaced by a generic message.
    pub fn to_api(&self) -> ApiError {
        let code = self.code();
        let message = match code {
            ErrorCode::Internal | ErrorCode::Storage => {
                tracing::error!(error = %self, "request failed");
                match code {
                    ErrorCode::Storage => "the broker could not read or write its log".to_string(),
                    _ => "internal error; see the broker log".to_string(),
                }
            }
            _ => self.to_string(),
        };
        ApiError::new(code, message)
    }
}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}

impl From<MetaError> for BrokerError {
    fn from(error: MetaError) -> Self {
        match error {
            MetaError::Unavailable(reason) => Self::MetadataUnavailable(reason),
            MetaError::Conflict { key } => {
                Self::MetadataUnavailable(format!("concurrent change to {key}; retry"))
            }
            MetaError::Corrupt { key, reason } => {
                Self::Internal(format!("corrupt metadata at {key}: {reason}"))
            }
        }
    }
}

impl From<std::io::Error> for BrokerError {
    fn from(error: std::io::Error) -> Self {
        Self::Storage(error.to_string())
    }
}

impl BrokerError {
    /// Maps a log error for `topic`-`partition`.
    pub fn from_log(topic: &str, partition: u32, error: LogError) -> Self {
        match error {
            LogError::OffsetOutOfRange {
                requested,
                log_start,
                log_end,
            } => Self::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                requested,
                log_start,
                log_end,
            },
            LogError::InvalidBatch(e) => Self::Storage(format!("{topic}-{partition}: {e}")),
            LogError::Io(e) => Self::Storage(format!("{topic}-{partition}: {e}")),
        }
    }
}
