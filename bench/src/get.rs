//! `runnel-bench get`: plain GET load on one path, the ceiling for the
//! request rate a broker can answer at all.

use std::time::Duration;

use reqwest::Client;
use serde_json::{Map, json};

use crate::cli::{self, GetArgs};
use crate::engine::{self, Done, Plan, Workload};
use crate::http;
use crate::summary::Summary;

/// Measured seconds when neither a duration nor a count is given.
const DEFAULT_SECS: u64 = 10;

/// Runs the GET benchmark described by `args`.
pub async fn run(args: GetArgs) -> Result<Summary, String> {
    let urls = cli::broker_urls(args.run.url.as_deref())?;
    let client = http::client(
        args.run.concurrency,
        Duration::from_millis(args.run.timeout_ms),
    )?;
    let path = if args.path.starts_with('/') {
        args.path.clone()
    } else {
        format!("/{}", args.path)
    };
    let load = Get {
        client,
        targets: urls.iter().map(|u| format!("{u}{path}")).collect(),
    };
    let plan = Plan {
        concurrency: args.run.concurrency,
        warmup: args.run.warmup,
        duration: args.run.duration.or_else(|| {
            args.requests
                .is_none()
                .then_some(Duration::from_secs(DEFAULT_SECS))
        }),
        budget: args.requests,
    };
    let totals = engine::run(load, plan).await?;

    let mut params = Map::new();
    params.insert("path".into(), json!(path));
    params.insert("concurrency".into(), json!(args.run.concurrency));
    Ok(Summary::new("get", urls, params, totals))
}

/// The GET workload: worker `i` loads broker `i % brokers`.
struct Get {
    client: Client,
    targets: Vec<String>,
}

impl Workload for Get {
    type Worker = usize;

    fn worker(&self, index: usize) -> usize {
        index % self.targets.len()
    }

    fn unit(&self) -> u64 {
        1
    }

    async fn request(&self, target: &mut usize, _requests: u64) -> Result<Done, String> {
        let body = http::send(self.client.get(&self.targets[*target])).await?;
        Ok(Done {
            records: 0,
            bytes: body.len() as u64,
        })
    }
}
