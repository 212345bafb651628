//! Broker configuration: flags, `RUNNEL_*` environment variables, and a JSON file named by
//! `--config` (flags win over the environment, which wins over the file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use runnel_common::telemetry::LogFormat;

use crate::log::LogConfig;
use crate::log::batch::TimestampType;

/// `runnel-broker`: stores partition logs and serves the produce, fetch and admin HTTP API.
#[derive(Debug, Clone, Parser)]
#[command(name = "runnel-broker", version)]
pub struct BrokerConfig {
    /// This broker's id, unique in the cluster.
    #[arg(long = "id", env = "RUNNEL_BROKER_ID")]
    pub broker_id: u32,
    /// Address to listen on.
    #[arg(long, env = "RUNNEL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Base URL other brokers and clients reach this broker at (default: http://<listen>).
    #[arg(long, env = "RUNNEL_ADVERTISED_URL")]
    pub advertised_url: Option<String>,
    /// Directory holding this broker's partition logs.
    #[arg(long, env = "RUNNEL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// etcd endpoints, comma-separated.
    #[arg(
        long,
        env = "RUNNEL_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of every etcd key of this cluster (several clusters can share one etcd).
    #[arg(long, env = "RUNNEL_ETCD_PREFIX", default_value = "/runnel")]
    pub etcd_prefix: String,
    /// Rack of this broker, used to spread replicas.
    #[arg(long, env = "RUNNEL_RACK")]
    pub rack: Option<String>,
    /// Seconds the broker's registration lives without renewal: how long a dead broker takes
    /// to be noticed, and so most of a leader failover. Renewed every third of it.
    #[arg(long, env = "RUNNEL_LEASE_TTL_SECS", default_value_t = 3)]
    pub lease_ttl_secs: u64,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "RUNNEL_MAX_REQUEST_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Partitions of a topic created without `partitions_count`.
    #[arg(long, env = "RUNNEL_NUM_PARTITIONS", default_value_t = 1)]
    pub num_partitions: u32,
    /// Default `segment.bytes`.
    #[arg(long, env = "RUNNEL_LOG_SEGMENT_BYTES", default_value_t = 1 << 30)]
    pub log_segment_bytes: u64,
    /// Default `segment.ms`.
    #[arg(long, env = "RUNNEL_LOG_ROLL_MS", default_value_t = 7 * 24 * 3_600_000)]
    pub log_roll_ms: i64,
    /// Default `retention.ms` (-1: keep forever).
    #[arg(long, env = "RUNNEL_LOG_RETENTION_MS", default_value_t = 7 * 24 * 3_600_000, allow_negative_numbers = true)]
    pub log_retention_ms: i64,
    /// Default `retention.bytes` per partition (-1: no limit).
    #[arg(long, env = "RUNNEL_LOG_RETENTION_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub log_retention_bytes: i64,
    /// How often retention runs, in milliseconds.
    #[arg(
        long,
        env = "RUNNEL_LOG_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub log_retention_check_interval_ms: u64,
    /// Milliseconds the log cleaner waits between passes over the compacted partitions.
    #[arg(long, env = "RUNNEL_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000)]
    pub log_cleaner_backoff_ms: u64,
    /// Default `max.message.bytes`.
    #[arg(long, env = "RUNNEL_MESSAGE_MAX_BYTES", default_value_t = 1_048_588)]
    pub message_max_bytes: u64,
    /// Default `message.timestamp.type`: CreateTime or LogAppendTime.
    #[arg(
        long,
        env = "RUNNEL_LOG_MESSAGE_TIMESTAMP_TYPE",
        default_value = "CreateTime"
    )]
    pub log_message_timestamp_type: String,
    /// Default `flush.messages`: fsync once this many records are unflushed (1: before every
    /// acknowledgement). Unset: only the interval flushes.
    #[arg(long, env = "RUNNEL_LOG_FLUSH_INTERVAL_MESSAGES")]
    pub log_flush_interval_messages: Option<u64>,
    /// Default `flush.ms`: fsync data older than this.
    #[arg(long, env = "RUNNEL_LOG_FLUSH_INTERVAL_MS", default_value_t = 1000)]
    pub log_flush_interval_ms: i64,
    /// Default `index.interval.bytes`.
    #[arg(long, env = "RUNNEL_LOG_INDEX_INTERVAL_BYTES", default_value_t = 4096)]
    pub log_index_interval_bytes: u64,
    /// Replication factor of a topic created without `replication_factor`.
    #[arg(long, env = "RUNNEL_DEFAULT_REPLICATION_FACTOR", default_value_t = 1)]
    pub default_replication_factor: u32,
    /// A follower not caught up with its leader for this long leaves the in-sync set.
    #[arg(long, env = "RUNNEL_REPLICA_LAG_TIME_MAX_MS", default_value_t = 10_000)]
    pub replica_lag_time_max_ms: u64,
    /// Most bytes a follower fetches at once.
    #[arg(long, env = "RUNNEL_REPLICA_FETCH_MAX_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub replica_fetch_max_bytes: usize,
    /// How long a follower's fetch waits at the leader's log end for new records.
    #[arg(long, env = "RUNNEL_REPLICA_FETCH_WAIT_MAX_MS", default_value_t = 500)]
    pub replica_fetch_wait_max_ms: u64,
    /// How long an `acks=all` produce waits for the in-sync replicas before failing with 50305.
    #[arg(long, env = "RUNNEL_REPLICA_ACK_TIMEOUT_MS", default_value_t = 30_000)]
    pub replica_ack_timeout_ms: u64,
    /// Move leadership back to preferred replicas automatically once they are in sync.
    #[arg(long, env = "RUNNEL_AUTO_LEADER_REBALANCE_ENABLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_leader_rebalance_enable: bool,
    /// How often the controller runs automatic preferred-leader election.
    #[arg(
        long,
        env = "RUNNEL_LEADER_IMBALANCE_CHECK_INTERVAL_MS",
        default_value_t = 30_000
    )]
    pub leader_imbalance_check_interval_ms: u64,
    /// Log output format.
    #[arg(long, env = "RUNNEL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl BrokerConfig {
    pub fn advertised_url(&self) -> String {
        self.advertised_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs.max(2))
    }

    /// The broker-wide defaults of topic configs.
    ///
    /// # Errors
    /// A message when a default is invalid.
    pub fn log_defaults(&self) -> Result<LogConfig, String> {
        let timestamp_type = match self.log_message_timestamp_type.as_str() {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => {
                return Err(format!(
                    "--log-message-timestamp-type must be CreateTime or LogAppendTime, not {other:?}"
                ));
            }
        };
        if !(14..=i32::MAX as u64).contains(&self.log_segment_bytes) {
            return Err("--log-segment-bytes must be in [14, 2147483647]".into());
        }
        Ok(LogConfig {
            segment_bytes: self.log_segment_bytes,
            segment_ms: self.log_roll_ms.max(1),
            retention_ms: self.log_retention_ms,
            retention_bytes: self.log_retention_bytes,
            max_message_bytes: self.message_max_bytes,
            timestamp_type,
            flush_messages: self.log_flush_interval_messages.unwrap_or(u64::MAX).max(1),
            flush_ms: self.log_flush_interval_ms.max(0),
            index_interval_bytes: self.log_index_interval_bytes,
            cleaner_backoff_ms: self.log_cleaner_backoff_ms,
            ..LogConfig::default()
        })
    }
}
