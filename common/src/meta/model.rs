//! The values stored in etcd, as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A live broker, kept under its lease: it disappears when the broker stops renewing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub broker_id: u32,
    /// Base URL clients and other brokers use, e.g. `http://10.0.0.5:8080`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Random per process start: a changed incarnation means the broker restarted (and may
    /// have lost unsynced bytes), so the controller takes it out of in-sync sets.
    #[serde(default)]
    pub incarnation: String,
}

/// The elected controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRecord {
    pub broker_id: u32,
}

/// A topic: its shape and its configuration overrides (defaults are the brokers').
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// Distinguishes a re-created topic from an older one of the same name, so a broker never
    /// serves an old incarnation's files for a new topic.
    pub topic_id: String,
    pub partitions: u32,
    pub replication_factor: u32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// Who holds a partition and who leads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub leader: Option<u32>,
    pub leader_epoch: u32,
    pub replicas: Vec<u32>,
    pub isr: Vec<u32>,
}

/// A live coordinator, kept under its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorRegistration {
    pub coordinator_id: u32,
    /// Base URL brokers forward group requests to.
    pub url: String,
}

/// The coordinator that owns a shard of the consumer groups (a partition of
/// `__consumer_offsets`), kept under that coordinator's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOwner {
    pub coordinator_id: u32,
    pub url: String,
}
