//! Group commit: one task fsyncs on behalf of every producer waiting for durability.
//!
//! Requests that arrive while an fsync runs are gathered and served by the next one, across
//! requests and partitions, so N concurrent `flush.messages=1` producers cost about one fsync
//! per round rather than N.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::partition::Partition;

struct FlushRequest {
    partition: Arc<Partition>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the flush task. Cheap to clone.
#[derive(Clone)]
pub struct Flusher {
    tx: mpsc::UnboundedSender<FlushRequest>,
}

impl Flusher {
    /// Starts the flush task.
    pub fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx));
        Self { tx }
    }

    /// Makes everything appended to `partition` so far durable, and waits for it.
    ///
    /// # Errors
    /// The fsync's error message.
    pub async fn flush(&self, partition: Arc<Partition>) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(FlushRequest {
                partition,
                done: Some(done),
            })
            .map_err(|_| "flusher stopped".to_string())?;
        wait.await.map_err(|_| "flusher stopped".to_string())?
    }

    /// Flushes `partition` and waits, if its `flush.messages` asks for an fsync now.
    ///
    /// # Errors
    /// The fsync's error message.
    pub async fn flush_if_due(&self, partition: &Arc<Partition>) -> Result<(), String> {
        if partition.with_log(|log| log.flush_due()) {
            self.flush(partition.clone()).await?;
        }
        Ok(())
    }

    /// Asks for a flush of `partition` without waiting (the interval flush).
    pub fn request(&self, partition: Arc<Partition>) {
        let _ = self.tx.send(FlushRequest {
            partition,
            done: None,
        });
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<FlushRequest>) {
    while let Some(first) = rx.recv().await {
        let mut requests = vec![first];
        while let Ok(more) = rx.try_recv() {
            requests.push(more);
        }
        // One sync per partition, whatever the number of waiters on it.
        let mut partitions: HashMap<usize, Arc<Partition>> = HashMap::new();
        for request in &requests {
            partitions
                .entry(Arc::as_ptr(&request.partition) as usize)
                .or_insert_with(|| request.partition.clone());
        }
        let jobs: Vec<_> = partitions
            .into_values()
            .map(|partition| {
                let targets = partition.with_log(|log| log.sync_targets());
                (partition, targets)
            })
            .collect();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut results = Vec::with_capacity(jobs.len());
            for (partition, targets) in jobs {
                let result = targets
                    .files
                    .iter()
                    .try_for_each(|file| file.sync_data())
                    .map_err(|e| e.to_string());
                results.push((partition, targets.upto, result));
            }
            results
        })
        .await;
        let results = match outcome {
            Ok(results) => results,
            Err(error) => {
                for request in requests {
                    if let Some(done) = request.done {
                        let _ = done.send(Err(format!("flush task failed: {error}")));
                    }
                }
                continue;
            }
        };
        let mut failed: HashMap<usize, String> = HashMap::new();
        for (partition, upto, result) in &results {
            match result {
                Ok(()) => partition.with_log(|log| log.mark_flushed(*upto)),
                Err(error) => {
                    tracing::error!(topic = %partition.topic, partition = partition.partition, %error, "fsync failed");
                    failed.insert(Arc::as_ptr(partition) as usize, error.clone());
                }
            }
        }
        for request in requests {
            if let Some(done) = request.done {
                let result = match failed.get(&(Arc::as_ptr(&request.partition) as usize)) {
                    Some(error) => Err(error.clone()),
                    None => Ok(()),
                };
                let _ = done.send(result);
            }
        }
    }
}
