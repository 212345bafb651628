//! Coordinator configuration: flags, `RUNNEL_*` environment variables, and a JSON file named
//! by `--config` (flags win over the environment, which wins over the file).

use std::net::SocketAddr;

use clap::Parser;
use runnel_common::telemetry::LogFormat;

/// `runnel-coordinator`: consumer groups, server-side assignment, committed offsets and the
/// REST consumer-instance API.
#[derive(Debug, Clone, Parser)]
#[command(name = "runnel-coordinator", version)]
pub struct CoordinatorConfig {
    /// This coordinator's id, unique among coordinators.
    #[arg(long = "id", env = "RUNNEL_COORDINATOR_ID")]
    pub coordinator_id: u32,
    /// Address to listen on.
    #[arg(long, env = "RUNNEL_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Base URL brokers and clients reach this coordinator at (default: http://<listen>).
    #[arg(long, env = "RUNNEL_ADVERTISED_URL")]
    pub advertised_url: Option<String>,
    /// etcd endpoints, comma-separated.
    #[arg(
        long,
        env = "RUNNEL_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of every etcd key of this cluster.
    #[arg(long, env = "RUNNEL_ETCD_PREFIX", default_value = "/runnel")]
    pub etcd_prefix: String,
    /// Seconds the registration (and every shard it owns) lives without renewal: how long a
    /// dead coordinator's groups wait before a standby takes them over.
    #[arg(long, env = "RUNNEL_LEASE_TTL_SECS", default_value_t = 3)]
    pub lease_ttl_secs: u64,
    /// Partitions of `__consumer_offsets`, i.e. group shards. Read from the topic when it
    /// exists; used only to create it.
    #[arg(long, env = "RUNNEL_OFFSETS_TOPIC_PARTITIONS", default_value_t = 16)]
    pub offsets_topic_partitions: u32,
    /// Replication factor of `__consumer_offsets` (capped at the live brokers when created).
    #[arg(
        long,
        env = "RUNNEL_OFFSETS_TOPIC_REPLICATION_FACTOR",
        default_value_t = 3
    )]
    pub offsets_topic_replication_factor: u32,
    /// Session timeout of a member that does not ask for another (Kafka's
    /// `group.consumer.session.timeout.ms`).
    #[arg(
        long,
        env = "RUNNEL_GROUP_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    pub session_timeout_ms: u64,
    /// How often members are asked to heartbeat.
    #[arg(
        long,
        env = "RUNNEL_GROUP_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000
    )]
    pub heartbeat_interval_ms: u64,
    /// How long a member may take to give up revoked partitions before it is fenced.
    #[arg(
        long,
        env = "RUNNEL_GROUP_REBALANCE_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    pub rebalance_timeout_ms: u64,
    /// Assignor of groups that do not name one: `sticky`, `uniform` or `range`.
    #[arg(long, env = "RUNNEL_GROUP_ASSIGNOR", default_value = "sticky")]
    pub default_assignor: String,
    /// How long a REST consumer instance lives without requests (REST Proxy's
    /// `consumer.instance.timeout.ms`).
    #[arg(
        long,
        env = "RUNNEL_CONSUMER_INSTANCE_TIMEOUT_MS",
        default_value_t = 300_000
    )]
    pub instance_timeout_ms: u64,
    /// Most bytes one REST records request returns when it does not say.
    #[arg(long, env = "RUNNEL_CONSUMER_REQUEST_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub request_max_bytes: u64,
    /// Longest wait of a REST records request when it does not say.
    #[arg(
        long,
        env = "RUNNEL_CONSUMER_REQUEST_TIMEOUT_MS",
        default_value_t = 1_000
    )]
    pub request_timeout_ms: u64,
    /// Log output: `text` or `json`.
    #[arg(long, env = "RUNNEL_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl CoordinatorConfig {
    pub fn advertised_url(&self) -> String {
        self.advertised_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}
