//! `runnel-bench failover`: leader failover under load.
//!
//! Producers write with `acks=all` to partition 0 of a topic with 3 replicas and
//! `min.insync.replicas=2`, through brokers that do not lead it. Each round waits until all 3
//! replicas are in sync, SIGKILLs the leader with `runnel-cluster kill`, and measures the
//! failover time: the earliest answer to a request sent after the kill returned, minus the
//! latest answer received before it. Then the broker is started again. At the end the
//! partition is read back and every acknowledged record must be there exactly once, at the
//! offset its acknowledgement gave.

pub mod cluster;
pub mod producer;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Client;
use serde::Serialize;
use serde_json::json;

use crate::admin::{self, TopicSpec};
use crate::cli::FailoverArgs;
use crate::http;
use cluster::{ClusterEnv, Launcher, PartitionState};
use producer::{Failure, PARTITION, Settings, Shared};
use verify::Verification;

/// Replicas of the topic.
const REPLICAS: usize = 3;
/// Bound on waiting for every replica to be in sync.
const ISR_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the first acknowledgement of a request sent after a kill.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on `runnel-cluster kill` (it waits until the process is gone).
const KILL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on `runnel-cluster start` (it waits until the broker is ready).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on the read-back.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(300);
/// Timeout of admin and state requests.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for answers that arrived just before a measurement to be logged.
const LOG_GRACE: Duration = Duration::from_millis(100);

/// One kill.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: u32,
    /// The killed leader.
    pub leader: u32,
    /// Its leader epoch.
    pub epoch: u32,
    /// Seconds waited for all replicas to be in sync before this kill.
    pub isr_wait_s: f64,
    /// Seconds `runnel-cluster kill` took.
    pub kill_cmd_s: f64,
    /// The failover time in milliseconds.
    pub failover_ms: f64,
    /// Latest answer before `killed`, in ms relative to it (negative).
    pub last_answer_before_ms: f64,
    /// Earliest answer to a request sent after `killed`, in ms relative to it.
    pub first_answer_after_ms: f64,
    /// The leader after the failover, if learned in time.
    pub new_leader: Option<u32>,
    /// When a broker first reported it (polled every 20 ms), in ms after `killed`.
    pub leader_seen_ms: Option<f64>,
    /// Its epoch.
    pub new_epoch: Option<u32>,
    /// Failed requests from the kill command to the first answer after it.
    pub errors: u64,
    /// Seconds `runnel-cluster start` took for the killed broker.
    pub restart_s: f64,
}

/// Times in milliseconds over repeated rounds (nearest rank): failover times over the
/// kills here, group join and takeover times in `groups`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Distribution {
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Distribution {
    /// The distribution of `values` (nearest-rank percentiles); all zero when empty.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Distribution::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Distribution {
            min: v[0],
            p50: rank(0.5),
            p90: rank(0.9),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// Failed requests of one kind in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorKind {
    /// `failover` (kill to the first answer after it), `recovery` (from there until all
    /// replicas are in sync again) or `steady` (any other time).
    pub phase: &'static str,
    /// Short class.
    pub kind: String,
    /// How many.
    pub count: u64,
    /// The first one's whole message.
    pub example: String,
}

/// The outcome of a failover run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Settings.
    pub params: serde_json::Value,
    /// The kills done.
    pub rounds: Vec<Round>,
    /// Kills asked for.
    pub kills_planned: u32,
    /// Failover times over the kills done.
    pub failover_ms: Distribution,
    /// Acknowledged requests.
    pub acked_requests: u64,
    /// Acknowledged records.
    pub acked_records: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by phase.
    pub errors_failover: u64,
    /// Failed requests while the killed broker restarted and caught up.
    pub errors_recovery: u64,
    /// Failed requests at any other time.
    pub errors_steady: u64,
    /// Failed requests by phase and kind.
    pub error_kinds: Vec<ErrorKind>,
    /// Seconds the load ran.
    pub load_s: f64,
    /// The read-back, if it ran.
    pub verification: Option<Verification>,
    /// Why the run stopped early, or what else went wrong.
    pub failure: Option<String>,
}

impl Report {
    /// All kills done, nothing went wrong, and every acknowledged record checked out.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
            && self.rounds.len() == self.kills_planned as usize
            && self
                .verification
                .as_ref()
                .is_some_and(|v| v.violations() == 0)
    }
}

/// Runs `runnel-bench failover` and prints its report; non-zero exit unless [`Report::ok`].
pub async fn main(args: FailoverArgs) -> ExitCode {
    match run(&args).await {
        Ok(report) => {
            if args.json {
                match serde_json::to_string(&report) {
                    Ok(line) => println!("{line}"),
                    Err(e) => eprintln!("runnel-bench failover: cannot render the report: {e}"),
                }
            } else {
                print!("{}", render(&report));
            }
            if let Some(v) = report.verification.as_ref().filter(|v| v.violations() > 0) {
                eprintln!(
                    "runnel-bench failover: VIOLATION: {} of {} acknowledged records are not \
                     readable exactly once at their offset ({} missing, {} duplicated, {} misplaced)",
                    v.violations(),
                    v.acked_records,
                    v.missing,
                    v.duplicated,
                    v.misplaced
                );
                for e in &v.examples {
                    eprintln!("  {e}");
                }
            }
            if let Some(f) = &report.failure {
                eprintln!("runnel-bench failover: FAILED: {f}");
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("runnel-bench failover: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run: setup, load, kills, read-back.
async fn run(args: &FailoverArgs) -> Result<Report, String> {
    let env = ClusterEnv::load(&args.dir)?;
    if env.brokers.len() < REPLICAS {
        return Err(format!(
            "the cluster in {} has {} brokers; failover needs at least {REPLICAS}",
            args.dir.display(),
            env.brokers.len()
        ));
    }
    let launcher = Launcher::beside_current_exe(&args.dir)?;
    let admin_client = http::client(4, ADMIN_TIMEOUT)?;
    setup_topic(&admin_client, &env, &args.topic).await?;

    let shared = Arc::new(Shared::new(env.brokers.clone()));
    let watch = Watch {
        client: admin_client.clone(),
        env: env.clone(),
        topic: args.topic.clone(),
        shared: Arc::clone(&shared),
    };
    let (initial, _) = watch.wait_in_sync(&[], ISR_TIMEOUT).await?;
    let read_from = match initial.latest_offset {
        Some(o) => o,
        None => watch.high_watermark(&[]).await?,
    };
    let settings = Arc::new(Settings {
        topic: args.topic.clone(),
        batch: args.batch_size,
        record_size: args.record_size as usize,
        run_id: producer::new_run_id(),
    });
    eprintln!(
        "topic {}: leader {}, replicas {:?}, in sync {:?}, records from offset {read_from} on; \
         run id {}; {} producers, {} record(s) of {} bytes per request, acks=all",
        args.topic,
        initial.leader_id.unwrap_or(0),
        initial.replicas,
        initial.isr,
        settings.run_id,
        args.producers,
        args.batch_size,
        args.record_size
    );
    shared.set_avoid(&initial.leader_id.into_iter().collect::<Vec<_>>());

    let client = http::client(args.producers, Duration::from_millis(args.timeout_ms))?;
    let load_start = Instant::now();
    let producers: Vec<_> = (0..args.producers)
        .map(|p| {
            tokio::spawn(producer::produce(
                Arc::clone(&shared),
                client.clone(),
                Arc::clone(&settings),
                p,
            ))
        })
        .collect();
    let progress = tokio::spawn(progress(Arc::clone(&shared)));

    let mut rounds = Vec::new();
    let mut windows = Vec::new();
    let mut failure = None;
    for k in 1..=args.kills {
        match one_round(args, &watch, &launcher, k, &mut windows).await {
            Ok(round) => {
                if !args.json {
                    println!("{}", round_line(&round, args.kills));
                } else {
                    eprintln!("{}", round_line(&round, args.kills));
                }
                rounds.push(round);
            }
            Err(e) => {
                failure = Some(format!("round {k}: {e}"));
                break;
            }
        }
    }
    // Let the last restarted broker catch up, so that the end state is the healthy one.
    if failure.is_none() {
        match watch.wait_in_sync(&[], ISR_TIMEOUT).await {
            Ok(_) => {
                if let Some(w) = windows.last_mut() {
                    w.2 = shared.t0.elapsed();
                }
            }
            Err(e) => failure = Some(format!("after the last round: {e}")),
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let load_s = load_start.elapsed().as_secs_f64();
    let join_limit = Duration::from_millis(args.timeout_ms) + Duration::from_secs(5);
    for p in producers {
        if tokio::time::timeout(join_limit, p).await.is_err() {
            failure.get_or_insert_with(|| "a producer did not stop in time".into());
        }
    }
    progress.abort();

    let (acks, failures) = {
        let log = shared.log();
        (log.acks.clone(), log.failures.clone())
    };
    eprintln!(
        "verifying: reading {} partition {PARTITION} from offset {read_from} on",
        args.topic
    );
    let target = verify::ReadBack {
        brokers: &env.brokers,
        cluster_id: &env.cluster_id,
        topic: &args.topic,
        run_id: &settings.run_id,
        read_from,
        deadline: Instant::now() + VERIFY_TIMEOUT,
    };
    let verification = match verify::verify(&admin_client, target, &acks).await {
        Ok(v) => Some(v),
        Err(e) => {
            failure.get_or_insert(format!("read-back failed: {e}"));
            None
        }
    };

    let (phases, error_kinds) = classify(&failures, &windows, shared.t0);
    let failover: Vec<f64> = rounds.iter().map(|r| r.failover_ms).collect();
    Ok(Report {
        params: json!({
            "dir": args.dir.display().to_string(),
            "topic": args.topic,
            "producers": args.producers,
            "batch_size": args.batch_size,
            "record_size": args.record_size,
            "settle_ms": args.settle_ms,
            "kill_jitter_ms": args.kill_jitter_ms,
            "timeout_ms": args.timeout_ms,
            "brokers": env.brokers.iter().map(|b| json!({"id": b.id, "url": b.url})).collect::<Vec<_>>(),
            "run_id": settings.run_id,
        }),
        kills_planned: args.kills,
        failover_ms: Distribution::of(&failover),
        rounds,
        acked_requests: acks.len() as u64,
        acked_records: acks.iter().map(|a| u64::from(a.records)).sum(),
        errors: failures.len() as u64,
        errors_failover: phases[0],
        errors_recovery: phases[1],
        errors_steady: phases[2],
        error_kinds,
        load_s,
        verification,
        failure,
    })
}

/// Creates the topic (1 partition, 3 replicas, min.insync.replicas=2) through the first broker
/// that answers, or reuses it; warns when a reused topic has another min.insync.replicas.
async fn setup_topic(client: &Client, env: &ClusterEnv, topic: &str) -> Result<(), String> {
    let configs = [("min.insync.replicas".to_owned(), "2".to_owned())];
    let spec = TopicSpec {
        name: topic,
        partitions: 1,
        replication_factor: REPLICAS as i16,
        configs: &configs,
    };
    let mut last = String::new();
    for b in &env.brokers {
        match admin::ensure_topic(client, &b.url, &env.cluster_id, &spec, false).await {
            Ok(setup) => {
                eprintln!("topic {topic}: {setup:?}");
                let url = format!(
                    "{}/v3/clusters/{}/topics/{topic}/configs",
                    b.url, env.cluster_id
                );
                if let Ok(body) = http::send(client.get(&url)).await {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let min_isr = v["data"].as_array().and_then(|list| {
                        list.iter()
                            .find(|c| c["name"] == "min.insync.replicas")
                            .and_then(|c| c["value"].as_str().map(str::to_owned))
                    });
                    if min_isr.as_deref() != Some("2") {
                        eprintln!(
                            "warning: topic {topic} has min.insync.replicas={}, not 2",
                            min_isr.as_deref().unwrap_or("?")
                        );
                    }
                }
                return Ok(());
            }
            Err(e) => last = e,
        }
    }
    Err(format!("cannot create topic {topic}: {last}"))
}

/// Looks at the partition through the brokers and steers the producers.
struct Watch {
    client: Client,
    env: ClusterEnv,
    topic: String,
    shared: Arc<Shared>,
}

impl Watch {
    /// The partition as seen by the first broker, not in `down`, that answers.
    async fn state(&self, down: &[u32]) -> Result<PartitionState, String> {
        let mut last = String::from("no broker to ask");
        for b in self.env.brokers.iter().filter(|b| !down.contains(&b.id)) {
            match cluster::partition(
                &self.client,
                &b.url,
                &self.env.cluster_id,
                &self.topic,
                PARTITION,
            )
            .await
            {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Waits (at most `limit`) until a leader is known and all replicas are in sync; returns
    /// the state and the time waited.
    async fn wait_in_sync(
        &self,
        down: &[u32],
        limit: Duration,
    ) -> Result<(PartitionState, Duration), String> {
        let start = Instant::now();
        loop {
            let last = match self.state(down).await {
                Ok(p) if p.fully_in_sync(REPLICAS) => {
                    if p.replicas.len() != REPLICAS {
                        return Err(format!(
                            "topic {} has replicas {:?}, not {REPLICAS}: use another --topic",
                            self.topic, p.replicas
                        ));
                    }
                    return Ok((p, start.elapsed()));
                }
                Ok(p) => format!(
                    "leader {:?}, replicas {:?}, in sync {:?}",
                    p.leader_id, p.replicas, p.isr
                ),
                Err(e) => e,
            };
            if start.elapsed() >= limit {
                return Err(format!(
                    "not all {REPLICAS} replicas in sync after {limit:?}: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The high watermark, asked until a broker knows it (bounded by [`ISR_TIMEOUT`]).
    async fn high_watermark(&self, down: &[u32]) -> Result<i64, String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(hw)) = self.state(down).await.map(|p| p.latest_offset) {
                return Ok(hw);
            }
            if start.elapsed() >= ISR_TIMEOUT {
                return Err("no broker reports the high watermark".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (at most `limit`) for a leader other than `old`; `None` past the limit.
    async fn new_leader(&self, old: u32, limit: Duration) -> Option<PartitionState> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(p) = self.state(&[old]).await
                && p.leader_id.is_some_and(|l| l != old)
            {
                return Some(p);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

/// One kill: wait for a full in-sync set under load, kill the leader, wait for the first
/// acknowledgement of a request sent after the kill, restart the broker. `windows` gets
/// (kill command start, first answer after, end of recovery) as offsets from the shared
/// `t0`; the end of recovery is filled in by the next round's in-sync wait.
async fn one_round(
    args: &FailoverArgs,
    watch: &Watch,
    launcher: &Launcher,
    k: u32,
    windows: &mut Vec<(Duration, Duration, Duration)>,
) -> Result<Round, String> {
    let shared = &watch.shared;
    let t0 = shared.t0;
    let settle = Duration::from_millis(args.settle_ms);
    let wait_start = Instant::now();
    let mut recovery_marked = false;
    // A stable leader with every replica in sync, and producers answered through the others.
    let (state, isr_wait) = loop {
        let left = ISR_TIMEOUT.saturating_sub(wait_start.elapsed());
        let (state, _) = watch.wait_in_sync(&[], left).await?;
        let leader = state.leader_id.unwrap_or(0);
        if let Some(w) = windows.last_mut().filter(|_| !recovery_marked) {
            // The previous round's recovery ends when every replica is back in sync.
            w.2 = t0.elapsed();
            recovery_marked = true;
        }
        let isr_wait = wait_start.elapsed();
        shared.set_avoid(&[leader]);
        let settle_from = Instant::now();
        let jitter = rand::random_range(0..=args.kill_jitter_ms);
        tokio::time::sleep(settle + Duration::from_millis(jitter)).await;
        let again = watch.state(&[]).await?;
        let answered_lately =
            shared.latest_answer.load(Ordering::Relaxed) > shared.stamp(settle_from);
        if again.leader_id == Some(leader) && again.fully_in_sync(REPLICAS) && answered_lately {
            break (again, isr_wait);
        }
        if wait_start.elapsed() >= ISR_TIMEOUT {
            return Err(format!(
                "no stable leader with all replicas in sync and producers answered within \
                 {ISR_TIMEOUT:?} (leader {:?}, in sync {:?}, answers in the last {settle:?}: {})",
                again.leader_id,
                again.isr,
                if answered_lately { "yes" } else { "none" }
            ));
        }
    };
    let leader = state.leader_id.unwrap_or(0);
    eprintln!(
        "round {k}: leader {leader} (epoch {}), in sync {:?}; SIGKILL",
        state.leader_epoch, state.isr
    );

    let kill_start = Instant::now();
    launcher.sigkill(leader, KILL_TIMEOUT).await?;
    let killed = Instant::now();
    let kill_cmd = killed - kill_start;

    // The first acknowledgement of a request sent after `killed`; meanwhile, when a new
    // leader first shows in the brokers' metadata (producers then keep away from it too).
    let killed_stamp = shared.stamp(killed);
    let acked_after = async {
        while killed.elapsed() < FAILOVER_TIMEOUT {
            if shared.latest_acked_sent.load(Ordering::Relaxed) > killed_stamp {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    };
    let leader_seen = async {
        let new = watch.new_leader(leader, FAILOVER_TIMEOUT).await;
        let seen = killed.elapsed();
        if let Some(l) = new.as_ref().and_then(|p| p.leader_id) {
            shared.set_avoid(&[l, leader]);
        }
        (new, seen)
    };
    let (failed_over, (new, leader_seen)) = tokio::join!(acked_after, leader_seen);
    if !failed_over {
        let restarted = launcher.start(leader, START_TIMEOUT).await;
        return Err(format!(
            "no request sent after the kill of broker {leader} was acknowledged within \
             {FAILOVER_TIMEOUT:?}{}",
            restarted
                .err()
                .map(|e| format!("; restarting it failed too: {e}"))
                .unwrap_or_default()
        ));
    }
    tokio::time::sleep(LOG_GRACE).await;
    let (last_before, first_after, errors) = {
        let log = shared.log();
        let last_before = log
            .acks
            .iter()
            .filter(|a| a.answered < killed)
            .map(|a| a.answered)
            .max();
        let first_after = log
            .acks
            .iter()
            .filter(|a| a.sent > killed)
            .map(|a| a.answered)
            .min();
        let errors = match first_after {
            Some(end) => log
                .failures
                .iter()
                .filter(|f| f.at >= kill_start && f.at <= end)
                .count() as u64,
            None => 0,
        };
        (last_before, first_after, errors)
    };
    let (Some(last_before), Some(first_after)) = (last_before, first_after) else {
        return Err("no acknowledgement before the kill or after it".into());
    };
    windows.push((
        kill_start.saturating_duration_since(t0),
        first_after.saturating_duration_since(t0),
        first_after.saturating_duration_since(t0),
    ));

    let restart_start = Instant::now();
    launcher.start(leader, START_TIMEOUT).await?;
    let restart = restart_start.elapsed();
    shared.set_avoid(
        &new.as_ref()
            .and_then(|p| p.leader_id)
            .into_iter()
            .collect::<Vec<_>>(),
    );

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Round {
        round: k,
        leader,
        epoch: state.leader_epoch,
        isr_wait_s: isr_wait.as_secs_f64(),
        kill_cmd_s: kill_cmd.as_secs_f64(),
        failover_ms: ms(first_after - last_before),
        last_answer_before_ms: -ms(killed - last_before),
        first_answer_after_ms: ms(first_after - killed),
        new_leader: new.as_ref().and_then(|p| p.leader_id),
        leader_seen_ms: new.as_ref().map(|_| ms(leader_seen)),
        new_epoch: new.as_ref().map(|p| p.leader_epoch),
        errors,
        restart_s: restart.as_secs_f64(),
    })
}

/// Counts failures per phase (failover, recovery, steady) and per phase and kind; `windows`
/// are offsets from `t0`.
fn classify(
    failures: &[Failure],
    windows: &[(Duration, Duration, Duration)],
    t0: Instant,
) -> ([u64; 3], Vec<ErrorKind>) {
    const PHASES: [&str; 3] = ["failover", "recovery", "steady"];
    let mut counts = [0u64; 3];
    let mut kinds: BTreeMap<(usize, String), (u64, String)> = BTreeMap::new();
    for f in failures {
        let phase = phase_of(f.at.saturating_duration_since(t0), windows);
        counts[phase] += 1;
        kinds
            .entry((phase, f.kind.clone()))
            .and_modify(|e| e.0 += 1)
            .or_insert((1, f.message.clone()));
    }
    let list = kinds
        .into_iter()
        .map(|((phase, kind), (count, example))| ErrorKind {
            phase: PHASES[phase],
            kind,
            count,
            example,
        })
        .collect();
    (counts, list)
}

/// The phase of an instant `at` (offset from t0): 0 = failover (kill command to the first
/// answer after it), 1 = recovery (from there until all replicas are in sync), 2 = steady.
fn phase_of(at: Duration, windows: &[(Duration, Duration, Duration)]) -> usize {
    for &(kill, first_after, recovered) in windows {
        if at >= kill && at <= first_after {
            return 0;
        }
        if at > first_after && at <= recovered {
            return 1;
        }
    }
    2
}

/// One line per kill.
fn round_line(r: &Round, kills: u32) -> String {
    let mut s = format!(
        "kill {:>2}/{kills}: leader {} (epoch {}) SIGKILLed; failover {:>8.1} ms \
         (last answer {:.1} ms before, first answer {:.1} ms after the kill returned)",
        r.round,
        r.leader,
        r.epoch,
        r.failover_ms,
        -r.last_answer_before_ms,
        r.first_answer_after_ms
    );
    match (r.new_leader, r.new_epoch, r.leader_seen_ms) {
        (Some(l), Some(e), Some(seen)) => {
            let _ = write!(s, "; new leader {l} (epoch {e}) seen at +{seen:.0} ms");
        }
        _ => s.push_str("; new leader not seen"),
    }
    let _ = write!(
        s,
        "; {} errors; in sync after {:.2} s; kill took {:.2} s, restart {:.2} s",
        r.errors, r.isr_wait_s, r.kill_cmd_s, r.restart_s
    );
    s
}

/// The text report.
fn render(r: &Report) -> String {
    let mut s = String::new();
    let d = &r.failover_ms;
    let _ = writeln!(
        s,
        "failover: {} of {} kills; failover ms: min {:.1}, p50 {:.1}, p90 {:.1}, max {:.1} (mean {:.1})",
        r.rounds.len(),
        r.kills_planned,
        d.min,
        d.p50,
        d.p90,
        d.max,
        d.mean
    );
    let _ = writeln!(
        s,
        "  acknowledged {} records in {} requests over {:.1} s; {} failed requests \
         ({} during failover, {} during recovery, {} at other times)",
        r.acked_records,
        r.acked_requests,
        r.load_s,
        r.errors,
        r.errors_failover,
        r.errors_recovery,
        r.errors_steady
    );
    for k in &r.error_kinds {
        let example: String = k.example.chars().take(200).collect();
        let _ = writeln!(
            s,
            "    {:<8} {:>6} x {:<16} e.g. {example}",
            k.phase, k.count, k.kind
        );
    }
    match &r.verification {
        Some(v) => {
            let verdict = if v.violations() == 0 {
                "OK: every acknowledged record read exactly once at its offset".to_owned()
            } else {
                format!(
                    "VIOLATION: {} missing, {} duplicated, {} misplaced",
                    v.missing, v.duplicated, v.misplaced
                )
            };
            let _ = writeln!(
                s,
                "  read-back of offsets {}..{} via {}: {} records ({} of this run), {} acknowledged \
                 checked; {verdict}; {} written by failed requests ({} of them duplicated); {} offset gaps",
                v.read_from,
                v.high_watermark,
                v.read_via,
                v.records_read,
                v.ours,
                v.acked_records,
                v.unacked_found,
                v.unacked_duplicates,
                v.offset_gaps
            );
        }
        None => s.push_str("  read-back: not done\n"),
    }
    if let Some(f) = &r.failure {
        let _ = writeln!(s, "  FAILED: {f}");
    }
    s
}

/// A status line on stderr every 5 s.
async fn progress(shared: Arc<Shared>) {
    let period = Duration::from_secs(5);
    let mut tick = tokio::time::interval_at((Instant::now() + period).into(), period);
    let mut prev = (0u64, 0u64);
    loop {
        tick.tick().await;
        let now = (
            shared.acked_records.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
        );
        eprintln!(
            "[{:7.1}s] acknowledged {} records ({:.0}/s), {} failed requests (+{})",
            shared.t0.elapsed().as_secs_f64(),
            now.0,
            (now.0 - prev.0) as f64 / period.as_secs_f64(),
            now.1,
            now.1 - prev.1
        );
        prev = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_is_nearest_rank() {
        let d = Distribution::of(&[5.0, 1.0, 4.0, 2.0, 3.0, 10.0, 9.0, 8.0, 7.0, 6.0]);
        assert_eq!((d.min, d.p50, d.p90, d.max), (1.0, 5.0, 9.0, 10.0));
        assert_eq!(d.mean, 5.5);
        assert_eq!(Distribution::of(&[]).max, 0.0);
    }
}
