//! `runnel-bench consume`: page reads at random offsets of random partitions,
//! counting the records and value bytes each page returns.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::Client;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, json};

use crate::admin::{self, OffsetRange};
use crate::cli::{self, ConsumeArgs};
use crate::engine::{self, Done, Plan, Workload};
use crate::http;
use crate::summary::Summary;

/// Measured seconds when neither a duration nor a count is given.
const DEFAULT_SECS: u64 = 10;

/// Runs the consume benchmark described by `args`.
pub async fn run(args: ConsumeArgs) -> Result<Summary, String> {
    let urls = cli::broker_urls(args.run.url.as_deref())?;
    let client = http::client(
        args.run.concurrency,
        Duration::from_millis(args.run.timeout_ms),
    )?;
    let topic = &args.topic.topic;
    let cluster = admin::cluster_id(&client, &urls[0])
        .await?
        .ok_or("consume needs the v3 API, but GET /v3/clusters answered 404")?;

    let mut ranges = Vec::new();
    for p in 0..args.topic.partitions {
        match admin::offset_range(&client, &urls[0], &cluster, topic, p).await? {
            Some(r) if r.latest > r.earliest => ranges.push(r),
            Some(_) => eprintln!("partition {p} of {topic} is empty: not read"),
            None => eprintln!("partition {p} of {topic} not found: not read"),
        }
    }
    if ranges.is_empty() {
        return Err(format!(
            "topic {topic} has no records in partitions 0..{}: produce first",
            args.topic.partitions
        ));
    }
    let stored: u64 = ranges.iter().map(|r| r.latest - r.earliest).sum();
    eprintln!(
        "reading {topic}: {} partitions, {stored} records stored",
        ranges.len()
    );

    // One URL prefix per broker and partition: only the offset is appended per read.
    let prefixes = urls
        .iter()
        .map(|u| {
            ranges
                .iter()
                .map(|r| {
                    format!(
                        "{u}/v3/clusters/{cluster}/topics/{topic}/partitions/{}/records\
                         ?max_records={}&max_bytes={}&max_wait_ms=0&format=json&offset=",
                        r.partition, args.page_records, args.max_bytes
                    )
                })
                .collect()
        })
        .collect();
    let partitions_read = ranges.len();
    let load = Consume {
        client,
        prefixes,
        ranges,
        page: u64::from(args.page_records),
        decode: args.decode,
    };
    let plan = Plan {
        concurrency: args.run.concurrency,
        warmup: args.run.warmup,
        duration: args.run.duration.or_else(|| {
            args.pages
                .is_none()
                .then_some(Duration::from_secs(DEFAULT_SECS))
        }),
        budget: args.pages,
    };
    let totals = engine::run(load, plan).await?;

    let mut params = Map::new();
    params.insert("topic".into(), json!(topic));
    params.insert("partitions_read".into(), json!(partitions_read));
    params.insert("page_records".into(), json!(args.page_records));
    params.insert("concurrency".into(), json!(args.run.concurrency));
    params.insert("records_stored".into(), json!(stored));
    params.insert(
        "decode".into(),
        json!(format!("{:?}", args.decode).to_lowercase()),
    );
    Ok(Summary::new("consume", urls, params, totals))
}

/// The consume workload.
struct Consume {
    client: Client,
    /// `prefixes[broker][i]` reads partition `ranges[i].partition`.
    prefixes: Vec<Vec<String>>,
    ranges: Vec<OffsetRange>,
    page: u64,
    decode: cli::Decode,
}

/// A consume worker: its broker and its random generator.
struct Reader {
    target: usize,
    rng: SmallRng,
}

/// The part of a read answer the bench looks at.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    records: Vec<PageRecord<'a>>,
}

#[derive(Deserialize)]
struct PageRecord<'a> {
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

impl Workload for Consume {
    type Worker = Reader;

    fn worker(&self, index: usize) -> Reader {
        Reader {
            target: index % self.prefixes.len(),
            rng: SmallRng::from_rng(&mut rand::rng()),
        }
    }

    fn unit(&self) -> u64 {
        1
    }

    async fn request(&self, w: &mut Reader, _pages: u64) -> Result<Done, String> {
        let i = w.rng.random_range(0..self.ranges.len());
        let r = self.ranges[i];
        // A full page fits in [earliest, latest) when the partition is big enough.
        let last_start = r.latest.saturating_sub(self.page).max(r.earliest);
        let offset = w.rng.random_range(r.earliest..=last_start);
        let url = format!("{}{offset}", self.prefixes[w.target][i]);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| http::describe(&e))?;
        if self.decode == cli::Decode::Count {
            // The broker states the page's record count in a header; the body is read whole
            // (it crosses the wire) but not decoded.
            let count = response
                .headers()
                .get("x-runnel-record-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = http::body(response).await?;
            let count = count.ok_or("read answer without x-runnel-record-count")?;
            return Ok(Done {
                records: count,
                bytes: body.len() as u64,
            });
        }
        let body = http::body(response).await?;
        let page: Page =
            serde_json::from_slice(&body).map_err(|e| format!("bad read answer: {e}"))?;
        let bytes = page
            .records
            .iter()
            .map(|rec| rec.value.map_or(0, |v| v.get().len() as u64))
            .sum();
        Ok(Done {
            records: page.records.len() as u64,
            bytes,
        })
    }
}
