//! The coordinator's error type and its mapping onto the shared code table.

use axum::response::{IntoResponse, Response};
use runnel_common::error::{ApiError, ErrorCode};
use runnel_common::meta::MetaError;

/// Everything a coordinator request can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoordinatorError {
    #[error("{0}")]
    MalformedRequest(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("cluster '{0}' not found")]
    ClusterNotFound(String),
    #[error("topic '{0}' not found")]
    TopicNotFound(String),
    #[error("partition {partition} of topic '{topic}' not found")]
    PartitionNotFound { topic: String, partition: i64 },
    #[error("consumer group '{0}' not found")]
    GroupNotFound(String),
    #[error("consumer instance '{instance}' not found in group '{group}'")]
    InstanceNotFound { group: String, instance: String },
    #[error("consumer instance '{instance}' already exists in group '{group}'")]
    InstanceExists { group: String, instance: String },
    #[error("member '{member}' is not a member of group '{group}'; rejoin with member_epoch 0")]
    UnknownMember { group: String, member: String },
    #[error(
        "member '{member}' of group '{group}' is fenced: epoch {given} is not its current epoch {current}; rejoin"
    )]
    StaleMemberEpoch {
        group: String,
        member: String,
        given: i32,
        current: i32,
    },
    #[error("{topic}-{partition} is not assigned to '{consumer}'")]
    PartitionNotAssigned {
        consumer: String,
        topic: String,
        partition: u32,
    },
    #[error(
        "group '{group}' is not empty: {members} active consumers (members, or instances reading a manual assignment)"
    )]
    GroupNotEmpty { group: String, members: usize },
    #[error("consumer instance '{instance}' has no subscription or assignment")]
    NoSubscription { instance: String },
    #[error(
        "consumer instance '{instance}' {reason}: subscription and manual assignment are mutually exclusive"
    )]
    SubscriptionConflict {
        instance: String,
        reason: &'static str,
    },
    #[error("this coordinator does not own shard {shard} (group '{group}'); the owner is {owner}")]
    NotCoordinator {
        group: String,
        shard: u32,
        owner: String,
    },
    #[error("no coordinator owns shard {shard} right now; retry")]
    CoordinatorNotAvailable { shard: u32 },
    #[error("{0}")]
    MetadataUnavailable(String),
    #[error("{0}")]
    NotReady(String),
    #[error("{0}")]
    Internal(String),
    /// An error a broker answered with, relayed under its own code.
    #[error("{message}")]
    Broker { code: ErrorCode, message: String },
}

impl CoordinatorError {
    /// The shared code this error is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MalformedRequest(_) => ErrorCode::MalformedRequest,
            Self::InvalidParameter(_) => ErrorCode::InvalidParameter,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::ClusterNotFound(_) => ErrorCode::ClusterNotFound,
            Self::TopicNotFound(_) => ErrorCode::TopicNotFound,
            Self::PartitionNotFound { .. } => ErrorCode::PartitionNotFound,
            Self::GroupNotFound(_) => ErrorCode::GroupNotFound,
            Self::InstanceNotFound { .. } => ErrorCode::ConsumerInstanceNotFound,
            Self::InstanceExists { .. } => ErrorCode::ConsumerInstanceExists,
            Self::UnknownMember { .. } => ErrorCode::UnknownMember,
            Self::StaleMemberEpoch { .. } => ErrorCode::StaleMemberEpoch,
            Self::PartitionNotAssigned { .. } => ErrorCode::PartitionNotAssigned,
            Self::GroupNotEmpty { .. } => ErrorCode::GroupNotEmpty,
            Self::NoSubscription { .. } => ErrorCode::NoSubscription,
            Self::SubscriptionConflict { .. } => ErrorCode::SubscriptionConflict,
            Self::NotCoordinator { .. } => ErrorCode::NotCoordinator,
            Self::CoordinatorNotAvailable { .. } => ErrorCode::CoordinatorNotAvailable,
            Self::MetadataUnavailable(_) => ErrorCode::MetadataUnavailable,
            Self::NotReady(_) => ErrorCode::NotReady,
            Self::Internal(_) => ErrorCode::Internal,
            Self::Broker { code, .. } => *code,
        }
    }

    /// The error as sent: internal details are logged here and replaced by a generic message.
    pub fn to_api(&self) -> ApiError {
        let code = self.code();
        let message = if code == ErrorCode::Internal {
            tracing::error!(error = %self, "request failed");
            "internal error; see the coordinator log".to_string()
        } else {
            self.to_string()
        };
        ApiError::new(code, message)
    }
}

impl IntoResponse for CoordinatorError {
    fn into_response(self) -> Response {
        self.to_api().into_response()
    }
}

impl From<MetaError> for CoordinatorError {
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

/// Maps a broker's JSON error code back onto the shared table (unknown codes are internal).
pub fn code_from_number(number: u32) -> Option<ErrorCode> {
    ErrorCode::ALL
        .into_iter()
        .find(|code| code.code() == number)
}
