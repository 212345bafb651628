//! The etcd client for cluster metadata: reads, compare-and-swap writes, leases, watches.
//!
//! Every change to a topic or partition is one etcd transaction guarded by a compare on the
//! key's revision, so two brokers acting on the same stale view cannot both win.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Txn, TxnOp,
};
use tokio::sync::watch;

use super::keys::Keys;
use super::model::{
    BrokerRegistration, CoordinatorRegistration, PartitionState, ShardOwner, TopicRecord,
};

/// Failures talking to the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// etcd could not be reached or answered with an error.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-swap found the key changed or (not) present.
    #[error("metadata conflict on {key}")]
    Conflict { key: String },
    /// A stored value could not be decoded.
    #[error("corrupt metadata at {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

impl From<etcd_client::Error> for MetaError {
    fn from(error: etcd_client::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// How long this process may assume its lease is alive, by its own monotonic clock.
///
/// The deadline is counted from *before* each keep-alive was sent, plus the TTL the server
/// granted, so it is never later than the server's own expiry: a process paused (SIGSTOP,
/// swapped, starved) past it learns that it may have lost its lease before it acts on a stale
/// belief that it leads anything.
#[derive(Debug)]
pub struct LeaseClock {
    base: std::time::Instant,
    deadline_nanos: std::sync::atomic::AtomicU64,
}

impl Default for LeaseClock {
    fn default() -> Self {
        Self {
            base: std::time::Instant::now(),
            deadline_nanos: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl LeaseClock {
    /// Records a renewal: a keep-alive sent at `sent_at` was granted `ttl`.
    pub fn renewed(&self, sent_at: std::time::Instant, ttl: Duration) {
        let deadline = sent_at.saturating_duration_since(self.base) + ttl;
        self.deadline_nanos.fetch_max(
            deadline.as_nanos() as u64,
            std::sync::atomic::Ordering::AcqRel,
        );
    }

    /// Whether the lease is certainly still alive now.
    pub fn is_valid(&self) -> bool {
        let now = self.base.elapsed().as_nanos() as u64;
        now < self
            .deadline_nanos
            .load(std::sync::atomic::Ordering::Acquire)
    }
}

/// A connected metadata store for one cluster prefix. Cheap to clone.
#[derive(Clone)]
pub struct MetaStore {
    client: Client,
    keys: Keys,
}

impl MetaStore {
    /// Connects to etcd. The connection is lazy about individual endpoints: requests fail over
    /// between them, and a restarted etcd is reconnected to.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when no endpoint answers within the connect timeout.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self, MetaError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(options)).await?;
        Ok(Self {
            client,
            keys: Keys::new(prefix),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The raw client, for the watch loop in [`super::cache`].
    pub(crate) fn client(&self) -> Client {
        self.client.clone()
    }

    /// Reads the cluster id, creating a fresh one if this is a new cluster.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn ensure_cluster_id(&self) -> Result<String, MetaError> {
        let key = self.keys.cluster_id();
        let fresh = random_id();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.clone(), fresh.clone(), None)])
            .or_else([TxnOp::get(key.clone(), None)]);
        let response = self.client.clone().txn(txn).await?;
        if response.succeeded() {
            return Ok(fresh);
        }
        for op in response.op_responses() {
            if let etcd_client::TxnOpResponse::Get(get) = op
                && let Some(kv) = get.kvs().first()
            {
                return Ok(String::from_utf8_lossy(kv.value()).into_owned());
            }
        }
        Err(MetaError::Corrupt {
            key,
            reason: "cluster id vanished".into(),
        })
    }

    /// Registers a broker under a fresh lease of `ttl` and keeps the lease alive in the
    /// background. `alive` turns false when the lease is lost (the broker should re-register).
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn register_broker(
        &self,
        registration: &BrokerRegistration,
        ttl: Duration,
        clock: std::sync::Arc<LeaseClock>,
    ) -> Result<LeaseHandle, MetaError> {
        let key = self.keys.broker(registration.broker_id);
        let value = encode(&key, registration)?;
        self.register(key, value, ttl, clock, "broker").await
    }

    /// Registers a coordinator under a fresh lease, like [`Self::register_broker`]. The
    /// shards it claims hang on the same lease, so they are released when it dies.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn register_coordinator(
        &self,
        registration: &CoordinatorRegistration,
        ttl: Duration,
        clock: std::sync::Arc<LeaseClock>,
    ) -> Result<LeaseHandle, MetaError> {
        let key = self.keys.coordinator(registration.coordinator_id);
        let value = encode(&key, registration)?;
        self.register(key, value, ttl, clock, "coordinator").await
    }

    async fn register(
        &self,
        key: String,
        value: Vec<u8>,
        ttl: Duration,
        clock: std::sync::Arc<LeaseClock>,
        what: &'static str,
    ) -> Result<LeaseHandle, MetaError> {
        let mut client = self.client.clone();
        let ttl_secs = i64::try_from(ttl.as_secs().max(2)).unwrap_or(10);
        let granted_at = std::time::Instant::now();
        let lease = client.lease_grant(ttl_secs, None).await?;
        clock.renewed(granted_at, Duration::from_secs(lease.ttl().max(0) as u64));
        let lease_id = lease.id();
        client
            .put(
                key,
                value,
                Some(etcd_client::PutOptions::new().with_lease(lease_id)),
            )
            .await?;
        let (alive_tx, alive_rx) = watch::channel(true);
        let (mut keeper, mut responses) = client.lease_keep_alive(lease_id).await?;
        let interval = Duration::from_millis((ttl_secs as u64 * 1000) / 3);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let sent_at = std::time::Instant::now();
                let granted = match keeper.keep_alive().await {
                    Ok(()) => match responses.message().await {
                        Ok(Some(r)) if r.ttl() > 0 => Some(r.ttl()),
                        _ => None,
                    },
                    Err(_) => None,
                };
                if let Some(ttl) = granted {
                    clock.renewed(sent_at, Duration::from_secs(ttl as u64));
                } else {
                    tracing::warn!(lease_id, what, "lease lost");
                    let _ = alive_tx.send(false);
                    return;
                }
            }
        });
        Ok(LeaseHandle {
            lease_id,
            alive: alive_rx,
            task,
            client,
        })
    }

    /// Claims consumer-group shard `shard` for `owner` under `lease_id` if nobody holds it.
    /// Returns the shard epoch (the key's create revision) when claimed, `None` when taken.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn claim_shard(
        &self,
        shard: u32,
        owner: &ShardOwner,
        lease_id: i64,
    ) -> Result<Option<i64>, MetaError> {
        let key = self.keys.shard(shard);
        let value = encode(&key, owner)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                value,
                Some(etcd_client::PutOptions::new().with_lease(lease_id)),
            )]);
        let response = self.client.clone().txn(txn).await?;
        // The put's revision is the key's create revision.
        Ok(response
            .succeeded()
            .then(|| response.header().map_or(0, |h| h.revision())))
    }

    /// Gives shard `shard` up, if it is still held at `epoch`.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn release_shard(&self, shard: u32, epoch: i64) -> Result<bool, MetaError> {
        let key = self.keys.shard(shard);
        let txn = Txn::new()
            .when([Compare::create_revision(
                key.clone(),
                CompareOp::Equal,
                epoch,
            )])
            .and_then([TxnOp::delete(key, None)]);
        Ok(self.client.clone().txn(txn).await?.succeeded())
    }

    /// The owner of `shard` and its epoch, read linearizably.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails; [`MetaError::Corrupt`] for a bad value.
    pub async fn shard_owner(&self, shard: u32) -> Result<Option<(ShardOwner, i64)>, MetaError> {
        let key = self.keys.shard(shard);
        let response = self.client.clone().get(key.clone(), None).await?;
        let Some(kv) = response.kvs().first() else {
            return Ok(None);
        };
        let owner = serde_json::from_slice(kv.value()).map_err(|e| MetaError::Corrupt {
            key,
            reason: e.to_string(),
        })?;
        Ok(Some((owner, kv.create_revision())))
    }

    /// Creates a topic and its partitions in one transaction; fails if the topic exists.
    /// Returns the etcd revision of the write.
    ///
    /// # Errors
    /// [`MetaError::Conflict`] when the topic exists; [`MetaError::Unavailable`] on etcd failure.
    pub async fn create_topic(
        &self,
        name: &str,
        topic: &TopicRecord,
        partitions: &[PartitionState],
    ) -> Result<i64, MetaError> {
        let key = self.keys.topic(name);
        let mut ops = vec![TxnOp::put(key.clone(), encode(&key, topic)?, None)];
        for (index, state) in partitions.iter().enumerate() {
            let pkey = self.keys.partition(name, index as u32);
            ops.push(TxnOp::put(pkey.clone(), encode(&pkey, state)?, None));
        }
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then(ops);
        let response = self.client.clone().txn(txn).await?;
        if !response.succeeded() {
            return Err(MetaError::Conflict { key });
        }
        Ok(response.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Deletes a topic and its partitions if the topic key still has `mod_revision`.
    ///
    /// # Errors
    /// [`MetaError::Conflict`] when the topic changed or vanished meanwhile.
    pub async fn delete_topic(&self, name: &str, mod_revision: i64) -> Result<i64, MetaError> {
        let key = self.keys.topic(name);
        let ops = vec![
            TxnOp::delete(key.clone(), None),
            TxnOp::delete(
                self.keys.partitions_of(name),
                Some(DeleteOptions::new().with_prefix()),
            ),
        ];
        self.if_unchanged(key, mod_revision, ops).await
    }

    /// Replaces a topic record if its key still has `mod_revision`.
    ///
    /// # Errors
    /// [`MetaError::Conflict`] when the topic changed or vanished meanwhile.
    pub async fn update_topic(
        &self,
        name: &str,
        topic: &TopicRecord,
        mod_revision: i64,
    ) -> Result<i64, MetaError> {
        let key = self.keys.topic(name);
        let ops = vec![TxnOp::put(key.clone(), encode(&key, topic)?, None)];
        self.if_unchanged(key, mod_revision, ops).await
    }

    /// Runs `ops` in one transaction if `key` still has `mod_revision`; returns the revision.
    async fn if_unchanged(
        &self,
        key: String,
        mod_revision: i64,
        ops: Vec<TxnOp>,
    ) -> Result<i64, MetaError> {
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.clone(),
                CompareOp::Equal,
                mod_revision,
            )])
            .and_then(ops);
        let response = self.client.clone().txn(txn).await?;
        if !response.succeeded() {
            return Err(MetaError::Conflict { key });
        }
        Ok(response.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Tries to become the controller under `lease_id`. Returns the controller epoch (the
    /// revision that created the controller key) when this broker won, `None` when another
    /// controller exists.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn try_become_controller(
        &self,
        broker_id: u32,
        lease_id: i64,
    ) -> Result<Option<i64>, MetaError> {
        let key = self.keys.controller();
        let value = serde_json::json!({ "broker_id": broker_id }).to_string();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                value,
                Some(etcd_client::PutOptions::new().with_lease(lease_id)),
            )]);
        let response = self.client.clone().txn(txn).await?;
        if !response.succeeded() {
            return Ok(None);
        }
        Ok(Some(response.header().map(|h| h.revision()).unwrap_or(0)))
    }

    /// Writes a partition state if the partition key still has `mod_revision` and, when
    /// `controller_epoch` is given, this is still the controller of that epoch (its key still
    /// has that create revision): a paused ex-controller cannot overwrite a newer decision.
    ///
    /// # Errors
    /// [`MetaError::Conflict`] when either check fails.
    pub async fn update_partition(
        &self,
        topic: &str,
        partition: u32,
        state: &PartitionState,
        mod_revision: i64,
        controller_epoch: Option<i64>,
    ) -> Result<i64, MetaError> {
        let key = self.keys.partition(topic, partition);
        let mut compares = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            mod_revision,
        )];
        if let Some(epoch) = controller_epoch {
            compares.push(Compare::create_revision(
                self.keys.controller(),
                CompareOp::Equal,
                epoch,
            ));
        }
        let txn = Txn::new().when(compares).and_then([TxnOp::put(
            key.clone(),
            encode(&key, state)?,
            None,
        )]);
        let response = self.client.clone().txn(txn).await?;
        if !response.succeeded() {
            return Err(MetaError::Conflict { key });
        }
        Ok(response.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// The ids of the registered (live) brokers, read linearizably: decisions such as replica
    /// placement must not rest on a cache that has not seen a broker that just registered.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn live_brokers(&self) -> Result<Vec<u32>, MetaError> {
        let prefix = format!("{}brokers/", self.keys.root());
        let response = self
            .client
            .clone()
            .get(
                prefix,
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await?;
        let mut ids: Vec<u32> = response
            .kvs()
            .iter()
            .filter_map(
                |kv| match self.keys.parse(&String::from_utf8_lossy(kv.key())) {
                    Some(super::keys::KeyKind::Broker(id)) => Some(id),
                    _ => None,
                },
            )
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads one partition's state and its mod revision, linearizably (a read that sees every
    /// write acknowledged before it).
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn partition_state(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Option<(PartitionState, i64)>, MetaError> {
        let key = self.keys.partition(topic, partition);
        let response = self.client.clone().get(key.clone(), None).await?;
        let Some(kv) = response.kvs().first() else {
            return Ok(None);
        };
        let state = serde_json::from_slice(kv.value()).map_err(|e| MetaError::Corrupt {
            key,
            reason: e.to_string(),
        })?;
        Ok(Some((state, kv.mod_revision())))
    }

    /// Adds partitions to a topic: the new topic record and the new partitions' states in one
    /// transaction, if the topic is unchanged since `mod_revision`.
    ///
    /// # Errors
    /// [`MetaError::Conflict`] when the topic changed meanwhile.
    pub async fn add_partitions(
        &self,
        name: &str,
        topic: &TopicRecord,
        mod_revision: i64,
        first_new: u32,
        states: &[PartitionState],
    ) -> Result<i64, MetaError> {
        let key = self.keys.topic(name);
        let mut ops = vec![TxnOp::put(key.clone(), encode(&key, topic)?, None)];
        for (i, state) in states.iter().enumerate() {
            let pkey = self.keys.partition(name, first_new + i as u32);
            ops.push(TxnOp::put(pkey.clone(), encode(&pkey, state)?, None));
        }
        self.if_unchanged(key, mod_revision, ops).await
    }

    /// Reads every key of the cluster with the revision of the read.
    ///
    /// # Errors
    /// [`MetaError::Unavailable`] when etcd fails.
    pub async fn list_all(&self) -> Result<(Vec<(String, Vec<u8>, i64, i64)>, i64), MetaError> {
        let response = self
            .client
            .clone()
            .get(self.keys.root(), Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = response.header().map(|h| h.revision()).unwrap_or(0);
        let kvs = response
            .kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.value().to_vec(),
                    kv.mod_revision(),
                    kv.create_revision(),
                )
            })
            .collect();
        Ok((kvs, revision))
    }
}

/// A registration lease kept alive in the background.
pub struct LeaseHandle {
    pub lease_id: i64,
    /// `true` while the lease is renewed; turns `false` once a renewal fails.
    pub alive: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    client: Client,
}

impl LeaseHandle {
    /// Stops renewing and revokes the lease, so the registration disappears at once.
    pub async fn revoke(mut self) {
        self.task.abort();
        if let Err(error) = self.client.lease_revoke(self.lease_id).await {
            tracing::warn!(%error, "could not revoke lease; it will expire");
        }
    }
}

impl Drop for LeaseHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn encode<T: serde::Serialize>(key: &str, value: &T) -> Result<Vec<u8>, MetaError> {
    serde_json::to_vec(value).map_err(|e| MetaError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// A random 22-character URL-safe id (128 bits), like Kafka's base64 UUIDs.
pub fn random_id() -> String {
    use base64::Engine;
    let bytes: [u8; 16] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
