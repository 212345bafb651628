//! A simulated group member speaking the KIP-848 style member protocol
//! (`POST /v1/groups/{g}/heartbeat`), and a task that heartbeats for it at a fixed interval.
//!
//! A member always reports as `owned_partitions` the assignment of the last answer it got,
//! so partitions the coordinator revoked are confirmed given up on the next heartbeat. A
//! member told its id or epoch is unknown or stale (40406, 40903) forgets both and joins
//! again on its next heartbeat.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http;

/// Unknown member id: rejoin with epoch 0.
const UNKNOWN_MEMBER: u32 = 40406;
/// Stale member epoch: the member was fenced and must rejoin.
const STALE_EPOCH: u32 = 40903;

/// Partitions of one topic, as heartbeats carry them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<u32>,
}

#[derive(Serialize)]
struct HeartbeatBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    member_id: Option<&'a str>,
    member_epoch: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscribed_topic_names: Option<[&'a str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owned_partitions: Option<[TopicPartitions; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
struct HeartbeatAnswer {
    member_id: String,
    member_epoch: i32,
    heartbeat_interval_ms: u64,
    assignment: Vec<TopicPartitions>,
}

/// One answered heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// When the request was sent.
    pub sent: Instant,
    /// When its answer arrived.
    pub answered: Instant,
    /// The member's partitions of the topic after it (sorted).
    pub partitions: Vec<u32>,
    /// The member epoch it carried.
    pub epoch: i32,
    /// Whether this was a join (member epoch 0 sent).
    pub joined: bool,
}

/// A member of one group subscribed to one topic.
#[derive(Debug, Clone)]
pub struct Member {
    client: Client,
    url: String,
    topic: String,
    session_timeout_ms: u64,
    /// Id the coordinator gave; `None` before the first join.
    pub id: Option<String>,
    /// Current member epoch; 0 means the next heartbeat joins.
    pub epoch: i32,
    /// Partitions of the last answer, reported as owned on the next heartbeat.
    pub owned: Vec<u32>,
    /// The coordinator's `heartbeat_interval_ms`, once answered.
    pub interval: Option<Duration>,
}

impl Member {
    /// A member of `group` on broker `base`, not joined yet.
    pub fn new(
        client: Client,
        base: &str,
        group: &str,
        topic: &str,
        session_timeout_ms: u64,
    ) -> Self {
        Member {
            client,
            url: format!("{base}/v1/groups/{group}/heartbeat"),
            topic: topic.to_owned(),
            session_timeout_ms,
            id: None,
            epoch: 0,
            owned: Vec::new(),
            interval: None,
        }
    }

    /// Sends one heartbeat: a join (epoch 0, subscription and session timeout) when the
    /// member has no epoch yet, else its id, epoch and owned partitions.
    ///
    /// # Errors
    /// The transport or HTTP error, or a malformed answer; on 40406 and 40903 the member also
    /// forgets its id and epoch, so the next heartbeat joins again.
    pub async fn heartbeat(&mut self) -> Result<Beat, String> {
        let joining = self.epoch == 0;
        let body = self.body();
        let sent = Instant::now();
        let result = http::send(self.client.post(&self.url).json(&body)).await;
        let answered = Instant::now();
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(e) => {
                if matches!(super::error_code(&e), Some(UNKNOWN_MEMBER | STALE_EPOCH)) {
                    self.forget();
                }
                return Err(e);
            }
        };
        let answer: HeartbeatAnswer =
            serde_json::from_slice(&bytes).map_err(|e| format!("bad heartbeat answer: {e}"))?;
        let mut partitions: Vec<u32> = answer
            .assignment
            .iter()
            .filter(|t| t.topic == self.topic)
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        self.id = Some(answer.member_id);
        self.epoch = answer.member_epoch;
        self.owned.clone_from(&partitions);
        self.interval = Some(Duration::from_millis(answer.heartbeat_interval_ms));
        Ok(Beat {
            sent,
            answered,
            partitions,
            epoch: answer.member_epoch,
            joined: joining,
        })
    }

    /// The next heartbeat's body: a join (epoch 0, subscription, session timeout) or the
    /// member's id, epoch and owned partitions.
    fn body(&self) -> HeartbeatBody<'_> {
        if self.epoch == 0 {
            HeartbeatBody {
                member_id: None,
                member_epoch: 0,
                subscribed_topic_names: Some([&self.topic]),
                owned_partitions: None,
                session_timeout_ms: Some(self.session_timeout_ms),
            }
        } else {
            HeartbeatBody {
                member_id: self.id.as_deref(),
                member_epoch: self.epoch,
                subscribed_topic_names: None,
                owned_partitions: Some([TopicPartitions {
                    topic: self.topic.clone(),
                    partitions: self.owned.clone(),
                }]),
                session_timeout_ms: None,
            }
        }
    }

    /// Leaves the group (member epoch -1); the member can join again afterwards.
    ///
    /// # Errors
    /// The transport or HTTP error.
    pub async fn leave(&mut self) -> Result<(), String> {
        let Some(id) = self.id.clone() else {
            return Ok(());
        };
        let body = HeartbeatBody {
            member_id: Some(&id),
            member_epoch: -1,
            subscribed_topic_names: None,
            owned_partitions: None,
            session_timeout_ms: None,
        };
        let result = http::send(self.client.post(&self.url).json(&body)).await;
        self.forget();
        result.map(|_| ())
    }

    /// The heartbeat period: `every`, or the coordinator's interval when that is shorter.
    pub fn period(&self, every: Duration) -> Duration {
        self.interval
            .map_or(every, |i| every.min(i.max(Duration::from_millis(1))))
    }

    fn forget(&mut self) {
        self.epoch = 0;
        self.owned.clear();
    }
}

/// What a heartbeating task did.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Answered heartbeats.
    pub beats: u64,
    /// Failed heartbeats.
    pub errors: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// The last heartbeat sent (answered or not): when it was sent and, if answered, when.
    pub last_sent: Option<Instant>,
    /// When the last answered heartbeat's answer arrived.
    pub last_answered: Option<Instant>,
}

/// A member heartbeating in a task: at a fixed period from send to send, until stopped.
pub struct Heartbeater {
    stop: watch::Sender<bool>,
    /// The latest answered heartbeat.
    pub beats: watch::Receiver<Option<Beat>>,
    task: JoinHandle<(Member, Stats)>,
}

impl Heartbeater {
    /// Starts heartbeating for `member` every `every` (see [`Member::period`]); with
    /// `ack_at_once`, again right away after an answer that took partitions away.
    pub fn spawn(member: Member, every: Duration, ack_at_once: bool) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (tx, beats) = watch::channel(None);
        let task = tokio::spawn(beat_loop(member, every, ack_at_once, stopped, tx));
        Heartbeater { stop, beats, task }
    }

    /// Stops after the heartbeat in flight, if any (none is cut short), and returns the
    /// member and what the task did.
    ///
    /// # Errors
    /// The task panicked.
    pub async fn stop(self) -> Result<(Member, Stats), String> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| format!("heartbeat task failed: {e}"))
    }

    /// Waits until an answer arrives that satisfies `accept`, for at most `limit`; returns it.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        mut accept: impl FnMut(&Beat) -> bool,
    ) -> Option<Beat> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(beat) = self.beats.borrow_and_update().as_ref()
                && accept(beat)
            {
                return Some(beat.clone());
            }
            match tokio::time::timeout_at(deadline, self.beats.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or the task ended.
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }
}

async fn beat_loop(
    mut member: Member,
    every: Duration,
    ack_at_once: bool,
    mut stopped: watch::Receiver<bool>,
    tx: watch::Sender<Option<Beat>>,
) -> (Member, Stats) {
    let mut stats = Stats::default();
    let mut next = tokio::time::Instant::now();
    loop {
        if *stopped.borrow_and_update() {
            break;
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            () = tokio::time::sleep_until(next) => {}
        }
        let before = member.owned.clone();
        let sent = Instant::now();
        stats.last_sent = Some(sent);
        let mut again = false;
        match member.heartbeat().await {
            Ok(beat) => {
                stats.beats += 1;
                stats.last_answered = Some(beat.answered);
                again = ack_at_once && before.iter().any(|p| !beat.partitions.contains(p));
                let _ = tx.send(Some(beat));
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert(e);
            }
        }
        next = if again {
            tokio::time::Instant::now()
        } else {
            tokio::time::Instant::from_std(sent) + member.period(every)
        };
    }
    (member, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(member: &Member) -> serde_json::Value {
        serde_json::to_value(member.body()).unwrap()
    }

    #[test]
    fn heartbeat_bodies_carry_what_the_protocol_needs() {
        let mut m = Member::new(Client::new(), "http://b", "g", "t", 3000);
        assert_eq!(m.url, "http://b/v1/groups/g/heartbeat");
        assert_eq!(
            body(&m),
            serde_json::json!({"member_epoch": 0, "subscribed_topic_names": ["t"], "session_timeout_ms": 3000})
        );
        m.id = Some("m1".into());
        m.epoch = 4;
        m.owned = vec![1, 3];
        assert_eq!(
            body(&m),
            serde_json::json!({"member_id": "m1", "member_epoch": 4,
                "owned_partitions": [{"topic": "t", "partitions": [1, 3]}]})
        );
    }

    #[test]
    fn period_is_the_shorter_interval() {
        let mut m = Member::new(Client::new(), "http://b", "g", "t", 3000);
        let every = Duration::from_millis(200);
        assert_eq!(m.period(every), every);
        m.interval = Some(Duration::from_millis(5000));
        assert_eq!(m.period(every), every);
        m.interval = Some(Duration::from_millis(50));
        assert_eq!(m.period(every), Duration::from_millis(50));
    }

    #[test]
    fn fencing_errors_make_the_member_rejoin() {
        let mut m = Member::new(Client::new(), "http://b", "g", "t", 3000);
        m.epoch = 7;
        m.owned = vec![0];
        m.forget();
        assert_eq!((m.epoch, m.owned.len()), (0, 0));
    }
}
