//! Appending to a partition this broker leads, with the producer's `acks`: the local append
//! (stamped with the leader epoch the request was routed by), then durability as the topic's
//! `flush.messages` asks, then, for `acks=all`, the in-sync replicas' confirmation.

use std::sync::Arc;

use super::AppState;
use crate::error::BrokerError;
use crate::log::AppendInfo;
use crate::storage::partition::{AckWaitError, LeaderAppendError, Partition};

/// How many replicas must have a write before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: answered after the leader's append (HTTP always answers).
    None,
    /// `acks=1`: the leader's append.
    Leader,
    /// `acks=all` (or `-1`, the default): every in-sync replica, at least
    /// `min.insync.replicas` of them.
    All,
}

impl Acks {
    /// Parses the `acks` query parameter.
    ///
    /// # Errors
    /// [`BrokerError::InvalidParameter`] for anything but `0`, `1`, `all`, `-1`.
    pub fn parse(value: Option<&str>) -> Result<Self, BrokerError> {
        match value {
            None | Some("all" | "-1") => Ok(Self::All),
            Some("1") => Ok(Self::Leader),
            Some("0") => Ok(Self::None),
            Some(other) => Err(BrokerError::InvalidParameter(format!(
                "acks must be 0, 1, all or -1, not {other:?}"
            ))),
        }
    }

    pub fn as_query(self) -> &'static str {
        match self {
            Self::None => "0",
            Self::Leader => "1",
            Self::All => "all",
        }
    }
}

/// Appends `batch` as leader of `epoch`.
///
/// # Errors
/// `LeaderNotAvailable` while this broker is not (yet, or any more) leader at that epoch or its
/// lease may have expired; `NotEnoughReplicas` for `acks=all` with too few in sync; storage
/// errors.
pub fn append_local(
    state: &AppState,
    local: &Partition,
    epoch: u32,
    batch: &mut [u8],
    acks: Acks,
    now_ms: i64,
) -> Result<AppendInfo, BrokerError> {
    let (topic, partition) = (&local.topic, local.partition);
    if !state.storage.replicator().lease_valid() {
        return Err(BrokerError::LeaderNotAvailable {
            topic: topic.clone(),
            partition,
        });
    }
    local
        .append_as_leader(batch, epoch, acks == Acks::All, now_ms)
        .map_err(|error| match error {
            LeaderAppendError::NotLeader => BrokerError::LeaderNotAvailable {
                topic: topic.clone(),
                partition,
            },
            LeaderAppendError::NotEnoughReplicas { isr, min_insync } => {
                BrokerError::NotEnoughReplicas {
                    topic: topic.clone(),
                    partition,
                    isr,
                    min_insync,
                }
            }
            LeaderAppendError::Log(e) => BrokerError::from_log(topic, partition, e),
        })
}

/// Waits until everything appended to `local` up to `last_offset` is as safe as `acks` asks:
/// fsynced when `flush.messages` says so, and for `acks=all` held by every in-sync replica.
///
/// # Errors
/// Storage errors from the fsync; `LeaderNotAvailable` when leadership is lost while waiting;
/// `NotEnoughReplicasAfterAppend` when the replicas do not confirm in time.
pub async fn confirm(
    state: &AppState,
    local: &Arc<Partition>,
    epoch: u32,
    last_offset: i64,
    acks: Acks,
) -> Result<(), BrokerError> {
    state.storage.flush_if_due(local).await?;
    if acks != Acks::All {
        return Ok(());
    }
    let replicator = state.storage.replicator().clone();
    let timeout = replicator.settings.ack_timeout;
    local
        .wait_for_high_watermark(last_offset + 1, epoch, timeout, || replicator.lease_valid())
        .await
        .map_err(|error| match error {
            AckWaitError::LeadershipLost => BrokerError::NotEnoughReplicasAfterAppend {
                topic: local.topic.clone(),
                partition: local.partition,
                reason: "leadership moved before the in-sync replicas confirmed".into(),
            },
            AckWaitError::TimedOut => BrokerError::NotEnoughReplicasAfterAppend {
                topic: local.topic.clone(),
                partition: local.partition,
                reason: format!("the in-sync replicas did not confirm within {timeout:?}"),
            },
        })
}
