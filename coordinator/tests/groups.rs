//! Consumer groups end to end: real etcd, broker and coordinator processes; every request
//! goes through a broker, as a curl user's would.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Client, cluster, cluster_with, committed, drain};

#[tokio::test]
async fn instances_share_a_group_groups_broadcast_and_joiners_take_partitions() {
    let cluster = cluster(1, 1).await;
    let client = Client::new(&cluster, 0);
    client.create_topic("t", 4, 1).await;
    client.produce("t", 4, 0, 200).await;

    client.instance("a", "a1", false).await;
    client.instance("a", "a2", false).await;
    client.instance("b", "b1", false).await;
    let a = drain(&client, "a", &["a1", "a2"], 200).await;
    let b = drain(&client, "b", &["b1"], 200).await;

    // Group a: every record exactly once, over both instances, and no partition read by both.
    let mut seen = BTreeSet::new();
    for records in a.values() {
        for r in records {
            assert!(
                seen.insert(r.2),
                "record {} delivered twice in group a",
                r.2
            );
        }
    }
    assert_eq!(seen.len(), 200);
    let parts = |name: &str| a[name].iter().map(|r| r.0).collect::<BTreeSet<_>>();
    assert!(
        parts("a1").is_disjoint(&parts("a2")),
        "a partition had two consumers"
    );
    // Group b sees everything too (broadcast across groups), in order per partition.
    assert_eq!(b["b1"].len(), 200);
    for p in 0..4 {
        let offsets: Vec<i64> = b["b1"].iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order"
        );
    }

    // A third instance joins: it gets partitions, and the others keep part of theirs.
    let before1 = client.assigned("a", "a1").await;
    let before2 = client.assigned("a", "a2").await;
    assert_eq!(before1.len() + before2.len(), 4);
    client.instance("a", "a3", false).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut s1, mut s2, mut s3) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    while Instant::now() < deadline {
        for name in ["a1", "a2", "a3"] {
            client.poll("a", name).await;
        }
        s1 = client.assigned("a", "a1").await;
        s2 = client.assigned("a", "a2").await;
        s3 = client.assigned("a", "a3").await;
        if !s3.is_empty() && s1.len() + s2.len() + s3.len() == 4 {
            break;
        }
    }
    assert!(!s3.is_empty(), "the joiner got nothing");
    assert!(
        !s1.is_empty() && s1.is_subset(&before1),
        "a1 lost all: {before1:?} -> {s1:?}"
    );
    assert!(
        !s2.is_empty() && s2.is_subset(&before2),
        "a2 lost all: {before2:?} -> {s2:?}"
    );
    assert!(s1.is_disjoint(&s2) && s1.is_disjoint(&s3) && s2.is_disjoint(&s3));

    // More instances than partitions: the extras stay idle.
    client.instance("a", "a4", false).await;
    client.instance("a", "a5", false).await;
    let names = ["a1", "a2", "a3", "a4", "a5"];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut sizes = Vec::new();
    while Instant::now() < deadline {
        sizes.clear();
        for name in names {
            client.poll("a", name).await;
            sizes.push(client.assigned("a", name).await.len());
        }
        if sizes.iter().sum::<usize>() == 4 && sizes.iter().filter(|s| **s == 0).count() == 1 {
            break;
        }
    }
    assert_eq!(sizes.iter().sum::<usize>(), 4, "{sizes:?}");
    assert_eq!(sizes.iter().filter(|s| **s == 0).count(), 1, "{sizes:?}");

    // Admin: both groups listed; group a described with its five members and assignments.
    let groups = format!("/v3/clusters/{}/consumer-groups", client.cluster_id);
    let (status, list) = client.call(reqwest::Method::GET, &groups, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|g| g["consumer_group_id"].as_str())
        .collect();
    assert!(ids.contains(&"a") && ids.contains(&"b"), "{ids:?}");
    let (status, a) = client
        .call(reqwest::Method::GET, &format!("{groups}/a"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["members"], 5);
    assert_eq!(a["partition_assignor"], "sticky");
    assert!(
        ["Stable", "Reconciling"].contains(&a["state"].as_str().unwrap_or("")),
        "{a}"
    );
    let (status, consumers) = client
        .call(reqwest::Method::GET, &format!("{groups}/a/consumers"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{consumers}");
    let held: usize = consumers["data"]
        .as_array()
        .expect("data")
        .iter()
        .flat_map(|m| m["assignments"].as_array().cloned().unwrap_or_default())
        .map(|t| t["partitions"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(held, 4, "{consumers}");
}

#[tokio::test]
async fn members_heartbeat_are_fenced_and_expire_and_bad_input_is_refused() {
    let cluster = cluster(1, 1).await;
    let client = Client::new(&cluster, 0);
    client.create_topic("t", 4, 1).await;
    let beat = |body: Value| {
        let client = &client;
        async move {
            client
                .call(reqwest::Method::POST, "/v1/groups/m/heartbeat", Some(body))
                .await
        }
    };
    let (status, m1) = beat(
        json!({"member_epoch": 0, "subscribed_topic_names": ["t"], "session_timeout_ms": 2000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m1}");
    assert_eq!(
        m1["assignment"][0]["partitions"].as_array().map(Vec::len),
        Some(4)
    );
    let id1 = m1["member_id"].as_str().expect("id").to_string();
    let (_, m2) = beat(
        json!({"member_epoch": 0, "subscribed_topic_names": ["t"], "session_timeout_ms": 2000}),
    )
    .await;
    let id2 = m2["member_id"].as_str().expect("id").to_string();
    assert!(
        m2["assignment"].as_array().is_some_and(Vec::is_empty),
        "{m2}"
    );

    // m1 is told to give two up; until it confirms, m2 gets nothing.
    let owned_all = json!([{"topic": "t", "partitions": [0, 1, 2, 3]}]);
    let (_, m1b) = beat(json!({"member_id": id1, "member_epoch": m1["member_epoch"], "owned_partitions": owned_all})).await;
    let kept = m1b["assignment"][0]["partitions"].clone();
    assert_eq!(kept.as_array().map(Vec::len), Some(2), "{m1b}");
    // A commit under a made-up epoch is fenced; one for a partition m1 no longer holds is refused.
    let (status, body) = client
        .call(reqwest::Method::POST, "/v1/groups/m/offsets", Some(json!({"member_id": id1, "member_epoch": 999, "offsets": [{"topic": "t", "partition": 0, "offset": 1}]})))
        .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::CONFLICT, Some(40903)),
        "{body}"
    );
    let revoked: Vec<u64> = (0..4)
        .filter(|p| !kept.as_array().expect("kept").contains(&json!(p)))
        .collect();
    let (status, body) = client
        .call(reqwest::Method::POST, "/v1/groups/m/offsets", Some(json!({"member_id": id2, "member_epoch": m2["member_epoch"], "offsets": [{"topic": "t", "partition": revoked[0], "offset": 1}]})))
        .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::CONFLICT, Some(40904)),
        "{body}"
    );
    let (_, _) = beat(json!({"member_id": id1, "member_epoch": m1b["member_epoch"], "owned_partitions": [{"topic": "t", "partitions": kept}]})).await;
    let (_, m2b) =
        beat(json!({"member_id": id2, "member_epoch": m2["member_epoch"], "owned_partitions": []}))
            .await;
    assert_eq!(
        m2b["assignment"][0]["partitions"].as_array().map(Vec::len),
        Some(2),
        "{m2b}"
    );
    let (status, body) = client
        .call(reqwest::Method::POST, "/v1/groups/m/offsets", Some(json!({"member_id": id2, "member_epoch": m2b["member_epoch"], "offsets": [{"topic": "t", "partition": revoked[0], "offset": 7}]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // m1 goes silent: within its 2 s session (plus the sweep) m2 holds all four.
    let silent = Instant::now();
    let mut epoch = m2b["member_epoch"].clone();
    let mut owned = m2b["assignment"].clone();
    let mut all = false;
    while silent.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, m) =
            beat(json!({"member_id": id2, "member_epoch": epoch, "owned_partitions": owned})).await;
        epoch = m["member_epoch"].clone();
        owned = m["assignment"].clone();
        if owned[0]["partitions"].as_array().map(Vec::len) == Some(4) {
            all = true;
            break;
        }
    }
    assert!(all, "m1's partitions never moved");
    assert!(
        silent.elapsed() < Duration::from_secs(5),
        "took {:?}",
        silent.elapsed()
    );

    // Bad input, each a JSON error with its code.
    let cases: Vec<(reqwest::Method, String, Option<Value>, StatusCode, u64)> = vec![
        (
            reqwest::Method::POST,
            "/v1/groups/m/heartbeat".into(),
            Some(json!({"member_id": "nobody", "member_epoch": 3})),
            StatusCode::NOT_FOUND,
            40406,
        ),
        (
            reqwest::Method::POST,
            "/v1/groups/m/heartbeat".into(),
            Some(json!({"member_epoch": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42205,
        ),
        (
            reqwest::Method::POST,
            "/v1/groups/m/heartbeat".into(),
            Some(json!({"member_epoch": 0, "subscribed_topic_regex": "("})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42205,
        ),
        (
            reqwest::Method::GET,
            "/consumers/m/instances/ghost/records".into(),
            None,
            StatusCode::NOT_FOUND,
            40403,
        ),
        (
            reqwest::Method::POST,
            "/consumers/m".into(),
            Some(json!({"format": "avro"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42205,
        ),
        (
            reqwest::Method::GET,
            format!(
                "/v3/clusters/{}/consumer-groups/nosuchgroup",
                client.cluster_id
            ),
            None,
            StatusCode::NOT_FOUND,
            40405,
        ),
        (
            reqwest::Method::POST,
            "/v1/groups/m/offsets".into(),
            Some(json!({"offsets": [{"topic": "t", "partition": 0, "offset": -5}]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            42205,
        ),
        (
            reqwest::Method::POST,
            "/v1/groups/m/offsets".into(),
            Some(json!({"offsets": [{"topic": "t", "partition": 9, "offset": 1}]})),
            StatusCode::NOT_FOUND,
            40402,
        ),
    ];
    for (method, path, body, want_status, want_code) in cases {
        let (status, answer) = client.call(method, &path, body).await;
        assert_eq!(
            (status, answer["error_code"].as_u64()),
            (want_status, Some(want_code)),
            "{path}: {answer}"
        );
    }
    // A manual assignment and a subscription exclude each other.
    let (status, _) = client
        .call(
            reqwest::Method::POST,
            "/consumers/m",
            Some(json!({"name": "manual"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            "/consumers/m/instances/manual/assignments",
            Some(json!({"partitions": [{"topic": "t", "partition": 0}]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            "/consumers/m/instances/manual/subscription",
            Some(json!({"topics": ["t"]})),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::CONFLICT, Some(40907)),
        "{body}"
    );
    let response = client
        .http
        .post(format!("{}/v1/groups/m/heartbeat", client.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error_code"], 40001);

    // The coordinator counts what happened.
    let metrics = client
        .http
        .get(format!("{}/metrics", cluster.coordinator_urls()[0]))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<u64>().ok())
    };
    assert_eq!(
        value("runnel_coordinator_offset_commits_total"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        value("runnel_coordinator_members_expired_total"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        value("runnel_coordinator_shards_loaded"),
        Some(4),
        "{metrics}"
    );
}

#[tokio::test]
async fn offsets_survive_a_coordinator_kill_and_reset_needs_an_empty_group() {
    let mut cluster = cluster(1, 2).await;
    let client = Client::new(&cluster, 0);
    client.create_topic("t", 4, 1).await;
    client.produce("t", 4, 0, 100).await;
    client.instance("g", "i1", true).await;
    let got = drain(&client, "g", &["i1"], 100).await;
    assert_eq!(got["i1"].len(), 100);
    // The next poll auto-commits what the last ones handed out.
    client.poll("g", "i1").await;
    let before = committed(&client, "g").await;
    assert_eq!(before.values().sum::<i64>(), 100, "{before:?}");

    // Kill the coordinator owning the group's shard; the standby takes the shard over.
    let (_, owner) = client
        .call(reqwest::Method::GET, "/v1/groups/g/coordinator", None)
        .await;
    let owner_id = owner["coordinator_id"].as_u64().expect("owner") as u32;
    cluster.coordinator(owner_id).kill().expect("kill");
    let killed = Instant::now();
    let after = committed(&client, "g").await;
    assert_eq!(
        after, before,
        "committed offsets changed across the takeover"
    );
    let (_, owner2) = client
        .call(reqwest::Method::GET, "/v1/groups/g/coordinator", None)
        .await;
    assert_ne!(owner2["coordinator_id"].as_u64(), Some(u64::from(owner_id)));
    eprintln!("shard takeover answered after {:?}", killed.elapsed());

    // The instance was rebuilt from the log and reads on from the committed offsets.
    client.produce("t", 4, 100, 20).await;
    let more = drain(&client, "g", &["i1"], 20).await;
    let ns: BTreeSet<u64> = more["i1"].iter().map(|r| r.2).collect();
    assert_eq!(ns, (100..120).collect(), "after takeover");

    // Reset refuses while the instance is subscribed, then works once the group is empty.
    let reset = format!(
        "/v3/clusters/{}/consumer-groups/g/offsets:reset",
        client.cluster_id
    );
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            &reset,
            Some(json!({"to": "earliest"})),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::CONFLICT, Some(40905)),
        "{body}"
    );
    let (status, _) = client
        .call(reqwest::Method::DELETE, "/consumers/g/instances/i1", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            &reset,
            Some(json!({"to": "earliest"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(committed(&client, "g").await.values().all(|o| *o == 0));
    let (status, body) = client
        .call(
            reqwest::Method::POST,
            &reset,
            Some(
                json!({"to": "offsets", "offsets": [{"topic": "t", "partition": 1, "offset": 5}]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(committed(&client, "g").await.get(&1), Some(&5));
    let (status, body) = client
        .call(
            reqwest::Method::GET,
            &format!("/v3/clusters/{}/consumer-groups/g/lags", client.cluster_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total_lag"].as_i64(), Some(120 - 5));
    let group = format!("/v3/clusters/{}/consumer-groups/g", client.cluster_id);
    let (status, _) = client.call(reqwest::Method::DELETE, &group, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = client.call(reqwest::Method::GET, &group, None).await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40405))
    );
}

#[tokio::test]
async fn a_rest_consumer_carries_on_through_another_broker() {
    let mut cluster = cluster(2, 1).await;
    let first = Client::new(&cluster, 0);
    let second = Client::new(&cluster, 1);
    first.create_topic("t", 2, 2).await;
    first.produce("t", 2, 0, 100).await;
    first.instance("g", "i", false).await;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < 50 && Instant::now() < deadline {
        got.extend(first.poll("g", "i").await);
    }
    let (status, _) = first
        .call(
            reqwest::Method::POST,
            "/consumers/g/instances/i/offsets",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    cluster.broker(1).kill().expect("kill broker 1");
    second.produce("t", 2, 100, 20).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.iter().map(|r| r.2).collect::<BTreeSet<_>>().len() < 120 && Instant::now() < deadline
    {
        got.extend(second.poll("g", "i").await);
    }
    let ns: Vec<u64> = got.iter().map(|r| r.2).collect();
    let distinct: BTreeSet<u64> = ns.iter().copied().collect();
    assert_eq!(distinct, (0..120).collect(), "a record was skipped");
    assert_eq!(
        ns.len(),
        distinct.len(),
        "a record was repeated though nothing was uncommitted at the kill"
    );
}

#[tokio::test]
async fn an_idle_instance_expires_and_its_partitions_move_to_the_rest() {
    let cluster = cluster_with(1, 1, &["--instance-timeout-ms", "2000"]).await;
    let client = Client::new(&cluster, 0);
    client.create_topic("t", 4, 1).await;
    client.produce("t", 4, 0, 40).await;
    client.instance("x", "i1", true).await;
    client.instance("x", "i2", true).await;
    let got = drain(&client, "x", &["i1", "i2"], 40).await;
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 40);
    let i1_parts: BTreeSet<u32> = got["i1"].iter().map(|r| r.0).collect();
    // i1's auto-commit happens on its next poll; then it goes silent.
    client.poll("x", "i1").await;
    client.produce("t", 4, 40, 40).await;
    let quiet = Instant::now();
    let mut late: Vec<(u32, i64, u64)> = Vec::new();
    while quiet.elapsed() < Duration::from_secs(15) {
        late.extend(client.poll("x", "i2").await);
        if client.assigned("x", "i2").await.len() == 4
            && late.iter().map(|r| r.2).collect::<BTreeSet<_>>().len() == 40
        {
            break;
        }
    }
    assert_eq!(
        client.assigned("x", "i2").await.len(),
        4,
        "i1's partitions never moved"
    );
    let ns: BTreeSet<u64> = late.iter().map(|r| r.2).collect();
    assert_eq!(ns, (40..80).collect(), "records after i1 went idle");
    assert!(
        late.iter()
            .filter(|r| i1_parts.contains(&r.0))
            .all(|r| r.2 >= 40),
        "what i1 consumed and committed was delivered again"
    );
    let (status, body) = client
        .send(
            reqwest::Method::GET,
            "/consumers/x/instances/i1/records",
            None,
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(40403))
    );
    // What the group committed, through the REST Proxy shape.
    let (status, body) = client
        .send(
            reqwest::Method::GET,
            "/consumers/x/instances/i2/offsets",
            Some(json!({"partitions": [{"topic": "t", "partition": 0}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["offsets"][0]["partition"], 0);
    assert!(
        body["offsets"][0]["offset"]
            .as_i64()
            .is_some_and(|o| o >= 10)
    );
}
