//! The etcd key schema. Every key Runnel writes is spelled here and nowhere else.
//!
//! ```text
//! {prefix}/cluster-id                      the cluster's id, written once
//! {prefix}/controller                      {"broker_id"} of the elected controller, under its lease
//! {prefix}/brokers/{id:010}                BrokerRegistration, under the broker's lease
//! {prefix}/topics/{topic}                  TopicRecord
//! {prefix}/partitions/{topic}/{p:010}      PartitionState
//! {prefix}/coordinators/{id:010}           CoordinatorRegistration, under the coordinator's lease
//! {prefix}/coordinator-shards/{s:010}      ShardOwner, under the owning coordinator's lease;
//!                                          its create revision is the shard epoch
//! ```
//! Ids are zero-padded so etcd's byte order is numeric order.

/// Builds and parses keys under one cluster prefix (so tests can share one etcd).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// What a key under the prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    ClusterId,
    Controller,
    Broker(u32),
    Topic(String),
    Partition(String, u32),
    Coordinator(u32),
    Shard(u32),
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// Everything of this cluster.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn cluster_id(&self) -> String {
        format!("{}/cluster-id", self.prefix)
    }

    pub fn controller(&self) -> String {
        format!("{}/controller", self.prefix)
    }

    pub fn broker(&self, id: u32) -> String {
        format!("{}/brokers/{id:010}", self.prefix)
    }

    pub fn topic(&self, topic: &str) -> String {
        format!("{}/topics/{topic}", self.prefix)
    }

    pub fn partition(&self, topic: &str, partition: u32) -> String {
        format!("{}/partitions/{topic}/{partition:010}", self.prefix)
    }

    /// Prefix of every partition of `topic`.
    pub fn partitions_of(&self, topic: &str) -> String {
        format!("{}/partitions/{topic}/", self.prefix)
    }

    pub fn coordinator(&self, id: u32) -> String {
        format!("{}/coordinators/{id:010}", self.prefix)
    }

    pub fn shard(&self, shard: u32) -> String {
        format!("{}/coordinator-shards/{shard:010}", self.prefix)
    }

    /// Classifies a key read back from etcd; `None` for keys this version does not know.
    pub fn parse(&self, key: &str) -> Option<KeyKind> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if rest == "cluster-id" {
            return Some(KeyKind::ClusterId);
        }
        if rest == "controller" {
            return Some(KeyKind::Controller);
        }
        if let Some(id) = rest.strip_prefix("brokers/") {
            return id.parse().ok().map(KeyKind::Broker);
        }
        if let Some(id) = rest.strip_prefix("coordinators/") {
            return id.parse().ok().map(KeyKind::Coordinator);
        }
        if let Some(shard) = rest.strip_prefix("coordinator-shards/") {
            return shard.parse().ok().map(KeyKind::Shard);
        }
        if let Some(topic) = rest.strip_prefix("topics/") {
            return Some(KeyKind::Topic(topic.to_string()));
        }
        if let Some(path) = rest.strip_prefix("partitions/") {
            let (topic, partition) = path.rsplit_once('/')?;
            return Some(KeyKind::Partition(
                topic.to_string(),
                partition.parse().ok()?,
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let keys = Keys::new("/runnel/test/");
        assert_eq!(keys.parse(&keys.cluster_id()), Some(KeyKind::ClusterId));
        assert_eq!(keys.parse(&keys.broker(7)), Some(KeyKind::Broker(7)));
        assert_eq!(keys.parse(&keys.controller()), Some(KeyKind::Controller));
        assert_eq!(
            keys.parse(&keys.topic("a.b-c")),
            Some(KeyKind::Topic("a.b-c".into()))
        );
        assert_eq!(
            keys.parse(&keys.partition("t", 12)),
            Some(KeyKind::Partition("t".into(), 12))
        );
        assert_eq!(
            keys.parse(&keys.coordinator(2)),
            Some(KeyKind::Coordinator(2))
        );
        assert_eq!(keys.parse(&keys.shard(5)), Some(KeyKind::Shard(5)));
        assert_eq!(keys.parse("/other/topics/x"), None);
    }
}
