//! Request and response bodies shared by the handlers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::assign::{Assignment, Tp};

/// Partitions of one topic, as KIP-848 heartbeats carry them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<u32>,
}

pub fn to_topic_partitions(assignment: &Assignment) -> Vec<TopicPartitions> {
    let mut by_topic: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (topic, partition) in assignment {
        by_topic.entry(topic).or_default().push(*partition);
    }
    by_topic
        .into_iter()
        .map(|(topic, partitions)| TopicPartitions {
            topic: topic.to_string(),
            partitions,
        })
        .collect()
}

pub fn from_topic_partitions(list: &[TopicPartitions]) -> Assignment {
    list.iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.clone(), *p)))
        .collect()
}

/// A topic partition as REST Proxy spells it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PartitionRef {
    pub topic: String,
    pub partition: i64,
}

/// An offset of a partition as REST Proxy spells it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartitionsBody {
    #[serde(default)]
    pub partitions: Vec<PartitionRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OffsetsBody {
    #[serde(default)]
    pub offsets: Vec<PartitionOffset>,
}

/// Checks a partition reference against the topic catalog.
pub fn check_partition(
    topics: &BTreeMap<String, u32>,
    topic: &str,
    partition: i64,
) -> Result<Tp, crate::error::CoordinatorError> {
    let count = topics
        .get(topic)
        .ok_or_else(|| crate::error::CoordinatorError::TopicNotFound(topic.to_string()))?;
    if partition < 0 || partition >= i64::from(*count) {
        return Err(crate::error::CoordinatorError::PartitionNotFound {
            topic: topic.to_string(),
            partition,
        });
    }
    Ok((topic.to_string(), partition as u32))
}

pub fn check_offset(offset: i64) -> Result<(), crate::error::CoordinatorError> {
    if offset < 0 {
        return Err(crate::error::CoordinatorError::InvalidRequest(format!(
            "offset {offset} is negative"
        )));
    }
    Ok(())
}
