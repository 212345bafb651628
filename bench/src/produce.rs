//! `runnel-bench produce`: topic setup, then pre-built produce bodies sent
//! round-robin over the partitions (or keyed) as fast as the broker answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use reqwest::Client;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Map, json};

use crate::admin::{self, TopicSetup, TopicSpec};
use crate::cli::{self, Form, ProduceArgs};
use crate::engine::{self, Done, Plan, Workload};
use crate::http;
use crate::payload::{self, Body, RecordShape};
use crate::summary::Summary;

/// Measured seconds when neither a duration nor a count is given.
const DEFAULT_SECS: u64 = 10;

/// Runs the produce benchmark described by `args`.
pub async fn run(args: ProduceArgs) -> Result<Summary, String> {
    let urls = cli::broker_urls(args.run.url.as_deref())?;
    let client = http::client(
        args.run.concurrency,
        Duration::from_millis(args.run.timeout_ms),
    )?;
    let topic = &args.topic.topic;
    let batch = if args.form == Form::V3 {
        1
    } else {
        args.batch_size as usize
    };

    let (cluster, setup) = setup_topic(&client, &urls[0], &args).await?;
    eprintln!("topic {topic}: {setup:?}");
    let targets: Vec<String> = match (args.form, &cluster) {
        (Form::V3, Some(c)) => urls
            .iter()
            .map(|u| format!("{u}/v3/clusters/{c}/topics/{topic}/records"))
            .collect(),
        (Form::V3, None) => {
            return Err("--form v3 needs the v3 API, but GET /v3/clusters answered 404".into());
        }
        _ => urls
            .iter()
            .map(|u| format!("{u}/topics/{topic}?acks={}", args.acks.as_query()))
            .collect(),
    };
    if args.form == Form::V3 && args.acks != cli::Acks::All {
        eprintln!("note: --acks is not sent with --form v3");
    }

    let shape = RecordShape {
        form: args.form,
        record_size: args.record_size as usize,
        keyed: args.keyed,
    };
    let bodies = payload::body_set(shape, args.topic.partitions, batch, &mut rand::rng());
    let content_type = HeaderValue::from_static(match args.form {
        Form::Ndjson => "application/x-ndjson",
        Form::V2 => "application/vnd.kafka.json.v2+json",
        Form::V3 => "application/json",
    });
    // With --direct, one target per partition: its leader.
    let leaders = match (&cluster, args.direct) {
        (Some(c), true) => {
            let urls = admin::leader_urls(&client, &urls[0], c, topic).await?;
            let query = match args.form {
                Form::V3 => String::new(),
                _ => format!("?acks={}", args.acks.as_query()),
            };
            Some(
                urls.iter()
                    .map(|u| match args.form {
                        Form::V3 => format!("{u}/v3/clusters/{c}/topics/{topic}/records"),
                        _ => format!("{u}/topics/{topic}{query}"),
                    })
                    .collect::<Vec<_>>(),
            )
        }
        (None, true) => return Err("--direct needs the v3 API to learn the leaders".into()),
        _ => None,
    };
    let load = Produce {
        client,
        targets,
        leaders,
        bodies,
        next: AtomicUsize::new(0),
        batch: batch as u64,
        shape,
        partitions: args.topic.partitions,
        content_type,
    };
    let plan = Plan {
        concurrency: args.run.concurrency,
        warmup: args.run.warmup,
        duration: args.run.duration.or_else(|| {
            args.records
                .is_none()
                .then_some(Duration::from_secs(DEFAULT_SECS))
        }),
        budget: args.records,
    };
    let totals = engine::run(load, plan).await?;

    let mut params = Map::new();
    params.insert("topic".into(), json!(topic));
    params.insert("form".into(), json!(args.form.name()));
    params.insert("acks".into(), json!(args.acks.as_query()));
    params.insert("partitions".into(), json!(args.topic.partitions));
    params.insert("keyed".into(), json!(args.keyed));
    params.insert("direct".into(), json!(args.direct));
    params.insert("record_size".into(), json!(args.record_size));
    params.insert("batch_size".into(), json!(batch));
    params.insert("concurrency".into(), json!(args.run.concurrency));
    params.insert("topic_setup".into(), json!(format!("{setup:?}")));
    Ok(Summary::new("produce", urls, params, totals))
}

/// Finds the cluster id and creates the topic as asked. Without an admin
/// API (404) or with `--no-create`, the topic is left alone.
async fn setup_topic(
    client: &Client,
    base: &str,
    args: &ProduceArgs,
) -> Result<(Option<String>, TopicSetup), String> {
    let needs_cluster = !args.no_create || args.form == Form::V3 || args.direct;
    let cluster = if needs_cluster {
        admin::cluster_id(client, base).await?
    } else {
        None
    };
    let setup = match (&cluster, args.no_create) {
        (Some(c), false) => {
            let spec = TopicSpec {
                name: &args.topic.topic,
                partitions: args.topic.partitions,
                replication_factor: args.replication_factor,
                configs: &args.topic_config,
            };
            admin::ensure_topic(client, base, c, &spec, args.recreate).await?
        }
        _ => TopicSetup::Skipped,
    };
    Ok((cluster, setup))
}

/// The produce workload: pre-built bodies taken in turn.
struct Produce {
    client: Client,
    targets: Vec<String>,
    /// With `--direct`: the leader's produce URL of each partition.
    leaders: Option<Vec<String>>,
    bodies: Vec<Body>,
    next: AtomicUsize,
    batch: u64,
    shape: RecordShape,
    partitions: i32,
    content_type: HeaderValue,
}

/// A produce worker: its broker, and a generator for a last partial batch.
struct Producer {
    target: usize,
    rng: SmallRng,
}

impl Workload for Produce {
    type Worker = Producer;

    fn worker(&self, index: usize) -> Producer {
        Producer {
            target: index % self.targets.len(),
            rng: SmallRng::from_rng(&mut rand::rng()),
        }
    }

    fn unit(&self) -> u64 {
        self.batch
    }

    async fn request(&self, w: &mut Producer, amount: u64) -> Result<Done, String> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let body = if amount == self.batch {
            self.bodies[turn % self.bodies.len()].clone()
        } else {
            // The last, partial batch of a counted run: built once.
            let partition = (!self.shape.keyed).then_some((turn % self.partitions as usize) as i32);
            payload::build(self.shape, partition, amount as usize, &mut w.rng)
        };
        let target = match (&self.leaders, body.partition) {
            (Some(leaders), Some(p)) => &leaders[p as usize % leaders.len()],
            _ => &self.targets[w.target],
        };
        let req = self
            .client
            .post(target)
            .header(CONTENT_TYPE, self.content_type.clone())
            .body(body.bytes);
        let answer = http::send(req).await?;
        // NDJSON and v2 answers are HTTP 200 even when records failed: the failures are in
        // the body. (v3 single-record failures come with an error status.)
        if self.shape.form != Form::V3
            && let Some(e) = payload::answer_error(&answer)
        {
            return Err(e);
        }
        Ok(Done {
            records: body.records,
            bytes: body.records * self.shape.record_size as u64,
        })
    }
}
