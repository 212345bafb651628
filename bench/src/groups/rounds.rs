//! `groups join` and `groups failover`: repeated membership changes, each timed from the
//! client's side by heartbeat send and answer times.
//!
//! Both keep member A in the group the whole run, heartbeating in a task. `join` then, per
//! round, has member B join and heartbeat until an answer gives it partitions, then leave.
//! `failover` has B join and wait until A and B split the partitions, then stop B's
//! heartbeats (a death: no leave) and wait for the answer that gives A everything.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use serde_json::json;

use super::member::{Beat, Heartbeater, Member, Stats};
use super::{Setup, ms, setup};
use crate::cli::{GroupTarget, MemberArgs};
use crate::failover::Distribution;

/// One measured round.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: u32,
    /// The measured time: join to first non-empty assignment, or last heartbeat of the dead
    /// member to the answer giving the survivor every partition.
    pub ms: f64,
    /// `join`: heartbeats B sent (the join included) up to that answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeats: Option<u32>,
    /// Partitions in B's first non-empty assignment (`join`), or held by B when it died
    /// (`failover`).
    pub partitions: usize,
    /// `join`: from B's leave answer to the answer that gave A every partition back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regain_after_leave_ms: Option<f64>,
    /// `failover`: the measured time minus the session timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beyond_session_timeout_ms: Option<f64>,
    /// `failover`: round trip of B's last heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_rtt_ms: Option<f64>,
}

/// The outcome of a `join` or `failover` run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `groups-join` or `groups-failover`.
    pub mode: &'static str,
    /// Broker URL used.
    pub url: String,
    /// Settings.
    pub params: serde_json::Value,
    /// Rounds done.
    pub rounds: Vec<Round>,
    /// Rounds asked for.
    pub rounds_planned: u32,
    /// Distribution of the measured times over the rounds done.
    pub times_ms: Distribution,
    /// Failed heartbeats (all members, all rounds).
    pub errors: u64,
    /// The first of them.
    pub first_error: Option<String>,
    /// Why the run stopped early, if it did.
    pub failure: Option<String>,
}

/// Which measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Join,
    Failover,
}

impl Kind {
    fn mode(self) -> &'static str {
        match self {
            Kind::Join => "groups-join",
            Kind::Failover => "groups-failover",
        }
    }
}

/// Runs `kind` and prints its report; non-zero exit when it failed or measured nothing.
pub async fn main(kind: Kind, target: GroupTarget, args: MemberArgs) -> ExitCode {
    let name = match kind {
        Kind::Join => "join",
        Kind::Failover => "failover",
    };
    let setup = match setup(&target, name, 4).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("runnel-bench groups {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = run(kind, &target, &args, &setup).await;
    if args.json {
        match serde_json::to_string(&report) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("runnel-bench groups {name}: cannot render the report: {e}"),
        }
    } else {
        print!("{}", render(&report));
    }
    if let Some(f) = &report.failure {
        eprintln!("runnel-bench groups {name}: FAILED: {f}");
    }
    if report.failure.is_none() && !report.rounds.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Errors seen by members, summed.
#[derive(Default)]
struct Errors {
    count: u64,
    first: Option<String>,
}

impl Errors {
    fn add_stats(&mut self, stats: &Stats) {
        self.count += stats.errors;
        if self.first.is_none() {
            self.first.clone_from(&stats.first_error);
        }
    }

    fn add(&mut self, error: String) {
        self.count += 1;
        self.first.get_or_insert(error);
    }
}

async fn run(kind: Kind, target: &GroupTarget, args: &MemberArgs, setup: &Setup) -> Report {
    let every = Duration::from_millis(args.heartbeat_ms);
    let limit = Duration::from_millis(args.round_timeout_ms);
    let all = setup.partitions as usize;
    let new_member = || {
        Member::new(
            setup.client.clone(),
            &setup.url,
            &setup.group,
            &target.topic,
            args.session_timeout_ms,
        )
    };
    let mut rounds = Vec::new();
    let mut errors = Errors::default();
    eprintln!(
        "group {} on topic {} ({all} partitions) through {}",
        setup.group, target.topic, setup.url
    );
    let mut a = Heartbeater::spawn(new_member(), every, args.ack_at_once);
    let failure = match a.wait_for(limit, |b| b.partitions.len() == all).await {
        None => Some(format!(
            "member A did not get all {all} partitions within {limit:?}"
        )),
        Some(_) => {
            let mut failure = None;
            for round in 1..=args.rounds {
                let outcome = match kind {
                    Kind::Join => {
                        join_round(round, &mut a, new_member(), args, all, &mut errors).await
                    }
                    Kind::Failover => {
                        failover_round(round, &mut a, new_member(), args, all, &mut errors).await
                    }
                };
                match outcome {
                    Ok(r) => {
                        eprintln!("{}", round_line(kind, &r, args.rounds));
                        rounds.push(r);
                    }
                    Err(e) => {
                        failure = Some(format!("round {round}: {e}"));
                        break;
                    }
                }
            }
            failure
        }
    };
    match a.stop().await {
        Ok((mut member, stats)) => {
            errors.add_stats(&stats);
            if let Err(e) = member.leave().await {
                errors.add(format!("member A's leave: {e}"));
            }
        }
        Err(e) => errors.add(e),
    }
    let times: Vec<f64> = rounds.iter().map(|r| r.ms).collect();
    Report {
        mode: kind.mode(),
        url: setup.url.clone(),
        params: json!({
            "group": setup.group,
            "topic": target.topic,
            "partitions": all,
            "heartbeat_ms": args.heartbeat_ms,
            "session_timeout_ms": args.session_timeout_ms,
            "ack_at_once": args.ack_at_once,
        }),
        times_ms: Distribution::of(&times),
        rounds,
        rounds_planned: args.rounds,
        errors: errors.count,
        first_error: errors.first,
        failure,
    }
}

/// B joins (at a random point of A's heartbeat cycle) and heartbeats until an answer
/// carries partitions; then it leaves and A gets
/// everything back.
async fn join_round(
    round: u32,
    a: &mut Heartbeater,
    mut b: Member,
    args: &MemberArgs,
    all: usize,
    errors: &mut Errors,
) -> Result<Round, String> {
    let every = Duration::from_millis(args.heartbeat_ms);
    let limit = Duration::from_millis(args.round_timeout_ms);
    random_phase(args.heartbeat_ms).await;
    let start = Instant::now();
    let mut heartbeats = 0u32;
    let got: Beat = loop {
        if start.elapsed() > limit {
            let _ = b.leave().await;
            return Err(format!("B got no partitions within {limit:?}"));
        }
        heartbeats += 1;
        let sent = Instant::now();
        let before = b.owned.clone();
        let mut again = false;
        match b.heartbeat().await {
            Ok(beat) if !beat.partitions.is_empty() => break beat,
            Ok(beat) => {
                again = args.ack_at_once && before.iter().any(|p| !beat.partitions.contains(p))
            }
            Err(e) => errors.add(format!("member B: {e}")),
        }
        if !again {
            tokio::time::sleep_until(tokio::time::Instant::from_std(sent) + b.period(every)).await;
        }
    };
    let join_ms = ms(got.answered.saturating_duration_since(start));
    if let Err(e) = b.leave().await {
        errors.add(format!("member B's leave: {e}"));
    }
    let left = Instant::now();
    let regained = a
        .wait_for(limit, |beat| {
            beat.partitions.len() == all && beat.sent >= left
        })
        .await
        .ok_or(format!(
            "A did not get all {all} partitions back within {limit:?} of B's leave"
        ))?;
    Ok(Round {
        round,
        ms: join_ms,
        heartbeats: Some(heartbeats),
        partitions: got.partitions.len(),
        regain_after_leave_ms: Some(ms(regained.answered.saturating_duration_since(left))),
        beyond_session_timeout_ms: None,
        last_heartbeat_rtt_ms: None,
    })
}

/// B joins (at a random point of A's heartbeat cycle) and heartbeats until A and B split the
/// partitions, then stops heartbeating after a random pause; the time runs from B's last heartbeat to the first
/// answer giving A every partition.
async fn failover_round(
    round: u32,
    a: &mut Heartbeater,
    b: Member,
    args: &MemberArgs,
    all: usize,
    errors: &mut Errors,
) -> Result<Round, String> {
    let every = Duration::from_millis(args.heartbeat_ms);
    let limit = Duration::from_millis(args.round_timeout_ms);
    random_phase(args.heartbeat_ms).await;
    let mut b = Heartbeater::spawn(b, every, args.ack_at_once);
    let split = async {
        b.wait_for(limit, |beat| !beat.partitions.is_empty())
            .await
            .ok_or(format!("B got no partitions within {limit:?}"))?;
        let b_beats = b.beats.clone();
        a.wait_for(limit, |beat| {
            let held = b_beats.borrow();
            let b_parts = held.as_ref().map_or(&[][..], |h| &h.partitions[..]);
            beat.partitions.len() + b_parts.len() == all
                && !beat.partitions.iter().any(|p| b_parts.contains(p))
        })
        .await
        .ok_or(format!(
            "A and B did not split the partitions within {limit:?}"
        ))
    }
    .await;
    if let Err(e) = split {
        if let Ok((mut member, stats)) = b.stop().await {
            errors.add_stats(&stats);
            let _ = member.leave().await;
        }
        return Err(e);
    }
    random_phase(args.heartbeat_ms).await;
    let (b_member, stats) = b.stop().await?;
    errors.add_stats(&stats);
    let held = b_member.owned.len();
    let (Some(last_sent), Some(last_answered)) = (stats.last_sent, stats.last_answered) else {
        return Err("B never heartbeat".into());
    };
    let wait = Duration::from_millis(args.session_timeout_ms) + limit;
    let took = a
        .wait_for(wait, |beat| {
            beat.partitions.len() == all && beat.sent >= last_answered
        })
        .await
        .ok_or(format!(
            "A did not get all {all} partitions within {wait:?} of B's death"
        ))?;
    let takeover = ms(took.answered.saturating_duration_since(last_sent));
    Ok(Round {
        round,
        ms: takeover,
        heartbeats: None,
        partitions: held,
        regain_after_leave_ms: None,
        beyond_session_timeout_ms: Some(takeover - args.session_timeout_ms as f64),
        last_heartbeat_rtt_ms: Some(ms(last_answered.saturating_duration_since(last_sent))),
    })
}

/// Sleeps a random 0..=`heartbeat_ms` milliseconds. A round starts right after one of A's
/// answers; without this, B's heartbeats would keep the same phase against A's every round
/// and the times would repeat one point of the cycle instead of sampling it.
async fn random_phase(heartbeat_ms: u64) {
    let ms = rand::rng().random_range(0..=heartbeat_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn round_line(kind: Kind, r: &Round, rounds: u32) -> String {
    match kind {
        Kind::Join => format!(
            "join {:>3}/{rounds}: {:8.1} ms to the first assignment ({} partitions, {} heartbeats); \
             A whole again {:.1} ms after B left",
            r.round,
            r.ms,
            r.partitions,
            r.heartbeats.unwrap_or(0),
            r.regain_after_leave_ms.unwrap_or(f64::NAN)
        ),
        Kind::Failover => format!(
            "death {:>3}/{rounds}: {:8.1} ms from B's last heartbeat to A holding all \
             ({:+.1} ms beyond the session timeout; B held {} partitions)",
            r.round,
            r.ms,
            r.beyond_session_timeout_ms.unwrap_or(f64::NAN),
            r.partitions
        ),
    }
}

fn render(r: &Report) -> String {
    let d = &r.times_ms;
    let what = match r.mode {
        "groups-join" => "join to first assignment",
        _ => "last heartbeat to takeover",
    };
    let mut out = format!("{} against {}\n  settings  {}\n", r.mode, r.url, r.params);
    out.push_str(&format!(
        "  {} of {} rounds; {what} ms: min {:.1}, p50 {:.1}, p90 {:.1}, max {:.1} (mean {:.1})\n",
        r.rounds.len(),
        r.rounds_planned,
        d.min,
        d.p50,
        d.p90,
        d.max,
        d.mean
    ));
    out.push_str(&format!("  heartbeat errors {}\n", r.errors));
    if let Some(e) = &r.first_error {
        out.push_str(&format!("  first error: {e}\n"));
    }
    if let Some(f) = &r.failure {
        out.push_str(&format!("  FAILED: {f}\n"));
    }
    out
}
