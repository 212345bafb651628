//! What every handler shares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_common::http::Readiness;
use runnel_common::meta::{ClusterView, MetaStore, MetadataCache, TopicView};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::metrics::Metrics;
use crate::storage::{Partition, Storage};

/// Shared handler state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<BrokerConfig>,
    pub cluster_id: Arc<str>,
    pub meta: Arc<MetaStore>,
    /// Wakes this broker's controller loop (it acts only if this broker is the controller).
    pub controller: crate::controller::ControllerTrigger,
    pub cache: MetadataCache,
    pub storage: Arc<Storage>,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    /// The metadata revision the local replicas were last reconciled with.
    pub reconciled: watch::Receiver<i64>,
    /// Next partition per topic for records without key or partition (sticky round-robin).
    pub sticky: Arc<Mutex<HashMap<String, u32>>>,
    pub http: reqwest::Client,
}

/// Where a partition's requests are served.
pub enum Leadership {
    /// This broker leads it and hosts its log.
    Local(Arc<Partition>),
    /// Another broker leads it, at this base URL.
    Remote { leader_id: u32, url: String },
}

impl AppState {
    pub fn broker_id(&self) -> u32 {
        self.config.broker_id
    }

    /// Fails unless `cluster_id` is this cluster's.
    ///
    /// # Errors
    /// [`BrokerError::ClusterNotFound`].
    pub fn check_cluster(&self, cluster_id: &str) -> Result<(), BrokerError> {
        if cluster_id == &*self.cluster_id {
            Ok(())
        } else {
            Err(BrokerError::ClusterNotFound(cluster_id.to_string()))
        }
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.cache.view()
    }

    /// The topic as last seen.
    ///
    /// # Errors
    /// [`BrokerError::TopicNotFound`].
    pub fn topic(&self, view: &ClusterView, name: &str) -> Result<TopicView, BrokerError> {
        view.topics
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::TopicNotFound(name.to_string()))
    }

    /// Validates a partition id against the topic.
    ///
    /// # Errors
    /// [`BrokerError::PartitionNotFound`] for ids outside `[0, partitions)`.
    pub fn partition_id(
        &self,
        topic: &TopicView,
        name: &str,
        partition: i64,
    ) -> Result<u32, BrokerError> {
        if partition >= 0 && partition < i64::from(topic.record.partitions) {
            Ok(partition as u32)
        } else {
            Err(BrokerError::PartitionNotFound {
                topic: name.to_string(),
                partition,
            })
        }
    }

    /// Who serves `topic`-`partition`.
    ///
    /// # Errors
    /// [`BrokerError::LeaderNotAvailable`] when there is no live leader or the leader's log is
    /// not open yet.
    pub fn leadership(
        &self,
        view: &ClusterView,
        topic: &TopicView,
        name: &str,
        partition: u32,
    ) -> Result<Leadership, BrokerError> {
        let unavailable = || BrokerError::LeaderNotAvailable {
            topic: name.to_string(),
            partition,
        };
        let state = topic.partitions.get(&partition).ok_or_else(unavailable)?;
        let leader = state.leader.ok_or_else(unavailable)?;
        if leader == self.broker_id() {
            let local = self.storage.get(name, partition).ok_or_else(unavailable)?;
            // Serve only once the replica has taken up this leadership (epoch started, lease
            // confirmed): until then the partition is briefly unavailable, never served stale.
            let leading = local.role() == crate::storage::partition::Role::Leader
                && local
                    .assignment()
                    .is_some_and(|a| a.leader_epoch == state.leader_epoch);
            if local.topic_id != topic.record.topic_id || !leading {
                return Err(unavailable());
            }
            return Ok(Leadership::Local(local));
        }
        let registration = view.brokers.get(&leader).ok_or_else(unavailable)?;
        Ok(Leadership::Remote {
            leader_id: leader,
            url: registration.url.clone(),
        })
    }

    /// Waits (at most 10 s) until this broker's cached metadata and its local replicas reflect
    /// etcd revision `revision` (a write this broker just made), so a request that follows
    /// sees its effect here.
    pub async fn wait_applied(&self, revision: i64) {
        let limit = Duration::from_secs(10);
        self.cache.wait_for_revision(revision, limit).await;
        let mut rx = self.reconciled.clone();
        let _ = tokio::time::timeout(limit, rx.wait_for(|seen| *seen >= revision)).await;
    }

    /// The error for a request about a partition that `leader_id` at `url` leads.
    pub fn not_leader(
        &self,
        topic: &str,
        partition: u32,
        leader_id: u32,
        url: &str,
    ) -> BrokerError {
        BrokerError::NotLeader {
            broker_id: self.broker_id(),
            topic: topic.to_string(),
            partition,
            leader: format!("broker {leader_id} at {url}"),
        }
    }
}
