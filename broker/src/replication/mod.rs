//! Replication: turning partition states from the metadata into replica roles, the follower
//! fetch loop, and the leader's in-sync set maintenance.
//!
//! Followers pull from their leader over HTTP (`/internal/v1/.../replicate`, record batches as
//! raw bytes), naming their replica id and the leader epoch they follow. The leader counts each
//! fetch offset as that follower's log end, advances the high watermark to what every in-sync
//! replica holds, and shrinks or expands the in-sync set through compare-and-swap writes to
//! etcd. A replica that starts following first truncates to the new leader's epoch boundary.

pub mod follower;
pub mod progress;

use std::sync::Arc;
use std::time::Duration;

use runnel_common::meta::{ClusterView, LeaseClock, MetaStore, PartitionState};
use runnel_common::time::now_ms;

use crate::storage::Flusher;
use crate::storage::partition::{Assignment, Partition, Role};

/// Replication settings.
#[derive(Debug, Clone)]
pub struct ReplicationSettings {
    /// A follower not caught up for this long leaves the in-sync set.
    pub lag_max: Duration,
    /// Most bytes one follower fetch returns.
    pub fetch_max_bytes: usize,
    /// How long a follower fetch waits at the leader's log end.
    pub fetch_wait: Duration,
    /// How long `acks=all` waits for the in-sync replicas.
    pub ack_timeout: Duration,
}

/// What replication needs from the rest of the broker. Shared by every partition.
pub struct Replicator {
    pub broker_id: u32,
    pub settings: ReplicationSettings,
    pub meta: Arc<MetaStore>,
    pub lease: Arc<LeaseClock>,
    pub http: reqwest::Client,
    pub flusher: Flusher,
}

impl Replicator {
    /// Whether this broker's lease is certainly alive (see [`LeaseClock`]).
    pub fn lease_valid(&self) -> bool {
        self.lease.is_valid()
    }

    /// Brings `partition`'s role in line with `state` (read at `revision`).
    pub async fn apply(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        state: &PartitionState,
        revision: i64,
        min_insync: usize,
        view: &ClusterView,
    ) {
        let next = Assignment {
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            replicas: state.replicas.clone(),
            isr: state.isr.clone(),
            revision,
        };
        let current = partition.assignment();
        if let Some(current) = &current
            && current.revision > revision
        {
            // This replica already wrote something newer (an in-sync set change).
            return;
        }
        let same_epoch = current
            .as_ref()
            .is_some_and(|c| c.leader == next.leader && c.leader_epoch == next.leader_epoch);
        match state.leader {
            Some(leader) if leader == self.broker_id => {
                if same_epoch && partition.role() == Role::Leader {
                    partition.update_assignment(next, min_insync, self.lease_valid());
                    return;
                }
                // Becoming leader is leadership-sensitive: confirm it with a linearizable read.
                match self
                    .meta
                    .partition_state(&partition.topic, partition.partition)
                    .await
                {
                    Ok(Some((fresh, fresh_revision)))
                        if fresh.leader == Some(self.broker_id)
                            && fresh.leader_epoch == next.leader_epoch =>
                    {
                        let confirmed = Assignment {
                            isr: fresh.isr,
                            revision: fresh_revision,
                            ..next
                        };
                        let epoch = confirmed.leader_epoch;
                        match partition.become_leader(confirmed, min_insync, now_ms()) {
                            Ok(()) => {
                                tracing::info!(topic = %partition.topic, partition = partition.partition, epoch, "became leader")
                            }
                            Err(error) => {
                                tracing::error!(topic = %partition.topic, partition = partition.partition, %error, "cannot start leader epoch")
                            }
                        }
                    }
                    Ok(_) => {
                        tracing::debug!(topic = %partition.topic, partition = partition.partition, "leadership already moved on")
                    }
                    Err(error) => {
                        tracing::warn!(topic = %partition.topic, partition = partition.partition, %error, "cannot confirm leadership; will retry")
                    }
                }
            }
            Some(leader) => {
                if same_epoch && partition.role() == Role::Follower {
                    partition.update_assignment(next, min_insync, false);
                    return;
                }
                let Some(url) = view.brokers.get(&leader).map(|b| b.url.clone()) else {
                    // The leader is not registered (yet): wait for the metadata to change.
                    partition.go_offline(Some(next));
                    return;
                };
                let epoch = next.leader_epoch;
                let task = tokio::spawn(follower::follow(
                    self.clone(),
                    partition.clone(),
                    leader,
                    url,
                    epoch,
                ));
                partition.become_follower(next, task);
                tracing::info!(topic = %partition.topic, partition = partition.partition, leader, epoch, "following");
            }
            None => partition.go_offline(Some(next)),
        }
    }

    /// Writes in-sync set changes that lag calls for, for every partition this broker leads.
    pub async fn maintain_isr(&self, partitions: &[Arc<Partition>]) {
        if !self.lease_valid() {
            return;
        }
        let lag_max_ms = self.settings.lag_max.as_millis() as i64;
        for partition in partitions {
            let Some((assignment, isr)) = partition.isr_change(now_ms(), lag_max_ms) else {
                continue;
            };
            let state = PartitionState {
                leader: assignment.leader,
                leader_epoch: assignment.leader_epoch,
                replicas: assignment.replicas.clone(),
                isr: isr.clone(),
            };
            // The compare on the revision this leader acted on folds in the leadership check:
            // if anyone changed the partition since, the write fails and nothing changes here.
            match self
                .meta
                .update_partition(
                    &partition.topic,
                    partition.partition,
                    &state,
                    assignment.revision,
                    None,
                )
                .await
            {
                Ok(revision) => {
                    tracing::info!(topic = %partition.topic, partition = partition.partition, from = ?assignment.isr, to = ?isr, "in-sync set changed");
                    partition.update_isr(isr, revision, self.lease_valid());
                }
                Err(error) => {
                    tracing::debug!(topic = %partition.topic, partition = partition.partition, %error, "in-sync set change lost a race")
                }
            }
        }
    }
}
