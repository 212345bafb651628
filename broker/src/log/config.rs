//! The effective settings of one partition log (topic overrides over broker defaults).

use super::batch::TimestampType;

/// How a partition log behaves. Built by `topic_config` from the topic's configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when the active one would pass this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll when the active segment's first batch is this old (`segment.ms`).
    pub segment_ms: i64,
    /// Delete rolled segments whose newest record is older than this; -1 keeps forever
    /// (`retention.ms`).
    pub retention_ms: i64,
    /// Delete the oldest rolled segments while the log is larger than this; -1 for no limit
    /// (`retention.bytes`).
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
        }
    }
}
