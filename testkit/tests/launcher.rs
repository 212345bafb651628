//! Pins the launcher's contract (`scripts/cluster` runs `runnel-cluster`): `up` starts detached
//! processes and writes `cluster.env`, refuses while the cluster runs, `kill`/`start` rewrite
//! a pid, `down` stops everything keeping data, and `up` again brings back the same endpoint
//! with the same data. It runs an etcd-only cluster (`--brokers 0`) so it needs no broker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use runnel_testkit::pid::{PidState, state};

// Base64 of "launcher" and "kept", for etcd's JSON gateway.
const KEY: &str = "bGF1bmNoZXI=";
const VALUE: &str = "a2VwdA==";

/// Runs `down` when dropped, so a failing test leaves no detached etcd behind.
struct Launcher {
    dir: PathBuf,
    _root: tempfile::TempDir,
}

impl Launcher {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        Launcher {
            dir: root.path().join("cluster"),
            _root: root,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new(env!("CARGO_BIN_EXE_runnel-cluster"))
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .env_remove("RUNNEL_DIR")
            .env_remove("RUNNEL_BROKER_BIN")
            .output()
            .expect("run runnel-cluster");
        eprintln!(
            "$ runnel-cluster {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "runnel-cluster {args:?} failed: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn env(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(self.dir.join("cluster.env")).expect("read cluster.env");
        text.lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.trim_matches('\'').to_owned()))
            .collect()
    }

    fn etcd_pid(&self) -> Option<u32> {
        self.env()
            .get("RUNNEL_ETCD_PID")
            .map(|pid| pid.parse().expect("numeric pid"))
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

fn alive(pid: u32, data_dir: &Path) -> bool {
    state(pid, Some(data_dir.as_os_str())) != PidState::Gone
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

#[tokio::test]
async fn given_a_cluster_dir_when_up_kill_start_down_up_should_keep_endpoint_and_data() {
    let launcher = Launcher::new();
    launcher.ok(&["up", "--brokers", "0"]);
    let env = launcher.env();
    let dir = launcher.dir.canonicalize().expect("cluster dir");
    let etcd_data = dir.join("etcd");
    assert_eq!(env["RUNNEL_DIR"], dir.display().to_string());
    assert_eq!(env["RUNNEL_BROKERS"], "");
    let endpoint = env["RUNNEL_ETCD_ENDPOINTS"].clone();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let first_pid = launcher.etcd_pid().expect("etcd pid in cluster.env");
    assert!(alive(first_pid, &etcd_data));
    let put = http()
        .post(format!("{endpoint}/v3/kv/put"))
        .json(&serde_json::json!({ "key": KEY, "value": VALUE }))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);

    let again = launcher.run(&["up"]);
    assert!(!again.status.success(), "a second up must refuse");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    launcher.ok(&["kill", "etcd", "--signal", "KILL"]);
    assert!(!alive(first_pid, &etcd_data));
    assert_eq!(
        launcher.etcd_pid(),
        None,
        "kill drops the pid from cluster.env"
    );
    assert_ne!(launcher.run(&["status"]).status.code(), Some(0));
    launcher.ok(&["start", "etcd"]);
    let second_pid = launcher.etcd_pid().expect("start writes the new pid");
    assert_ne!(second_pid, first_pid);
    launcher.ok(&["status"]);

    launcher.ok(&["down"]);
    assert!(!alive(second_pid, &etcd_data));
    assert_eq!(
        launcher.etcd_pid(),
        None,
        "down drops the pid from cluster.env"
    );
    assert!(
        launcher.ok(&["down"]).contains("not running"),
        "down is idempotent"
    );

    launcher.ok(&["up"]);
    assert_eq!(
        launcher.env()["RUNNEL_ETCD_ENDPOINTS"],
        endpoint,
        "up again reuses the ports"
    );
    let range: serde_json::Value = http()
        .post(format!("{endpoint}/v3/kv/range"))
        .json(&serde_json::json!({ "key": KEY }))
        .send()
        .await
        .expect("range")
        .json()
        .await
        .expect("range json");
    assert_eq!(
        range["kvs"][0]["value"], VALUE,
        "data survives down and up: {range}"
    );
}

#[test]
fn given_no_cluster_when_down_should_fail_politely() {
    let launcher = Launcher::new();
    let output = launcher.run(&["down"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no cluster in"));
}
