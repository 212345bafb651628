//! `groups commit`: concurrent workers committing offsets for a group without members
//! (`POST /v1/groups/{g}/offsets` without member id and epoch, which the coordinator allows
//! only while the group is empty). Each commit is written to `__consumer_offsets` with
//! `acks=all` before it is answered, so the rate is that of the coordinator's single writer
//! per shard (all commits of one group go to one shard).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Client;
use serde::Serialize;
use serde_json::{Map, json};

use crate::cli::{self, CommitArgs, GroupTarget};
use crate::engine::{self, Done, Plan, Workload};
use crate::summary::Summary;

/// Measured seconds when neither a duration nor a count is given.
const DEFAULT_SECS: u64 = 10;

/// Runs the commit benchmark described by `args`.
pub async fn run(args: CommitArgs) -> Result<Summary, String> {
    let urls = cli::broker_urls(args.run.url.as_deref())?;
    let target = GroupTarget {
        url: Some(urls.join(",")),
        topic: args.topic.clone(),
        partitions: args.partitions,
        group: args.group.clone(),
        timeout_ms: args.run.timeout_ms,
    };
    let setup = super::setup(&target, "commit", args.run.concurrency).await?;
    eprintln!(
        "committing for group {} on {} ({} partitions)",
        setup.group, args.topic, setup.partitions
    );
    let load = Commit {
        client: setup.client.clone(),
        urls: urls
            .iter()
            .map(|u| format!("{u}/v1/groups/{}/offsets", setup.group))
            .collect(),
        topic: args.topic.clone(),
        partitions: setup.partitions,
        per_commit: args.offsets_per_commit.min(setup.partitions),
        next_offset: AtomicU64::new(0),
    };
    let plan = Plan {
        concurrency: args.run.concurrency,
        warmup: args.run.warmup,
        duration: args.run.duration.or_else(|| {
            args.commits
                .is_none()
                .then_some(Duration::from_secs(DEFAULT_SECS))
        }),
        budget: args.commits,
    };
    let totals = engine::run(load, plan).await?;
    let mut params = Map::new();
    params.insert("group".into(), json!(setup.group));
    params.insert("topic".into(), json!(args.topic));
    params.insert("partitions".into(), json!(setup.partitions));
    params.insert("offsets_per_commit".into(), json!(args.offsets_per_commit));
    params.insert("concurrency".into(), json!(args.run.concurrency));
    // `records` counts committed partition offsets; `requests` counts commits.
    Ok(Summary::new("groups-commit", urls, params, totals))
}

/// The commit workload: worker `i` commits partitions `i * per_commit ..` (mod the
/// partition count) through broker `i % brokers`, with ever larger offsets.
struct Commit {
    client: Client,
    urls: Vec<String>,
    topic: String,
    partitions: u32,
    per_commit: u32,
    next_offset: AtomicU64,
}

#[derive(Serialize)]
struct Body<'a> {
    offsets: Vec<Offset<'a>>,
}

#[derive(Serialize)]
struct Offset<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
}

impl Workload for Commit {
    /// (broker index, first partition)
    type Worker = (usize, u32);

    fn worker(&self, index: usize) -> (usize, u32) {
        let first = (index as u64 * u64::from(self.per_commit)) % u64::from(self.partitions);
        (index % self.urls.len(), first as u32)
    }

    fn unit(&self) -> u64 {
        1
    }

    async fn request(&self, w: &mut (usize, u32), _commits: u64) -> Result<Done, String> {
        let offset = self.next_offset.fetch_add(1, Ordering::Relaxed);
        let body = Body {
            offsets: (0..self.per_commit)
                .map(|j| Offset {
                    topic: &self.topic,
                    partition: (w.1 + j) % self.partitions,
                    offset,
                })
                .collect(),
        };
        crate::http::send(self.client.post(&self.urls[w.0]).json(&body)).await?;
        Ok(Done {
            records: u64::from(self.per_commit),
            bytes: 0,
        })
    }
}
