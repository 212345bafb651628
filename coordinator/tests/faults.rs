//! Coordinator faults: a paused owner is replaced and cannot change what the group
//! committed; groups come back after etcd restarts.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::{Client, cluster, committed, drain};

async fn owner(client: &Client, group: &str) -> (u32, String) {
    let (status, body) = client
        .call(
            reqwest::Method::GET,
            &format!("/v1/groups/{group}/coordinator"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["coordinator_id"].as_u64().expect("id") as u32,
        body["url"].as_str().expect("url").to_string(),
    )
}

async fn commit(client: &Client, base: &str, group: &str, offset: i64) -> StatusCode {
    client
        .http
        .post(format!("{base}/v1/groups/{group}/offsets"))
        .header("content-type", "application/json")
        .body(json!({"offsets": [{"topic": "t", "partition": 0, "offset": offset}]}).to_string())
        .send()
        .await
        .map_or(StatusCode::SERVICE_UNAVAILABLE, |r| r.status())
}

#[tokio::test]
async fn a_paused_owner_is_replaced_and_cannot_change_committed_offsets() {
    let mut cluster = cluster(1, 2).await;
    let client = Client::new(&cluster, 0);
    client.create_topic("t", 2, 1).await;
    assert_eq!(commit(&client, &client.base, "p", 10).await, StatusCode::OK);
    let (old, old_url) = owner(&client, "p").await;
    let standby = 3 - old;

    // Pause the owner past its 3 s lease: the standby claims the shard and replays it.
    cluster
        .coordinator(old)
        .signal(libc::SIGSTOP)
        .expect("SIGSTOP");
    let paused = Instant::now();
    let mut moved = false;
    while paused.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if owner(&client, "p").await.0 == standby {
            moved = true;
            break;
        }
    }
    assert!(moved, "the standby never took the shard over");
    let deadline = Instant::now() + Duration::from_secs(20);
    while commit(&client, &client.base, "p", 20).await != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the new owner never accepted a commit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The old owner wakes up believing it owns the shard. A commit sent straight to it is
    // either refused (its lease clock ran out) or relayed to the new owner; it never writes
    // under its old epoch.
    cluster
        .coordinator(old)
        .signal(libc::SIGCONT)
        .expect("SIGCONT");
    let direct = commit(&client, &old_url, "p", 99).await;
    let expected = if direct == StatusCode::OK { 99 } else { 20 };
    assert!(
        direct == StatusCode::OK || direct == StatusCode::SERVICE_UNAVAILABLE,
        "unexpected answer {direct}"
    );
    assert_eq!(committed(&client, "p").await.get(&0), Some(&expected));

    // Kill the new owner: the old one replays the shard and finds exactly what was accepted.
    cluster.coordinator(standby).kill().expect("kill");
    let deadline = Instant::now() + Duration::from_secs(20);
    while owner(&client, "p").await.0 != old {
        assert!(
            Instant::now() < deadline,
            "the old coordinator never took the shard back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(committed(&client, "p").await.get(&0), Some(&expected));
}

#[tokio::test]
async fn groups_come_back_after_an_etcd_restart() {
    let cluster = cluster(1, 1).await;
    let client = Client::new(&cluster, 0);
    client.create_topic("t", 2, 1).await;
    client.produce("t", 2, 0, 50).await;
    client.instance("g", "i", false).await;
    let first = drain(&client, "g", &["i"], 50).await;
    assert_eq!(first["i"].len(), 50);
    let (status, _) = client
        .call(
            reqwest::Method::POST,
            "/consumers/g/instances/i/offsets",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    cluster.etcd().kill(libc::SIGKILL).expect("kill etcd");
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.etcd().restart().await.expect("restart etcd");
    client.produce("t", 2, 50, 50).await;

    // The instance is rebuilt from the offsets log and reads on from what was committed.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = BTreeSet::new();
    let mut repeated = Vec::new();
    while seen.len() < 50 && Instant::now() < deadline {
        let (status, body) = client
            .send(
                reqwest::Method::GET,
                "/consumers/g/instances/i/records?timeout=200",
                None,
            )
            .await;
        if status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        for record in body.as_array().into_iter().flatten() {
            let n = record["value"]["n"].as_u64().expect("n");
            if n < 50 {
                repeated.push(n);
            }
            seen.insert(n);
        }
    }
    assert_eq!(seen, (50..100).collect(), "records after the restart");
    assert!(
        repeated.is_empty(),
        "committed records delivered again: {repeated:?}"
    );
}
