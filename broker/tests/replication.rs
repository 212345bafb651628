//! Replication and failover against three real broker processes and a real etcd.
//!
//! Contract pinned here (the seed's): with N replicas, up to N-1 may fail without losing any
//! record acknowledged with `acks=all`; a new leader is elected from the in-sync replicas; a
//! consumer never sees a record that is later lost; a returning replica truncates what it must,
//! catches up, and rejoins the in-sync set. Histories are checked as Jepsen's Kafka checker
//! does: every acknowledged write readable exactly once, at its acknowledged offset, in
//! acknowledged order.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Api, cluster, eventually};

/// Fast failure detection for tests: 2 s leases, 2 s lag.
const FAST: [&str; 6] = [
    "--lease-ttl-secs",
    "2",
    "--replica-lag-time-max-ms",
    "2000",
    "--replica-ack-timeout-ms",
    "5000",
];

async fn create_replicated(api: &Api, topic: &str, partitions: u32, configs: &[(&str, &str)]) {
    api.create_replicated_topic(topic, partitions, 3, configs)
        .await;
}

/// The partition as `api`'s broker describes it (retrying while that broker is unreachable).
async fn describe(api: &Api, topic: &str, partition: u32) -> Value {
    api.get(&format!("{}/partitions/{partition}", api.topic_url(topic)))
        .await
        .1
}

fn isr(state: &Value) -> Vec<u64> {
    state["isr"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Waits until every replica of `topic`-`partition` is in sync and followers have fetched.
async fn wait_fully_in_sync(api: &Api, topic: &str, partition: u32) {
    let ok = eventually(Duration::from_secs(20), async || {
        isr(&describe(api, topic, partition).await).len() == 3
    })
    .await;
    assert!(
        ok,
        "{topic}-{partition} never had 3 in-sync replicas: {}",
        describe(api, topic, partition).await
    );
}

/// One acknowledged write: who wrote it, where it landed, and when it was acknowledged.
#[derive(Debug, Clone)]
struct Ack {
    producer: u32,
    seq: u32,
    offset: i64,
    sent: Instant,
    at: Instant,
}

/// Producers writing unique values to `topic`-0 with `acks=all` through `urls` (each
/// producer moves to the next URL after a failure) until `stop`.
fn spawn_producers(
    api: &Api,
    urls: Vec<String>,
    topic: &str,
    producers: u32,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Ack>>> {
    (0..producers)
        .map(|producer| {
            let http = api.http.clone();
            let cluster_id = api.cluster_id.clone();
            let urls = urls.clone();
            let topic = topic.to_string();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut acks = Vec::new();
                let mut target = producer as usize;
                for seq in 0..1_000_000u32 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let url = format!("{}/v3/clusters/{cluster_id}/topics/{topic}/records?acks=all", urls[target % urls.len()]);
                    let body = json!({"partition_id": 0, "value": {"type": "JSON", "data": {"p": producer, "s": seq}}});
                    let sent = Instant::now();
                    let response = http.post(&url).json(&body).timeout(Duration::from_secs(8)).send().await;
                    match response {
                        Ok(r) if r.status() == 200 => {
                            let answer: Value = r.json().await.unwrap_or_default();
                            if let Some(offset) = answer["offset"].as_i64() {
                                acks.push(Ack { producer, seq, offset, sent, at: Instant::now() });
                            }
                        }
                        _ => {
                            target += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                acks
            })
        })
        .collect()
}

/// Checks the history: each acknowledged write is stored exactly once, at its offset, and each
/// producer's acknowledged writes are in order.
fn check_history(acks: &[Ack], records: &[Value]) {
    let mut seen: HashMap<(u64, u64), Vec<i64>> = HashMap::new();
    for record in records {
        let data = &record["value"]["data"];
        if let (Some(p), Some(s)) = (data["p"].as_u64(), data["s"].as_u64()) {
            seen.entry((p, s))
                .or_default()
                .push(record["offset"].as_i64().expect("offset"));
        }
    }
    for ack in acks {
        let offsets = seen.get(&(u64::from(ack.producer), u64::from(ack.seq)));
        assert_eq!(
            offsets,
            Some(&vec![ack.offset]),
            "acknowledged write {ack:?} is not stored exactly once at its offset"
        );
    }
    for (i, record) in records.iter().enumerate() {
        assert_eq!(
            record["offset"].as_i64(),
            records
                .first()
                .and_then(|r| r["offset"].as_i64())
                .map(|o| o + i as i64)
        );
    }
    let mut by_producer: HashMap<u32, Vec<&Ack>> = HashMap::new();
    for ack in acks {
        by_producer.entry(ack.producer).or_default().push(ack);
    }
    for list in by_producer.values() {
        assert!(
            list.windows(2).all(|w| w[0].offset < w[1].offset),
            "a producer's acknowledged writes were reordered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_three_brokers_then_replicas_are_spread_and_every_replica_gets_every_record() {
    let cluster = cluster(3, &FAST).await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "spread", 3, &[("min.insync.replicas", "2")]).await;
    let (_, partitions) = api
        .get(&format!("{}/partitions", api.topic_url("spread")))
        .await;
    let mut leaders = Vec::new();
    for p in partitions["data"].as_array().expect("partitions") {
        assert_eq!(p["replicas"].as_array().expect("replicas").len(), 3);
        assert_eq!(isr(p).len(), 3);
        leaders.push(p["leader_id"].as_u64().expect("leader"));
    }
    leaders.sort_unstable();
    assert_eq!(leaders, vec![1, 2, 3], "one leader per broker");
    let (_, cluster_info) = api
        .get(&format!("{}/v3/clusters/{}", api.base, api.cluster_id))
        .await;
    assert!(
        cluster_info["controller_id"].as_u64().is_some(),
        "{cluster_info}"
    );

    for partition in 0..3 {
        for i in 0..20 {
            let (p, offset) = api
                .produce(
                    "spread",
                    json!({"partition_id": partition, "value": {"type": "JSON", "data": i}}),
                )
                .await;
            assert_eq!((p, offset), (partition, i));
        }
    }
    // Every broker answers the same for every partition.
    for index in 0..3 {
        let via = Api::new(&cluster, index);
        for partition in 0..3 {
            let records = via.read_all("spread", partition).await;
            assert_eq!(records.len(), 20);
            assert_eq!(records[19]["value"]["data"], 19);
        }
    }
    // Bad replication requests.
    let (status, body) = api
        .post_json(
            &api.topics_url(),
            &json!({"topic_name": "too-many", "replication_factor": 4}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error_code"].as_u64()),
        (422, Some(42205)),
        "{body}"
    );
    let (status, body) = api
        .http
        .patch(api.topic_url("spread"))
        .json(&json!({"partitions_count": 2}))
        .send()
        .await
        .map(|r| r.status())
        .map(|s| (s, Value::Null))
        .expect("patch");
    assert_eq!(status.as_u16(), 422, "{body}");
    // Adding partitions: new ones are replicated too.
    let response = api
        .http
        .patch(api.topic_url("spread"))
        .json(&json!({"partitions_count": 5}))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 200);
    let added = describe(&api, "spread", 4).await;
    assert_eq!(
        added["replicas"].as_array().map(Vec::len),
        Some(3),
        "{added}"
    );
    let (p, offset) = api
        .produce(
            "spread",
            json!({"partition_id": 4, "value": {"type": "JSON", "data": "new"}}),
        )
        .await;
    assert_eq!((p, offset), (4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_continuous_acks_all_when_the_leader_is_sigkilled_then_no_acknowledged_record_is_lost()
 {
    let mut cluster = cluster(3, &FAST).await;
    let api = Api::new(&cluster, 0);
    create_replicated(
        &api,
        "failover",
        1,
        &[("min.insync.replicas", "2"), ("flush.messages", "1")],
    )
    .await;
    wait_fully_in_sync(&api, "failover", 0).await;
    let leader = describe(&api, "failover", 0).await["leader_id"]
        .as_u64()
        .expect("leader") as u32;
    let others: Vec<String> = (1..=3u32)
        .filter(|&b| b != leader)
        .map(|b| cluster.broker_urls()[b as usize - 1].clone())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let producers = spawn_producers(&api, others.clone(), "failover", 3, stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.broker(leader).kill().expect("sigkill leader");
    // Only the new leader can acknowledge a request sent after the old one is dead.
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for producer in producers {
        acks.extend(producer.await.expect("producer"));
    }
    let last_old = acks
        .iter()
        .filter(|a| a.at <= killed_at)
        .map(|a| a.at)
        .max()
        .expect("acks before the kill");
    let first_new = acks
        .iter()
        .filter(|a| a.sent > killed_at)
        .map(|a| a.at)
        .min()
        .expect("no acknowledgement from a new leader");
    let failover = first_new - last_old;
    eprintln!(
        "failover: last ack from the old leader to first ack from the new: {} ms",
        failover.as_millis()
    );
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );

    let survivor = Api {
        base: others[0].clone(),
        ..api.clone()
    };
    let records = survivor.read_all("failover", 0).await;
    check_history(&acks, &records);

    // The dead broker comes back, truncates what it must, catches up, and rejoins.
    cluster.restart_broker(leader).await.expect("restart");
    wait_fully_in_sync(&survivor, "failover", 0).await;
    let (_, end) = survivor
        .get(&format!(
            "{}/partitions/0/offsets",
            survivor.topic_url("failover")
        ))
        .await;
    let restarted_api = Api::new(&cluster, leader as usize - 1);
    let again = restarted_api.read_all("failover", 0).await;
    assert_eq!(
        again.len() as i64,
        end["latest_offset"].as_i64().expect("end")
    );
    check_history(&acks, &again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_leader_paused_past_its_lease_when_it_resumes_then_its_late_writes_are_not_acknowledged_and_its_tail_is_cut()
 {
    let mut cluster = cluster(3, &FAST).await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "paused", 1, &[("min.insync.replicas", "2")]).await;
    wait_fully_in_sync(&api, "paused", 0).await;
    let old = describe(&api, "paused", 0).await["leader_id"]
        .as_u64()
        .expect("leader") as u32;
    let old_api = Api::new(&cluster, old as usize - 1);
    let other = (1..=3u32).find(|&b| b != old).expect("another broker");
    let other_api = Api::new(&cluster, other as usize - 1);
    for i in 0..5 {
        old_api
            .produce(
                "paused",
                json!({"value": {"type": "JSON", "data": {"before": i}}}),
            )
            .await;
    }
    cluster.broker(old).signal(libc::SIGSTOP).expect("sigstop");
    // A write sent straight to the paused leader waits in its socket.
    let late = {
        let old_api = old_api.clone();
        tokio::spawn(async move {
            let url = format!("{}/records?acks=all", old_api.topic_url("paused"));
            old_api
                .http
                .post(&url)
                .json(
                    &json!({"partition_id": 0, "value": {"type": "JSON", "data": {"late": true}}}),
                )
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    };
    // A new leader is elected and takes writes.
    let elected = eventually(Duration::from_secs(15), async || {
        let state = describe(&other_api, "paused", 0).await;
        state["leader_id"]
            .as_u64()
            .is_some_and(|l| l != u64::from(old))
    })
    .await;
    assert!(elected, "no new leader while the old one was paused");
    let mut acked_new = Vec::new();
    for i in 0..5 {
        let (_, offset) = other_api
            .produce(
                "paused",
                json!({"value": {"type": "JSON", "data": {"after": i}}}),
            )
            .await;
        acked_new.push(offset);
    }
    cluster.broker(old).signal(libc::SIGCONT).expect("sigcont");
    let late_status = late.await.expect("late write");
    // The old leader may not acknowledge the late write unless it really is committed.
    let committed = other_api.read_all("paused", 0).await;
    let late_stored = committed.iter().any(|r| r["value"]["data"]["late"] == true);
    if late_status == 200 {
        assert!(
            late_stored,
            "the old leader acknowledged a write that the new leader does not have"
        );
    }
    // The old leader rejoins as a follower with the new leader's log, divergent tail cut.
    let rejoined = eventually(Duration::from_secs(20), async || {
        let mut theirs = Vec::new();
        for index in 0..3 {
            theirs.push(Api::new(&cluster, index).read_all("paused", 0).await);
        }
        isr(&describe(&other_api, "paused", 0).await).len() == 3
            && theirs.iter().all(|t| *t == theirs[0])
    })
    .await;
    assert!(
        rejoined,
        "the old leader did not converge on the new leader's log"
    );
    let records = other_api.read_all("paused", 0).await;
    for offset in acked_new {
        assert!(records[offset as usize]["value"]["data"]["after"].is_u64());
    }
    assert_eq!(
        records
            .iter()
            .filter(|r| r["value"]["data"]["before"].is_u64())
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_follower_is_killed_then_the_isr_shrinks_writes_go_on_and_it_rejoins_after_restart()
{
    let mut cluster = cluster(3, &FAST).await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "follower", 1, &[("min.insync.replicas", "2")]).await;
    wait_fully_in_sync(&api, "follower", 0).await;
    let leader = describe(&api, "follower", 0).await["leader_id"]
        .as_u64()
        .expect("leader") as u32;
    let leader_api = Api::new(&cluster, leader as usize - 1);
    let follower = (1..=3u32).find(|&b| b != leader).expect("a follower");
    cluster.broker(follower).kill().expect("kill follower");
    let shrunk = eventually(Duration::from_secs(15), async || {
        let mut now = isr(&describe(&leader_api, "follower", 0).await);
        now.sort_unstable();
        now == (1..=3u64)
            .filter(|&b| b != u64::from(follower))
            .collect::<Vec<_>>()
    })
    .await;
    assert!(
        shrunk,
        "the in-sync set did not shrink: {}",
        describe(&leader_api, "follower", 0).await
    );
    for i in 0..10 {
        let (_, offset) = leader_api
            .produce("follower", json!({"value": {"type": "JSON", "data": i}}))
            .await;
        assert_eq!(offset, i);
    }
    cluster
        .restart_broker(follower)
        .await
        .expect("restart follower");
    wait_fully_in_sync(&leader_api, "follower", 0).await;
    let restarted = Api::new(&cluster, follower as usize - 1);
    assert_eq!(restarted.read_all("follower", 0).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_of_three_replicas_die_with_min_isr_two_then_acks_all_is_refused_until_one_returns()
 {
    let mut cluster = cluster(3, &FAST).await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "quorum", 1, &[("min.insync.replicas", "2")]).await;
    wait_fully_in_sync(&api, "quorum", 0).await;
    let leader = describe(&api, "quorum", 0).await["leader_id"]
        .as_u64()
        .expect("leader") as u32;
    let mut acked = Vec::new();
    for i in 0..10 {
        acked.push(
            api.produce("quorum", json!({"value": {"type": "JSON", "data": i}}))
                .await
                .1,
        );
    }
    // Kill the leader and one follower; the survivor leads alone.
    let follower = (1..=3u32).find(|&b| b != leader).expect("a follower");
    let survivor = (1..=3u32)
        .find(|&b| b != leader && b != follower)
        .expect("the survivor");
    cluster.broker(leader).kill().expect("kill leader");
    cluster.broker(follower).kill().expect("kill follower");
    let survivor_api = Api::new(&cluster, survivor as usize - 1);
    let url = format!("{}/records?acks=all", survivor_api.topic_url("quorum"));
    let refused = eventually(Duration::from_secs(20), async || {
        let (status, body) = survivor_api
            .post_json(&url, &json!({"value": {"type": "JSON", "data": "refused"}}))
            .await;
        status == 503 && body["error_code"] == 50304
    })
    .await;
    assert!(
        refused,
        "acks=all was not refused with NOT_ENOUGH_REPLICAS: {}",
        describe(&survivor_api, "quorum", 0).await
    );
    // acks=1 still works on the lone leader.
    let (status, _) = survivor_api
        .post_json(
            &format!("{}/records?acks=1", survivor_api.topic_url("quorum")),
            &json!({"value": {"type": "JSON", "data": "one"}}),
        )
        .await;
    assert_eq!(status, 200);
    // One replica returns: service resumes.
    cluster.restart_broker(follower).await.expect("restart");
    let resumed = eventually(Duration::from_secs(30), async || {
        survivor_api
            .post_json(&url, &json!({"value": {"type": "JSON", "data": "resumed"}}))
            .await
            .0
            == 200
    })
    .await;
    assert!(
        resumed,
        "acks=all did not resume: {}",
        describe(&survivor_api, "quorum", 0).await
    );
    let records = survivor_api.read_all("quorum", 0).await;
    for (i, offset) in acked.iter().enumerate() {
        assert_eq!(
            records[*offset as usize]["value"]["data"], i,
            "acknowledged record lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_load_when_etcd_restarts_then_no_acknowledged_record_is_lost() {
    let cluster = cluster(
        3,
        &[
            "--lease-ttl-secs",
            "3",
            "--replica-lag-time-max-ms",
            "3000",
            "--replica-ack-timeout-ms",
            "5000",
        ],
    )
    .await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "etcd", 1, &[("min.insync.replicas", "2")]).await;
    wait_fully_in_sync(&api, "etcd", 0).await;
    let stop = Arc::new(AtomicBool::new(false));
    let producers = spawn_producers(&api, cluster.broker_urls(), "etcd", 2, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.etcd().kill(libc::SIGKILL).expect("kill etcd");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.etcd().restart().await.expect("restart etcd");
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for producer in producers {
        acks.extend(producer.await.expect("producer"));
    }
    assert!(!acks.is_empty());
    // Writes resume once etcd is back.
    let resumed = eventually(Duration::from_secs(20), async || {
        api.post_json(
            &format!("{}/records", api.topic_url("etcd")),
            &json!({"partition_id": 0, "value": {"type": "JSON", "data": "after"}}),
        )
        .await
        .0 == 200
    })
    .await;
    assert!(resumed, "writes did not resume after the etcd restart");
    let records = api.read_all("etcd", 0).await;
    check_history(&acks, &records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_every_broker_restarts_at_once_then_all_acknowledged_data_is_there() {
    let mut cluster = cluster(3, &FAST).await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "everyone", 2, &[("min.insync.replicas", "2")]).await;
    wait_fully_in_sync(&api, "everyone", 0).await;
    wait_fully_in_sync(&api, "everyone", 1).await;
    let mut acked = Vec::new();
    for i in 0..30 {
        let partition = i % 2;
        acked.push((
            partition,
            api.produce(
                "everyone",
                json!({"partition_id": partition, "value": {"type": "JSON", "data": i}}),
            )
            .await
            .1,
            i,
        ));
    }
    for broker in 1..=3 {
        cluster.broker(broker).kill().expect("kill");
    }
    for broker in 1..=3 {
        cluster.broker(broker).start().expect("start");
    }
    cluster.wait_ready().await.expect("ready again");
    let back = eventually(Duration::from_secs(30), async || {
        let mut ok = true;
        for partition in 0..2 {
            ok &= api.read("everyone", partition, "earliest", "").await.0 == 200
                && api.read_all("everyone", partition).await.len() == 15;
        }
        ok
    })
    .await;
    assert!(back, "data not served after restarting every broker");
    for (partition, offset, value) in acked {
        let records = api.read_all("everyone", partition).await;
        assert_eq!(records[offset as usize]["value"]["data"], value);
    }
    // And the partitions take writes again with acks=all.
    let writable = eventually(Duration::from_secs(30), async || {
        api.post_json(
            &format!("{}/records", api.topic_url("everyone")),
            &json!({"partition_id": 0, "value": {"type": "JSON", "data": "again"}}),
        )
        .await
        .0 == 200
    })
    .await;
    assert!(writable, "acks=all writes did not resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_preferred_replica_returns_then_leadership_moves_back_automatically_and_on_request()
 {
    let mut cluster = cluster(
        3,
        &[
            "--lease-ttl-secs",
            "2",
            "--replica-lag-time-max-ms",
            "2000",
            "--leader-imbalance-check-interval-ms",
            "1000",
        ],
    )
    .await;
    let api = Api::new(&cluster, 0);
    create_replicated(&api, "preferred", 1, &[]).await;
    wait_fully_in_sync(&api, "preferred", 0).await;
    let state = describe(&api, "preferred", 0).await;
    let preferred = state["replicas"][0].as_u64().expect("preferred") as u32;
    assert_eq!(state["leader_id"], preferred);
    let other = Api::new(
        &cluster,
        (1..=3u32).find(|&b| b != preferred).expect("another") as usize - 1,
    );
    cluster
        .broker(preferred)
        .kill()
        .expect("kill the preferred leader");
    let moved = eventually(Duration::from_secs(15), async || {
        describe(&other, "preferred", 0).await["leader_id"]
            .as_u64()
            .is_some_and(|l| l != u64::from(preferred))
    })
    .await;
    assert!(moved, "no failover");
    cluster.restart_broker(preferred).await.expect("restart");
    let back = eventually(Duration::from_secs(30), async || {
        describe(&other, "preferred", 0).await["leader_id"] == preferred
    })
    .await;
    assert!(
        back,
        "leadership did not move back: {}",
        describe(&other, "preferred", 0).await
    );
    let (status, _) = other
        .post_json(
            &format!(
                "{}/v3/clusters/{}/preferred-leader-election",
                other.base, other.cluster_id
            ),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    let (_, offset) = other
        .produce(
            "preferred",
            json!({"value": {"type": "JSON", "data": "after"}}),
        )
        .await;
    assert_eq!(offset, 0);
}
