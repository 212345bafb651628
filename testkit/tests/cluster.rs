//! Pins [`Cluster`]'s coordinator support: coordinators start after the brokers on their own
//! ports with the cluster's etcd and prefix, can be killed and restarted, and keep their logs
//! under the cluster root. It runs the real broker and coordinator of this target dir.

mod support;

use std::time::Duration;

use runnel_testkit::Cluster;

#[tokio::test]
async fn given_two_coordinators_when_one_is_restarted_should_answer_ready_again() {
    let Some(coordinator_bin) = support::coordinator_bin() else {
        return;
    };
    let mut cluster = Cluster::builder()
        .brokers(1)
        .broker_bin(support::broker_bin())
        .coordinators(2)
        .coordinator_bin(coordinator_bin)
        .ready_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("cluster with coordinators starts");
    let urls = cluster.coordinator_urls();
    assert_eq!(urls.len(), 2);
    assert_ne!(urls[0], urls[1]);
    assert!(!urls.contains(&cluster.broker_urls()[0]));
    for url in &urls {
        let status = cluster
            .http()
            .get(format!("{url}/readyz"))
            .send()
            .await
            .expect("GET /readyz")
            .status();
        assert_eq!(status, 200, "{url}");
    }
    let endpoint = cluster.etcd().endpoint().to_owned();
    let prefix = cluster.etcd_prefix().to_owned();
    let args: Vec<String> = cluster
        .coordinator(2)
        .spec()
        .args
        .iter()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    for expected in [
        "--id",
        "2",
        "--advertised-url",
        &urls[1],
        "--etcd-endpoints",
        &endpoint,
        "--etcd-prefix",
        &prefix,
    ] {
        assert!(
            args.iter().any(|arg| arg == expected),
            "{expected} in {args:?}"
        );
    }
    assert!(!args.iter().any(|arg| arg == "--data-dir"), "{args:?}");

    let first_pid = cluster.coordinator(1).pid();
    cluster
        .coordinator(1)
        .kill()
        .expect("SIGKILL coordinator 1");
    assert!(!cluster.coordinator(1).is_running());
    cluster
        .restart_coordinator(1)
        .await
        .expect("coordinator 1 restarts");
    assert_ne!(cluster.coordinator(1).pid(), first_pid);
    cluster.wait_ready().await.expect("all ready");
    assert_eq!(cluster.coordinators().len(), 2);
    assert!(cluster.root().join("coordinator-1").is_dir());
    assert!(cluster.root().join("logs/coordinator-1.log").is_file());
}
