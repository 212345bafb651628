//! The cluster under test: its brokers and id as `DIR/cluster.env` lists them, the
//! partition state the brokers report, and kills and restarts through the
//! `runnel-cluster` launcher next to this executable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Client;
use serde::Deserialize;

use crate::http;

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Broker id (what `runnel-cluster kill` takes).
    pub id: u32,
    /// Base URL.
    pub url: String,
}

/// What `DIR/cluster.env` says about the cluster.
#[derive(Debug, Clone)]
pub struct ClusterEnv {
    /// The brokers, in id order.
    pub brokers: Vec<Broker>,
    /// The cluster id used in v3 paths.
    pub cluster_id: String,
}

impl ClusterEnv {
    /// Reads `dir/cluster.env`.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("cluster.env");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the `export NAME=value` lines of a `cluster.env`. Broker ids come from
    /// `RUNNEL_BROKER_<id>_URL`; without those, `RUNNEL_BROKERS` is taken in id order from 1.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                continue;
            }
            if let Some((name, value)) = line.split_once('=') {
                vars.insert(name.trim().to_owned(), unquote(value.trim()));
            }
        }
        let cluster_id = vars
            .get("RUNNEL_CLUSTER_ID")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or("no RUNNEL_CLUSTER_ID (is the cluster up?)")?;
        let listed: Vec<String> = vars
            .get("RUNNEL_BROKERS")
            .map(|v| {
                v.split(',')
                    .map(|u| u.trim().trim_end_matches('/').to_owned())
                    .filter(|u| !u.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut brokers: Vec<Broker> = vars
            .iter()
            .filter_map(|(name, url)| {
                let id = name.strip_prefix("RUNNEL_BROKER_")?.strip_suffix("_URL")?;
                Some(Broker {
                    id: id.parse().ok()?,
                    url: url.trim_end_matches('/').to_owned(),
                })
            })
            .collect();
        if brokers.is_empty() {
            brokers = (1..)
                .zip(listed)
                .map(|(id, url)| Broker { id, url })
                .collect();
        }
        brokers.sort_by_key(|b| b.id);
        if brokers.is_empty() {
            return Err("no brokers listed (RUNNEL_BROKERS)".into());
        }
        Ok(ClusterEnv {
            brokers,
            cluster_id,
        })
    }

    /// The URL of broker `id`.
    pub fn url(&self, id: u32) -> Option<&str> {
        self.brokers
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.url.as_str())
    }
}

/// Undoes the single quotes `cluster.env` puts around odd values.
fn unquote(value: &str) -> String {
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace(r"'\''", "'"),
        None => value.to_owned(),
    }
}

/// A partition as `GET .../partitions/{p}` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct PartitionState {
    /// The leader's broker id; `None` while there is none.
    pub leader_id: Option<u32>,
    /// The leader epoch.
    #[serde(default)]
    pub leader_epoch: u32,
    /// Assigned replicas.
    #[serde(default)]
    pub replicas: Vec<u32>,
    /// In-sync replicas.
    #[serde(default)]
    pub isr: Vec<u32>,
    /// First offset still stored (unknown when the leader did not answer).
    pub earliest_offset: Option<i64>,
    /// The high watermark (unknown when the leader did not answer).
    pub latest_offset: Option<i64>,
}

impl PartitionState {
    /// A leader is known and every one of at least `replicas` assigned replicas is in sync.
    pub fn fully_in_sync(&self, replicas: usize) -> bool {
        let mut isr = self.isr.clone();
        let mut all = self.replicas.clone();
        isr.sort_unstable();
        all.sort_unstable();
        self.leader_id.is_some() && all.len() >= replicas && isr == all
    }
}

/// Asks the broker at `base` about partition `partition` of `topic`.
pub async fn partition(
    client: &Client,
    base: &str,
    cluster: &str,
    topic: &str,
    partition: u32,
) -> Result<PartitionState, String> {
    let url = format!("{base}/v3/clusters/{cluster}/topics/{topic}/partitions/{partition}");
    let body = http::send(client.get(&url))
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: bad answer: {e}"))
}

/// The `runnel-cluster` launcher acting on one cluster directory.
#[derive(Debug, Clone)]
pub struct Launcher {
    bin: PathBuf,
    dir: PathBuf,
}

impl Launcher {
    /// The `runnel-cluster` binary in the directory of the running executable.
    pub fn beside_current_exe(dir: &Path) -> Result<Self, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the current executable: {e}"))?;
        let bin = exe
            .parent()
            .map(|p| p.join("runnel-cluster"))
            .ok_or("the current executable has no directory")?;
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with cargo build --release -p runnel-testkit",
                bin.display()
            ));
        }
        Ok(Launcher {
            bin,
            dir: dir.to_owned(),
        })
    }

    /// `runnel-cluster kill <id> --signal KILL --dir DIR`: returns once the process is gone.
    pub async fn sigkill(&self, id: u32, limit: Duration) -> Result<(), String> {
        let id = id.to_string();
        self.run(&["kill", &id, "--signal", "KILL"], limit).await
    }

    /// `runnel-cluster start <id> --dir DIR`: returns once the broker is ready.
    pub async fn start(&self, id: u32, limit: Duration) -> Result<(), String> {
        let id = id.to_string();
        self.run(&["start", &id], limit).await
    }

    /// Runs the launcher with `args` and `--dir`, within `limit` (killed past it).
    async fn run(&self, args: &[&str], limit: Duration) -> Result<(), String> {
        let shown = format!(
            "runnel-cluster {} --dir {}",
            args.join(" "),
            self.dir.display()
        );
        let child = tokio::process::Command::new(&self.bin)
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{shown}: cannot run {}: {e}", self.bin.display()))?;
        let out = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| format!("{shown}: no answer within {limit:?} (killed)"))?
            .map_err(|e| format!("{shown}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&out.stderr);
            let text = if text.trim().is_empty() {
                String::from_utf8_lossy(&out.stdout)
            } else {
                text
            };
            Err(format!("{shown}: {}: {}", out.status, text.trim()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_is_parsed() {
        let text = "# comment\nexport RUNNEL_DIR='/tmp/a b'\nexport RUNNEL_BROKERS=http://h:1,http://h:2/\n\
                    export RUNNEL_CLUSTER_ID=abc\nexport RUNNEL_BROKER_2_URL=http://h:2\n\
                    export RUNNEL_BROKER_1_URL=http://h:1\nexport RUNNEL_BROKER_1_PID=7\n";
        let env = ClusterEnv::parse(text).unwrap();
        assert_eq!(env.cluster_id, "abc");
        assert_eq!(env.brokers.len(), 2);
        assert_eq!(env.brokers[0].id, 1);
        assert_eq!(env.url(2), Some("http://h:2"));
        let env = ClusterEnv::parse("RUNNEL_BROKERS=a:1,b:2\nRUNNEL_CLUSTER_ID=x").unwrap();
        assert_eq!(
            env.brokers[1],
            Broker {
                id: 2,
                url: "b:2".into()
            }
        );
        assert!(ClusterEnv::parse("RUNNEL_BROKERS=a:1\n").is_err());
        assert_eq!(unquote(r"'it'\''s'"), "it's");
    }

    #[test]
    fn in_sync_needs_every_replica_and_a_leader() {
        let p = |leader, isr: &[u32]| PartitionState {
            leader_id: leader,
            leader_epoch: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            earliest_offset: None,
            latest_offset: None,
        };
        assert!(p(Some(2), &[3, 1, 2]).fully_in_sync(3));
        assert!(!p(Some(2), &[1, 2]).fully_in_sync(3));
        assert!(!p(None, &[1, 2, 3]).fully_in_sync(3));
        assert!(!p(Some(1), &[1, 2, 3]).fully_in_sync(4));
    }
}
