//! A local copy of the cluster's metadata, kept current by an etcd watch.
//!
//! The copy is replaced wholesale on every change (it is small), so readers take a cheap
//! `Arc` snapshot and never hold a lock across an await. A watch that falls behind etcd's
//! compaction, or breaks, starts over with a fresh listing.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use tokio::sync::watch;

use super::keys::KeyKind;
use super::model::{
    BrokerRegistration, ControllerRecord, CoordinatorRegistration, PartitionState, ShardOwner,
    TopicRecord,
};
use super::store::{MetaError, MetaStore};

/// One topic with its partitions, as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicView {
    pub record: TopicRecord,
    /// etcd mod revision of the topic key, for compare-and-swap updates.
    pub mod_revision: i64,
    /// Partition states by partition id; a partition key not yet seen is absent.
    pub partitions: BTreeMap<u32, PartitionState>,
    /// etcd mod revision of each partition key, for compare-and-swap updates.
    pub partition_revisions: BTreeMap<u32, i64>,
}

/// Everything the cluster knows, at one etcd revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub revision: i64,
    pub cluster_id: Option<String>,
    /// The elected controller and its epoch (the create revision of its key).
    pub controller: Option<(ControllerRecord, i64)>,
    pub brokers: BTreeMap<u32, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicView>,
    pub coordinators: BTreeMap<u32, CoordinatorRegistration>,
    /// Owned consumer-group shards, with the shard epoch (the create revision of the key).
    pub shards: BTreeMap<u32, (ShardOwner, i64)>,
}

impl ClusterView {
    fn apply_put(&mut self, kind: KeyKind, value: &[u8], mod_revision: i64, create_revision: i64) {
        match kind {
            KeyKind::ClusterId => {
                self.cluster_id = Some(String::from_utf8_lossy(value).into_owned());
            }
            KeyKind::Controller => match serde_json::from_slice(value) {
                Ok(record) => self.controller = Some((record, create_revision)),
                Err(error) => tracing::warn!(%error, "ignoring undecodable controller record"),
            },
            KeyKind::Broker(id) => match serde_json::from_slice(value) {
                Ok(registration) => {
                    self.brokers.insert(id, registration);
                }
                Err(error) => tracing::warn!(id, %error, "ignoring undecodable broker record"),
            },
            KeyKind::Coordinator(id) => match serde_json::from_slice(value) {
                Ok(registration) => {
                    self.coordinators.insert(id, registration);
                }
                Err(error) => tracing::warn!(id, %error, "ignoring undecodable coordinator"),
            },
            KeyKind::Shard(shard) => match serde_json::from_slice(value) {
                Ok(owner) => {
                    self.shards.insert(shard, (owner, create_revision));
                }
                Err(error) => tracing::warn!(shard, %error, "ignoring undecodable shard owner"),
            },
            KeyKind::Topic(name) => match serde_json::from_slice::<TopicRecord>(value) {
                Ok(record) => {
                    let entry = self.topics.entry(name).or_insert_with(|| TopicView {
                        record: record.clone(),
                        mod_revision,
                        partitions: BTreeMap::new(),
                        partition_revisions: BTreeMap::new(),
                    });
                    // A new incarnation of the topic drops the old partitions.
                    if entry.record.topic_id != record.topic_id {
                        entry.partitions.clear();
                        entry.partition_revisions.clear();
                    }
                    entry.record = record;
                    entry.mod_revision = mod_revision;
                }
                Err(error) => tracing::warn!(%name, %error, "ignoring undecodable topic record"),
            },
            KeyKind::Partition(name, partition) => {
                match serde_json::from_slice::<PartitionState>(value) {
                    Ok(state) => {
                        if let Some(topic) = self.topics.get_mut(&name) {
                            topic.partitions.insert(partition, state);
                            topic.partition_revisions.insert(partition, mod_revision);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%name, partition, %error, "ignoring undecodable partition");
                    }
                }
            }
        }
    }

    fn apply_delete(&mut self, kind: KeyKind) {
        match kind {
            KeyKind::ClusterId => self.cluster_id = None,
            KeyKind::Controller => self.controller = None,
            KeyKind::Broker(id) => {
                self.brokers.remove(&id);
            }
            KeyKind::Topic(name) => {
                self.topics.remove(&name);
            }
            KeyKind::Coordinator(id) => {
                self.coordinators.remove(&id);
            }
            KeyKind::Shard(shard) => {
                self.shards.remove(&shard);
            }
            KeyKind::Partition(name, partition) => {
                if let Some(topic) = self.topics.get_mut(&name) {
                    topic.partitions.remove(&partition);
                    topic.partition_revisions.remove(&partition);
                }
            }
        }
    }
}

/// The watched copy. Cheap to clone.
#[derive(Clone)]
pub struct MetadataCache {
    view: Arc<RwLock<Arc<ClusterView>>>,
    revision: watch::Receiver<i64>,
}

impl MetadataCache {
    /// Lists the cluster's metadata and starts the background watch that keeps it current.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when the first listing fails.
    pub async fn start(store: MetaStore) -> Result<Self, MetaError> {
        let first = list(&store).await?;
        let (revision_tx, revision_rx) = watch::channel(first.revision);
        let view = Arc::new(RwLock::new(Arc::new(first)));
        let cache = Self {
            view: view.clone(),
            revision: revision_rx,
        };
        tokio::spawn(watch_loop(store, view, revision_tx));
        Ok(cache)
    }

    /// The current view.
    pub fn view(&self) -> Arc<ClusterView> {
        match self.view.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A receiver that changes whenever the view does.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.revision.clone()
    }

    /// Waits until the view includes etcd revision `revision` (a write this process made),
    /// at most `timeout`. Returns whether it got there.
    pub async fn wait_for_revision(&self, revision: i64, timeout: Duration) -> bool {
        let mut rx = self.revision.clone();
        tokio::time::timeout(timeout, rx.wait_for(|seen| *seen >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

async fn list(store: &MetaStore) -> Result<ClusterView, MetaError> {
    let (kvs, revision) = store.list_all().await?;
    let mut view = ClusterView {
        revision,
        ..ClusterView::default()
    };
    // Topics before partitions, whatever order etcd returned them in.
    let mut partitions = Vec::new();
    for (key, value, mod_revision, create_revision) in kvs {
        match store.keys().parse(&key) {
            Some(kind @ KeyKind::Partition(..)) => {
                partitions.push((kind, value, mod_revision, create_revision))
            }
            Some(kind) => view.apply_put(kind, &value, mod_revision, create_revision),
            None => {}
        }
    }
    for (kind, value, mod_revision, create_revision) in partitions {
        view.apply_put(kind, &value, mod_revision, create_revision);
    }
    Ok(view)
}

fn publish(view: &RwLock<Arc<ClusterView>>, next: ClusterView, tx: &watch::Sender<i64>) {
    let revision = next.revision;
    match view.write() {
        Ok(mut guard) => *guard = Arc::new(next),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(next),
    }
    tx.send_replace(revision);
}

async fn watch_loop(
    store: MetaStore,
    view: Arc<RwLock<Arc<ClusterView>>>,
    revision_tx: watch::Sender<i64>,
) {
    let mut relist = false;
    loop {
        if revision_tx.is_closed() {
            return;
        }
        if relist {
            match list(&store).await {
                Ok(fresh) => publish(&view, fresh, &revision_tx),
                Err(error) => {
                    tracing::warn!(%error, "metadata re-list failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        relist = true;
        let start = match view.read() {
            Ok(guard) => guard.revision + 1,
            Err(poisoned) => poisoned.into_inner().revision + 1,
        };
        let options = WatchOptions::new().with_prefix().with_start_revision(start);
        let (_watcher, mut stream) = match store
            .client()
            .watch(store.keys().root(), Some(options))
            .await
        {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "metadata watch failed; re-listing");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "metadata watch broke; re-listing");
                    break;
                }
            };
            if response.compact_revision() > 0 || response.canceled() {
                tracing::info!(
                    compact_revision = response.compact_revision(),
                    "metadata watch fell behind; re-listing"
                );
                break;
            }
            let events = response.events();
            if events.is_empty() {
                continue;
            }
            let mut next = match view.read() {
                Ok(guard) => (**guard).clone(),
                Err(poisoned) => (**poisoned.into_inner()).clone(),
            };
            for event in events {
                let Some(kv) = event.kv() else { continue };
                next.revision = next.revision.max(kv.mod_revision());
                let key = String::from_utf8_lossy(kv.key());
                let Some(kind) = store.keys().parse(&key) else {
                    continue;
                };
                match event.event_type() {
                    EventType::Put => {
                        next.apply_put(kind, kv.value(), kv.mod_revision(), kv.create_revision())
                    }
                    EventType::Delete => next.apply_delete(kind),
                }
            }
            if let Some(header) = response.header() {
                next.revision = next.revision.max(header.revision());
            }
            publish(&view, next, &revision_tx);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
