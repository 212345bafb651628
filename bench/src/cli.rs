//! Command line of `runnel-bench`: the subcommands, their flags, and the
//! parsers for flag values (durations, `name=value` pairs, broker URLs).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator for Runnel brokers, in the spirit of
/// kafka-producer-perf-test and kafka-consumer-perf-test.
#[derive(Debug, Parser)]
#[command(name = "runnel-bench", version, about)]
pub struct Cli {
    /// What to load.
    #[command(subcommand)]
    pub command: Command,
}

/// The load modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Produce records as fast as the broker takes them.
    Produce(ProduceArgs),
    /// Read pages of records at random offsets of random partitions.
    Consume(ConsumeArgs),
    /// Plain GET load on one path: the request-rate ceiling of the broker.
    Get(GetArgs),
    /// Leader failover: SIGKILL the leader of a replicated partition under
    /// acks=all load, again and again, and time how long producers stall;
    /// then check every acknowledged record.
    Failover(FailoverArgs),
    /// Consumer groups: join and takeover times, offset commits, REST consumer instances.
    Groups(GroupsArgs),
}

impl Command {
    /// The flags every load mode shares (`None` for `failover`).
    pub fn run_args(&self) -> Option<&RunArgs> {
        match self {
            Command::Produce(a) => Some(&a.run),
            Command::Consume(a) => Some(&a.run),
            Command::Get(a) => Some(&a.run),
            Command::Groups(g) => match &g.command {
                GroupsCommand::Commit(a) => Some(&a.run),
                GroupsCommand::Join(_)
                | GroupsCommand::Failover(_)
                | GroupsCommand::RestConsume(_) => None,
            },
            Command::Failover(_) => None,
        }
    }
}

/// Flags shared by every mode: where to send, how hard, for how long.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Broker base URLs, comma-separated; workers are spread over them.
    /// Default: the first entry of $RUNNEL_BROKERS, else http://127.0.0.1:8080.
    #[arg(long)]
    pub url: Option<String>,
    /// Connections, i.e. requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Measured seconds (fractions allowed). Default 10 unless a count
    /// limit (--records, --pages, --requests) is given, which then ends the run.
    #[arg(long, value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    pub warmup: Duration,
    /// Per-request timeout in milliseconds (a timed-out request is an error).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the final summary as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Topic selection shared by `produce` and `consume`.
#[derive(Debug, Clone, Args)]
pub struct TopicArgs {
    /// Topic to load.
    #[arg(long, default_value = "bench")]
    pub topic: String,
    /// Partition count: created with this many, and the partitions
    /// 0..N-1 that produce round-robins over and consume reads from.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
}

/// Flags of `runnel-bench produce`.
#[derive(Debug, Clone, Args)]
pub struct ProduceArgs {
    /// Shared load flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Topic selection.
    #[command(flatten)]
    pub topic: TopicArgs,
    /// Topic config applied at creation, as name=value (repeatable).
    #[arg(long = "topic-config", value_parser = parse_pair)]
    pub topic_config: Vec<(String, String)>,
    /// Replication factor used when creating the topic.
    #[arg(long, default_value_t = 1)]
    pub replication_factor: i16,
    /// Delete and re-create the topic if it exists.
    #[arg(long, conflicts_with = "no_create")]
    pub recreate: bool,
    /// Do not touch the admin API (for servers without one, e.g. runnel-baseline).
    #[arg(long)]
    pub no_create: bool,
    /// Bytes per record value: the value is a JSON string whose serialized
    /// form (quotes included) is exactly this long.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..))]
    pub record_size: u32,
    /// Records per request (forced to 1 with --form v3).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Acknowledgement level asked of the broker (ndjson and v2 forms).
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Total measured records; the run ends when they are sent.
    #[arg(long)]
    pub records: Option<u64>,
    /// Request form.
    #[arg(long, value_enum, default_value_t = Form::Ndjson)]
    pub form: Form,
    /// Give each record a random key and no partition, so the broker's
    /// murmur2 partitioner picks it. Default: every request names one
    /// partition, round-robin over the partitions.
    #[arg(long)]
    pub keyed: bool,
    /// Send each request straight to its partition's leader (learned once, at the start,
    /// from the partition endpoints), as a Kafka client does, instead of to the `--url`
    /// brokers in turn (which forward to the leader: one extra hop for most requests when
    /// there are several brokers). Not with `--keyed`.
    #[arg(long, conflicts_with = "keyed")]
    pub direct: bool,
}

/// Flags of `runnel-bench consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// Shared load flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Topic selection.
    #[command(flatten)]
    pub topic: TopicArgs,
    /// Total measured page reads; the run ends when they are done.
    #[arg(long)]
    pub pages: Option<u64>,
    /// Records asked for per read (max_records).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_records: u32,
    /// max_bytes asked for per read.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_bytes: u64,
    /// How much of each answer the client decodes: `records` parses the JSON and every
    /// record's value (what an application does; MB/s counts value bytes); `count` reads the
    /// whole body without decoding it and takes the record count from the broker's
    /// `x-runnel-record-count` header (the broker's side alone, as the producer bench sends
    /// pre-built bodies; MB/s counts response bytes). On a shared machine the client's
    /// decoding competes with the broker for the same cores.
    #[arg(long, value_enum, default_value = "records")]
    pub decode: Decode,
}

/// Client-side decoding of read answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Decode {
    Records,
    Count,
}

/// Flags of `runnel-bench get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// Shared load flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Path to GET on every broker URL.
    #[arg(long, default_value = "/healthz")]
    pub path: String,
    /// Total measured requests; the run ends when they are done.
    #[arg(long)]
    pub requests: Option<u64>,
}

/// Flags of `runnel-bench failover`.
#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// Directory of a running cluster started by `scripts/cluster up` (its
    /// `cluster.env` is read; `runnel-cluster kill/start` act on it).
    #[arg(long)]
    pub dir: PathBuf,
    /// Leader kills (rounds).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub kills: u32,
    /// Topic: created with 1 partition, replication factor 3 and
    /// min.insync.replicas=2, or reused if it exists.
    #[arg(long, default_value = "failover")]
    pub topic: String,
    /// Concurrent producers (one request in flight each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub producers: u16,
    /// Records per produce request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Bytes per record value (a JSON string carrying a unique id, padded).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(32..))]
    pub record_size: u32,
    /// Milliseconds of load with a full in-sync set before each kill.
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
    /// Up to this many more milliseconds (uniformly random) before each kill, so that kills
    /// fall at random points of the brokers' lease keep-alive cycle instead of in step with it.
    #[arg(long, default_value_t = 1000)]
    pub kill_jitter_ms: u64,
    /// Per-request timeout in milliseconds (a timed-out request is an error).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Print the final report as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `runnel-bench groups`: the consumer-group benchmarks. All of them talk only to the broker
/// URLs given, which relay group requests to the coordinator owning the group.
#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// Which measurement.
    #[command(subcommand)]
    pub command: GroupsCommand,
}

/// The consumer-group measurements.
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Time from a member joining a group (one member already in it) to its first heartbeat
    /// answer with a non-empty assignment, over repeated joins.
    Join(JoinArgs),
    /// Time from a member's last heartbeat (it then falls silent) to the first heartbeat
    /// answer that gives the other member all partitions, over repeated deaths.
    Failover(TakeoverArgs),
    /// Offset commits per second by concurrent workers for a group without members.
    Commit(CommitArgs),
    /// Read a topic through REST consumer instances (`/consumers/...`), records/s and poll
    /// latency.
    RestConsume(RestConsumeArgs),
}

/// Where the group benchmarks send and which topic their groups subscribe to.
#[derive(Debug, Clone, Args)]
pub struct GroupTarget {
    /// Broker base URL (the first is used). Default: the first entry of $RUNNEL_BROKERS,
    /// else http://127.0.0.1:8080.
    #[arg(long)]
    pub url: Option<String>,
    /// Topic the groups use: created with --partitions partitions if missing.
    #[arg(long, default_value = "bench-groups")]
    pub topic: String,
    /// Partition count of the topic when created (an existing topic keeps its count).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Group id (default: `bench-<mode>-<random>`, a fresh group per run).
    #[arg(long)]
    pub group: Option<String>,
    /// Per-request timeout in milliseconds (a timed-out request is an error).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// How the simulated members heartbeat.
#[derive(Debug, Clone, Args)]
pub struct MemberArgs {
    /// Milliseconds between a member's heartbeats (from one send to the next). A member
    /// heartbeats at this interval or at the coordinator's `heartbeat_interval_ms`, whichever
    /// is shorter.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub heartbeat_ms: u64,
    /// Session timeout every member asks for when it joins (`session_timeout_ms`; the
    /// coordinator accepts 1000..=3600000).
    #[arg(long, default_value_t = 3000)]
    pub session_timeout_ms: u64,
    /// Heartbeat again at once after an answer that took partitions away (the revocation is
    /// acknowledged without waiting for the next interval, as Kafka's consumer does after its
    /// revocation callback). Default: only at the interval.
    #[arg(long)]
    pub ack_at_once: bool,
    /// Rounds (joins or deaths) to measure.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Bound on one round, in milliseconds; a round that takes longer fails the run.
    #[arg(long, default_value_t = 30_000)]
    pub round_timeout_ms: u64,
    /// Print the report as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `runnel-bench groups join`.
#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// Cluster, topic and group.
    #[command(flatten)]
    pub target: GroupTarget,
    /// Members' behaviour and rounds.
    #[command(flatten)]
    pub member: MemberArgs,
}

/// Flags of `runnel-bench groups failover`.
#[derive(Debug, Clone, Args)]
pub struct TakeoverArgs {
    /// Cluster, topic and group.
    #[command(flatten)]
    pub target: GroupTarget,
    /// Members' behaviour and rounds.
    #[command(flatten)]
    pub member: MemberArgs,
}

/// Flags of `runnel-bench groups commit`.
#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Shared load flags (`--url`: the broker URLs, workers spread over them).
    #[command(flatten)]
    pub run: RunArgs,
    /// Topic whose partitions are committed: created with --partitions if missing.
    #[arg(long, default_value = "bench-groups")]
    pub topic: String,
    /// Partition count of the topic when created; commits go to partitions 0..N-1.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Group id (default: `bench-commit-<random>`); it must have no members.
    #[arg(long)]
    pub group: Option<String>,
    /// Partition offsets per commit request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub offsets_per_commit: u32,
    /// Total measured commit requests; the run ends when they are done.
    #[arg(long)]
    pub commits: Option<u64>,
}

/// Flags of `runnel-bench groups rest-consume`.
#[derive(Debug, Clone, Args)]
pub struct RestConsumeArgs {
    /// Cluster, topic and group.
    #[command(flatten)]
    pub target: GroupTarget,
    /// Make sure the topic holds at least this many records first, producing the missing
    /// ones (batches of 1000 values of --record-size bytes); 0 only reads what is there.
    #[arg(long, default_value_t = 1_000_000)]
    pub preload: u64,
    /// Bytes per preloaded record value (as `produce --record-size`).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..))]
    pub record_size: u32,
    /// REST instances in the group, each polling with one request in flight. All subscribe
    /// before the first poll, so the partitions are shared once, without rebalancing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub instances: u16,
    /// `max_bytes` of each poll (the coordinator splits it over the instance's partitions).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_bytes: u64,
    /// `timeout` of each poll in milliseconds (how long it may wait for records).
    #[arg(long, default_value_t = 1000)]
    pub poll_timeout_ms: u64,
    /// Bound on the read, in seconds (fractions allowed): it stops when every record stored
    /// at the start was read, or after this long.
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub duration: Duration,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the final summary as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Producer acknowledgement level, sent as `?acks=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Acks {
    /// No acknowledgement.
    #[value(name = "0")]
    None,
    /// Leader only.
    #[value(name = "1")]
    Leader,
    /// All in-sync replicas.
    #[value(name = "all")]
    All,
}

impl Acks {
    /// The value of the `acks` query parameter.
    pub fn as_query(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Produce request form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Form {
    /// `POST /topics/{t}`, application/x-ndjson, one record per line.
    Ndjson,
    /// `POST /topics/{t}`, application/vnd.kafka.json.v2+json.
    V2,
    /// `POST /v3/clusters/{c}/topics/{t}/records`, one record per request.
    V3,
}

impl Form {
    /// The name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            Form::Ndjson => "ndjson",
            Form::V2 => "v2",
            Form::V3 => "v3",
        }
    }
}

/// The broker base URLs to load: `--url` (all entries), else the first
/// entry of `$RUNNEL_BROKERS`, else `http://127.0.0.1:8080`. Entries without
/// a scheme get `http://`; trailing slashes are dropped.
pub fn broker_urls(arg: Option<&str>) -> Result<Vec<String>, String> {
    let list: Vec<String> = match arg {
        Some(s) => split_urls(s),
        None => match std::env::var("RUNNEL_BROKERS") {
            Ok(s) => split_urls(&s).into_iter().take(1).collect(),
            Err(_) => vec!["http://127.0.0.1:8080".to_owned()],
        },
    };
    if list.is_empty() {
        return Err("no broker URL given (--url or $RUNNEL_BROKERS)".to_owned());
    }
    Ok(list)
}

fn split_urls(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            let u = u.trim_end_matches('/');
            if u.contains("://") {
                u.to_owned()
            } else {
                format!("http://{u}")
            }
        })
        .collect()
}

/// Parses seconds, fractions allowed (`2`, `0.5`).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Parses `name=value`.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?}: expected name=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised() {
        let got = broker_urls(Some("127.0.0.1:1, http://h:2/ ,")).unwrap();
        assert_eq!(got, ["http://127.0.0.1:1", "http://h:2"]);
    }

    #[test]
    fn pairs_and_secs() {
        assert_eq!(parse_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_pair("=x").is_err());
        assert_eq!(parse_secs("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_secs("-1").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
