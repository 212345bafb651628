//! The effective settings of one partition log (topic overrides over broker defaults).

use super::batch::TimestampType;

/// What happens to old data (`cleanup.policy`): deleted by retention, compacted to the latest
/// record per key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Rolled segments are deleted by `retention.ms` / `retention.bytes`.
    pub delete: bool,
    /// The cleaner keeps only the latest record of each key in rolled segments.
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };

    /// Parses Kafka's list form: `delete`, `compact`, or both separated by a comma (any
    /// order). `None` for anything else, including an empty list or a repeated entry.
    pub fn parse(value: &str) -> Option<Self> {
        let mut policy = Self {
            delete: false,
            compact: false,
        };
        for part in value.split(',') {
            let flag = match part.trim() {
                "delete" => &mut policy.delete,
                "compact" => &mut policy.compact,
                _ => return None,
            };
            if *flag {
                return None;
            }
            *flag = true;
        }
        Some(policy)
    }
}

/// How a partition log behaves. Built by `topic_config` from the topic's configs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would pass this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment's first batch is this old (`segment.ms`).
    pub segment_ms: i64,
    /// Delete rolled segments whose newest record is older than this; -1 keeps forever
    /// (`retention.ms`). Only with `cleanup.policy` including `delete`.
    pub retention_ms: i64,
    /// Delete the oldest rolled segments while the log is larger than this; -1 for no limit
    /// (`retention.bytes`). Only with `cleanup.policy` including `delete`.
    pub retention_bytes: i64,
    /// Largest accepted record batch in bytes (`max.message.bytes`).
    pub max_message_bytes: u64,
    /// Whose clock stamps records (`message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// fsync once this many records are unflushed; 1 fsyncs before every acknowledgement
    /// (`flush.messages`).
    pub flush_messages: u64,
    /// fsync data older than this many milliseconds (`flush.ms`).
    pub flush_ms: i64,
    /// Bytes between offset index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Retention, compaction, or both (`cleanup.policy`).
    pub cleanup: CleanupPolicy,
    /// A tombstone (null value) survives cleaning while its timestamp is younger than this
    /// (`delete.retention.ms`); see `log::compact`.
    pub delete_retention_ms: i64,
    /// The cleaner takes a log once this share of its cleanable bytes was written since the
    /// last cleaning (`min.cleanable.dirty.ratio`).
    pub min_cleanable_dirty_ratio: f64,
    /// Segments holding a record younger than this are not cleaned yet
    /// (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// Milliseconds between cleaner passes. Broker-wide (`--log-cleaner-backoff-ms`), carried
    /// here from the broker defaults because they are what storage is started with; no topic
    /// config sets it.
    pub cleaner_backoff_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            flush_messages: u64::MAX,
            flush_ms: 1000,
            index_interval_bytes: 4096,
            cleanup: CleanupPolicy::DELETE,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            cleaner_backoff_ms: 15_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_policies_parse_as_kafka_lists() {
        let both = Some(CleanupPolicy {
            delete: true,
            compact: true,
        });
        assert_eq!(CleanupPolicy::parse("delete"), Some(CleanupPolicy::DELETE));
        assert_eq!(CleanupPolicy::parse("compact,delete"), both);
        assert_eq!(CleanupPolicy::parse("delete, compact"), both);
        assert_eq!(
            CleanupPolicy::parse("compact").map(|p| (p.delete, p.compact)),
            Some((false, true))
        );
        for bad in ["", "bogus", "compact,compact", "delete,", "Compact"] {
            assert_eq!(CleanupPolicy::parse(bad), None, "{bad:?}");
        }
    }
}
