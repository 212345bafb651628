//! What a shard keeps in its partition of `__consumer_offsets`, and how it is read back.
//!
//! The coordinator holds no durable state of its own: committed offsets, REST consumer
//! instances and shard-epoch markers are records in the compacted topic, keyed so that the
//! latest record per key is the truth. Every record carries the writer's shard epoch in a
//! `shard_epoch` header — tombstones too, which have no value to carry it. A coordinator
//! taking a shard over first appends a marker with its epoch, then replays the partition;
//! records written under an older epoch after a newer marker came from a deposed owner and
//! are ignored, so a paused coordinator that wakes up cannot change what the group committed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::assign::Tp;
use crate::brokers::PageRecord;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The record header naming the shard epoch a record was written under.
pub const EPOCH_HEADER: &str = "shard_epoch";

/// The key of a record in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogKey {
    Offset {
        group: String,
        topic: String,
        partition: u32,
    },
    Instance {
        group: String,
        name: String,
    },
    Epoch,
}

/// A committed offset: the next record the group will consume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    #[serde(default)]
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// A REST consumer instance's settings, as created and subscribed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceConfig {
    pub format: String,
    pub auto_offset_reset: String,
    pub auto_commit: bool,
    #[serde(default)]
    pub topics: Option<Vec<String>>,
    #[serde(default)]
    pub topic_pattern: Option<String>,
    #[serde(default)]
    pub assignment: Option<Vec<Tp>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EpochMarker {
    coordinator_id: u32,
}

/// A write to the log: a key and its new value (`None`: delete the key).
#[derive(Debug, Clone)]
pub enum Change {
    Commit {
        group: String,
        tp: Tp,
        committed: Committed,
    },
    DeleteOffset {
        group: String,
        tp: Tp,
    },
    Instance {
        group: String,
        name: String,
        config: Option<InstanceConfig>,
    },
    Marker {
        coordinator_id: u32,
    },
}

impl Change {
    fn key_and_value(&self) -> (LogKey, Option<serde_json::Value>) {
        let value = |v: Result<serde_json::Value, serde_json::Error>| v.ok();
        match self {
            Self::Commit {
                group,
                tp,
                committed,
            } => (
                LogKey::Offset {
                    group: group.clone(),
                    topic: tp.0.clone(),
                    partition: tp.1,
                },
                value(serde_json::to_value(committed)),
            ),
            Self::DeleteOffset { group, tp } => (
                LogKey::Offset {
                    group: group.clone(),
                    topic: tp.0.clone(),
                    partition: tp.1,
                },
                None,
            ),
            Self::Instance {
                group,
                name,
                config,
            } => (
                LogKey::Instance {
                    group: group.clone(),
                    name: name.clone(),
                },
                config.as_ref().and_then(|c| value(serde_json::to_value(c))),
            ),
            Self::Marker { coordinator_id } => (
                LogKey::Epoch,
                value(serde_json::to_value(EpochMarker {
                    coordinator_id: *coordinator_id,
                })),
            ),
        }
    }

    /// The v3 produce record for this change, written under `shard_epoch` to `partition`.
    pub fn to_record(&self, shard_epoch: i64, partition: u32) -> serde_json::Value {
        use base64::Engine;
        let (key, value) = self.key_and_value();
        let epoch = base64::engine::general_purpose::STANDARD.encode(shard_epoch.to_string());
        serde_json::json!({
            "partition_id": partition,
            "key": {"type": "JSON", "data": serde_json::to_value(key).unwrap_or(serde_json::Value::Null)},
            "value": value.map(|v| serde_json::json!({"type": "JSON", "data": v})),
            "headers": [{"name": EPOCH_HEADER, "value": epoch}],
        })
    }
}

/// The shard epoch in a record's headers (as the broker renders them: base64 values).
fn epoch_of(record: &PageRecord) -> Option<i64> {
    use base64::Engine;
    record.headers.iter().find_map(|h| {
        if h.get("name")?.as_str()? != EPOCH_HEADER {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(h.get("value")?.as_str()?)
            .ok()?;
        std::str::from_utf8(&bytes).ok()?.parse().ok()
    })
}

/// What a shard's replay yields: per group, committed offsets and REST instances.
#[derive(Debug, Default)]
pub struct Replayed {
    pub offsets: BTreeMap<String, BTreeMap<Tp, Committed>>,
    pub instances: BTreeMap<String, BTreeMap<String, InstanceConfig>>,
    /// The highest shard epoch seen in a marker.
    pub epoch: i64,
}

impl Replayed {
    /// Folds one record read back from the log (in log order).
    pub fn apply(&mut self, record: &PageRecord) {
        let Some(key) = record
            .key
            .as_ref()
            .and_then(|k| serde_json::from_str::<LogKey>(k.data.get()).ok())
        else {
            tracing::warn!(
                offset = record.offset,
                "skipping an undecodable offsets-log key"
            );
            return;
        };
        // Written under an older epoch than a marker already seen: a deposed owner's late
        // write (a value or a tombstone alike).
        let Some(epoch) = epoch_of(record) else {
            tracing::warn!(
                offset = record.offset,
                "skipping an offsets-log record without an epoch"
            );
            return;
        };
        if epoch < self.epoch {
            return;
        }
        let value = record.value.as_ref().map(|v| v.data.get());
        match key {
            LogKey::Epoch => self.epoch = self.epoch.max(epoch),
            LogKey::Offset {
                group,
                topic,
                partition,
            } => {
                let tp = (topic, partition);
                match value.and_then(|v| serde_json::from_str::<Committed>(v).ok()) {
                    Some(committed) => {
                        self.offsets.entry(group).or_default().insert(tp, committed);
                    }
                    None => {
                        if let Some(offsets) = self.offsets.get_mut(&group) {
                            offsets.remove(&tp);
                        }
                    }
                }
            }
            LogKey::Instance { group, name } => {
                match value.and_then(|v| serde_json::from_str::<InstanceConfig>(v).ok()) {
                    Some(config) => {
                        self.instances
                            .entry(group)
                            .or_default()
                            .insert(name, config);
                    }
                    None => {
                        if let Some(instances) = self.instances.get_mut(&group) {
                            instances.remove(&name);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brokers::{PageRecord, TypedData};

    fn page_record(offset: i64, change: &Change, epoch: i64) -> PageRecord {
        let record = change.to_record(epoch, 0);
        let raw = |v: &serde_json::Value| {
            serde_json::value::RawValue::from_string(v.to_string()).expect("raw")
        };
        PageRecord {
            offset,
            timestamp: 0,
            key: Some(TypedData {
                kind: "JSON".into(),
                data: raw(&record["key"]["data"]),
            }),
            value: (!record["value"].is_null()).then(|| TypedData {
                kind: "JSON".into(),
                data: raw(&record["value"]["data"]),
            }),
            headers: record["headers"].as_array().cloned().unwrap_or_default(),
        }
    }

    fn commit(offset: i64) -> Change {
        Change::Commit {
            group: "g".into(),
            tp: ("t".into(), 0),
            committed: Committed {
                offset,
                metadata: String::new(),
                commit_timestamp: 1,
            },
        }
    }

    #[test]
    fn the_latest_commit_wins_and_tombstones_delete() {
        let mut r = Replayed::default();
        r.apply(&page_record(0, &Change::Marker { coordinator_id: 1 }, 10));
        r.apply(&page_record(1, &commit(5), 10));
        r.apply(&page_record(2, &commit(9), 10));
        assert_eq!(r.offsets["g"][&("t".to_string(), 0)].offset, 9);
        r.apply(&page_record(
            3,
            &Change::DeleteOffset {
                group: "g".into(),
                tp: ("t".into(), 0),
            },
            10,
        ));
        assert!(r.offsets["g"].is_empty());
    }

    #[test]
    fn a_deposed_owners_late_write_is_ignored() {
        let mut r = Replayed::default();
        r.apply(&page_record(0, &Change::Marker { coordinator_id: 1 }, 10));
        r.apply(&page_record(1, &commit(5), 10));
        // Coordinator 2 takes over at epoch 20 ...
        r.apply(&page_record(2, &Change::Marker { coordinator_id: 2 }, 20));
        r.apply(&page_record(3, &commit(7), 20));
        // ... and coordinator 1, paused until now, writes under its old epoch.
        r.apply(&page_record(4, &commit(100), 10));
        assert_eq!(r.offsets["g"][&("t".to_string(), 0)].offset, 7);
        // Its late tombstone is ignored as well.
        r.apply(&page_record(
            5,
            &Change::DeleteOffset {
                group: "g".into(),
                tp: ("t".into(), 0),
            },
            10,
        ));
        assert_eq!(r.offsets["g"][&("t".to_string(), 0)].offset, 7);
        assert_eq!(r.epoch, 20);
    }

    #[test]
    fn instances_round_trip() {
        let mut r = Replayed::default();
        let config = InstanceConfig {
            format: "json".into(),
            auto_offset_reset: "earliest".into(),
            auto_commit: false,
            topics: Some(vec!["t".into()]),
            topic_pattern: None,
            assignment: None,
        };
        r.apply(&page_record(
            0,
            &Change::Instance {
                group: "g".into(),
                name: "i".into(),
                config: Some(config.clone()),
            },
            3,
        ));
        assert_eq!(r.instances["g"]["i"], config);
        r.apply(&page_record(
            1,
            &Change::Instance {
                group: "g".into(),
                name: "i".into(),
                config: None,
            },
            3,
        ));
        assert!(r.instances["g"].is_empty());
    }
}
