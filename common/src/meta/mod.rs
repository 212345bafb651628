//! Cluster metadata in etcd: what is stored ([`model`]), under which keys ([`keys`], the only
//! place keys are spelled), the client that reads and changes it ([`store`]), and a watched
//! local copy ([`cache`]).
//!
//! Only small, slowly changing facts live here: broker registrations (under leases), topics,
//! per-partition state. Never per-record traffic.

pub mod cache;
pub mod keys;
pub mod model;
pub mod store;

pub use cache::{ClusterView, MetadataCache, TopicView};
pub use keys::Keys;
pub use model::{
    BrokerRegistration, ControllerRecord, CoordinatorRegistration, PartitionState, ShardOwner,
    TopicRecord,
};
pub use store::{LeaseClock, MetaError, MetaStore};
