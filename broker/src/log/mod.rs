//! Partition logs on disk: the record batch codec, segments with their indexes, the
//! segmented log with recovery, rolling, retention and truncation, and compaction.
//!
//! Architecture invariant: nothing here knows about HTTP, etcd or topics' metadata; callers
//! hand in a [`LogConfig`] and bytes.

pub mod batch;
pub mod compact;
pub mod config;
pub mod epochs;
pub mod index;
pub mod partition_log;
pub mod segment;

pub use config::LogConfig;
pub use partition_log::{AppendInfo, LogError, PartitionLog, RecoveryReport};
