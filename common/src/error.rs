//! The error code table shared by every service.
//!
//! Each service keeps its own `thiserror` enum and maps every variant onto an [`ErrorCode`]
//! with an exhaustive `match`. The code decides the HTTP status, the JSON `error_code` clients
//! match on, and whether retrying can help. Codes are stable: a code is never reused for a
//! different meaning; a retired code leaves a gap. Where Confluent REST Proxy has a code for the
//! same condition we use it, so scripts written against it keep working.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Every error a Runnel service can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not valid JSON, or not the JSON shape the endpoint takes.
    MalformedRequest,
    /// A query or path parameter is missing or has the wrong form.
    InvalidParameter,
    /// No route matches the request path.
    RouteNotFound,
    /// The topic does not exist.
    TopicNotFound,
    /// The topic exists but has no such partition.
    PartitionNotFound,
    /// The cluster id in the path is not this cluster's.
    ClusterNotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// A topic with this name already exists.
    TopicAlreadyExists,
    /// The request body is larger than the configured limit.
    PayloadTooLarge,
    /// The request's `Content-Type` is not one the endpoint accepts.
    UnsupportedMediaType,
    /// This broker does not lead the partition; the message names the leader.
    NotLeader,
    /// A record is larger than the topic's `max.message.bytes`.
    RecordTooLarge,
    /// The requested offset is outside the partition's log.
    OffsetOutOfRange,
    /// A value failed validation (topic name, partition count, base64, timestamp, ...).
    InvalidRequest,
    /// A topic config name is unknown or its value is invalid.
    InvalidConfig,
    /// An unexpected failure inside the service; details are logged, not sent.
    Internal,
    /// The local storage failed (disk full, I/O error).
    Storage,
    /// The metadata store (etcd) cannot be reached or answered with an error.
    MetadataUnavailable,
    /// The partition has no live leader right now.
    LeaderNotAvailable,
    /// The service is starting or shutting down.
    NotReady,
    /// Fewer replicas are in sync than `min.insync.replicas`: an `acks=all` write is refused
    /// before it is appended.
    NotEnoughReplicas,
    /// The write was appended by the leader but not confirmed by enough replicas in time; it
    /// may still become committed. Retrying may duplicate it.
    NotEnoughReplicasAfterAppend,
    /// A record without a key sent to a compacted topic (compaction keeps one record per key).
    RecordKeyRequired,
    /// No consumer group by that name exists (it has no members and no committed offsets).
    GroupNotFound,
    /// No consumer instance by that name exists in the group (never created, deleted, or
    /// expired after its idle timeout).
    ConsumerInstanceNotFound,
    /// A consumer instance with that name already exists in the group.
    ConsumerInstanceExists,
    /// The group does not know this member id (expired or never joined): rejoin with epoch 0.
    UnknownMember,
    /// The member's epoch is older than the coordinator's: the member was fenced (its
    /// partitions may belong to another member now) and must rejoin.
    StaleMemberEpoch,
    /// The request names partitions the consumer is not assigned.
    PartitionNotAssigned,
    /// The operation needs an empty group (no active members), as Kafka requires for
    /// resetting offsets and deleting a group.
    GroupNotEmpty,
    /// The consumer instance has neither a subscription nor a manual assignment.
    NoSubscription,
    /// This coordinator does not own the group's shard (it moved); ask the lookup endpoint.
    NotCoordinator,
    /// No coordinator owns the group's shard right now (a takeover is in progress).
    CoordinatorNotAvailable,
    /// A consumer instance asked for a subscription while it reads a manual assignment, or
    /// the other way round: the two are mutually exclusive, as in Kafka.
    SubscriptionConflict,
}

impl ErrorCode {
    /// The HTTP status this code is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MalformedRequest | Self::InvalidParameter => StatusCode::BAD_REQUEST,
            Self::RouteNotFound
            | Self::TopicNotFound
            | Self::PartitionNotFound
            | Self::ClusterNotFound
            | Self::GroupNotFound
            | Self::ConsumerInstanceNotFound
            | Self::UnknownMember => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TopicAlreadyExists
            | Self::ConsumerInstanceExists
            | Self::StaleMemberEpoch
            | Self::PartitionNotAssigned
            | Self::GroupNotEmpty
            | Self::NoSubscription
            | Self::SubscriptionConflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotLeader | Self::NotCoordinator => StatusCode::MISDIRECTED_REQUEST,
            Self::RecordTooLarge
            | Self::OffsetOutOfRange
            | Self::InvalidRequest
            | Self::InvalidConfig
            | Self::RecordKeyRequired => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal | Self::Storage => StatusCode::INTERNAL_SERVER_ERROR,
            Self::MetadataUnavailable
            | Self::LeaderNotAvailable
            | Self::NotReady
            | Self::NotEnoughReplicas
            | Self::NotEnoughReplicasAfterAppend
            | Self::CoordinatorNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON `error_code`: the HTTP status times 100 plus a sub-code, as in REST Proxy.
    pub const fn code(self) -> u32 {
        match self {
            Self::MalformedRequest => 40001,
            Self::InvalidParameter => 40002,
            Self::RouteNotFound => 40400,
            Self::TopicNotFound => 40401,
            Self::PartitionNotFound => 40402,
            Self::ClusterNotFound => 40404,
            Self::MethodNotAllowed => 40500,
            Self::TopicAlreadyExists => 40902,
            Self::PayloadTooLarge => 41301,
            Self::UnsupportedMediaType => 41501,
            Self::NotLeader => 42101,
            Self::RecordTooLarge => 42201,
            Self::OffsetOutOfRange => 42202,
            Self::InvalidRequest => 42205,
            Self::InvalidConfig => 42206,
            Self::Internal => 50001,
            Self::Storage => 50002,
            Self::MetadataUnavailable => 50301,
            Self::LeaderNotAvailable => 50302,
            Self::NotReady => 50303,
            Self::NotEnoughReplicas => 50304,
            Self::NotEnoughReplicasAfterAppend => 50305,
            Self::RecordKeyRequired => 42207,
            Self::GroupNotFound => 40405,
            Self::ConsumerInstanceNotFound => 40403,
            Self::ConsumerInstanceExists => 40901,
            Self::UnknownMember => 40406,
            Self::StaleMemberEpoch => 40903,
            Self::PartitionNotAssigned => 40904,
            Self::GroupNotEmpty => 40905,
            Self::NoSubscription => 40906,
            Self::NotCoordinator => 42102,
            Self::CoordinatorNotAvailable => 50306,
            Self::SubscriptionConflict => 40907,
        }
    }

    /// Whether the same request may succeed if retried later.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            Self::NotLeader
                | Self::MetadataUnavailable
                | Self::LeaderNotAvailable
                | Self::NotReady
                | Self::NotEnoughReplicas
                | Self::NotEnoughReplicasAfterAppend
                | Self::NotCoordinator
                | Self::CoordinatorNotAvailable
        )
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 34] = [
        Self::MalformedRequest,
        Self::InvalidParameter,
        Self::RouteNotFound,
        Self::TopicNotFound,
        Self::PartitionNotFound,
        Self::ClusterNotFound,
        Self::MethodNotAllowed,
        Self::TopicAlreadyExists,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::NotLeader,
        Self::RecordTooLarge,
        Self::OffsetOutOfRange,
        Self::InvalidRequest,
        Self::InvalidConfig,
        Self::Internal,
        Self::Storage,
        Self::MetadataUnavailable,
        Self::LeaderNotAvailable,
        Self::NotReady,
        Self::NotEnoughReplicas,
        Self::NotEnoughReplicasAfterAppend,
        Self::RecordKeyRequired,
        Self::GroupNotFound,
        Self::ConsumerInstanceNotFound,
        Self::ConsumerInstanceExists,
        Self::UnknownMember,
        Self::StaleMemberEpoch,
        Self::PartitionNotAssigned,
        Self::GroupNotEmpty,
        Self::NoSubscription,
        Self::NotCoordinator,
        Self::CoordinatorNotAvailable,
        Self::SubscriptionConflict,
    ];
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable numeric code; clients match on this, never on the message.
    pub error_code: u32,
    /// Human-readable description, lowercase, no trailing period.
    pub message: String,
}

/// An error ready to be sent: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The JSON body for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error_code: self.code.code(),
            message: self.message.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.code())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if self.code.retryable() {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_match_their_status() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.code()), "duplicate code {}", code.code());
            assert_eq!(code.code() / 100, u32::from(code.status().as_u16()));
        }
    }
}
