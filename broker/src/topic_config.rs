//! Topic configuration: the keys a topic may override, their validation, and the effective
//! [`LogConfig`] of a topic (its overrides over the broker's defaults).

use std::collections::BTreeMap;

use crate::error::BrokerError;
use crate::log::LogConfig;
use crate::log::batch::TimestampType;
use crate::log::config::CleanupPolicy;

/// Every topic config the broker knows, in the order they are listed.
pub const NAMES: [&str; 15] = [
    "cleanup.policy",
    "delete.retention.ms",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Checks one `name=value` override.
///
/// # Errors
/// [`BrokerError::InvalidConfig`] naming the key and what is accepted.
pub fn validate(name: &str, value: &str) -> Result<(), BrokerError> {
    let invalid = |expected: &str| BrokerError::InvalidConfig {
        name: name.to_string(),
        reason: format!("invalid value {value:?}: expected {expected}"),
    };
    let long_at_least = |min: i64| -> Result<(), BrokerError> {
        match value.trim().parse::<i64>() {
            Ok(v) if v >= min => Ok(()),
            _ => Err(invalid(&format!("an integer >= {min}"))),
        }
    };
    match name {
        "cleanup.policy" => match CleanupPolicy::parse(value) {
            Some(_) => Ok(()),
            None => Err(invalid("\"delete\", \"compact\" or \"compact,delete\"")),
        },
        "min.cleanable.dirty.ratio" => match value.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(()),
            _ => Err(invalid("a number in [0, 1]")),
        },
        "flush.messages" | "min.insync.replicas" => long_at_least(1),
        "flush.ms"
        | "index.interval.bytes"
        | "max.message.bytes"
        | "delete.retention.ms"
        | "min.compaction.lag.ms" => long_at_least(0),
        "retention.bytes" | "retention.ms" => long_at_least(-1),
        "segment.bytes" => match value.trim().parse::<i64>() {
            Ok(v) if (14..=i64::from(i32::MAX)).contains(&v) => Ok(()),
            _ => Err(invalid("an integer in [14, 2147483647]")),
        },
        "segment.ms" => long_at_least(1),
        "message.timestamp.type" => match value {
            "CreateTime" | "LogAppendTime" => Ok(()),
            _ => Err(invalid("\"CreateTime\" or \"LogAppendTime\"")),
        },
        "unclean.leader.election.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err(invalid("\"true\" or \"false\"")),
        },
        _ => Err(BrokerError::InvalidConfig {
            name: name.to_string(),
            reason: format!("unknown topic config; known configs: {}", NAMES.join(", ")),
        }),
    }
}

/// The broker-wide defaults for topic configs, rendered as strings.
pub fn default_value(defaults: &LogConfig, name: &str) -> Option<String> {
    Some(match name {
        "cleanup.policy" => policy_name(defaults.cleanup).into(),
        "delete.retention.ms" => defaults.delete_retention_ms.to_string(),
        "min.cleanable.dirty.ratio" => defaults.min_cleanable_dirty_ratio.to_string(),
        "min.compaction.lag.ms" => defaults.min_compaction_lag_ms.to_string(),
        "flush.messages" => {
            if defaults.flush_messages == u64::MAX {
                i64::MAX.to_string()
            } else {
                defaults.flush_messages.to_string()
            }
        }
        "flush.ms" => defaults.flush_ms.to_string(),
        "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
        "max.message.bytes" => defaults.max_message_bytes.to_string(),
        "message.timestamp.type" => defaults.timestamp_type.as_str().into(),
        "min.insync.replicas" => "1".into(),
        "retention.bytes" => defaults.retention_bytes.to_string(),
        "retention.ms" => defaults.retention_ms.to_string(),
        "segment.bytes" => defaults.segment_bytes.to_string(),
        "segment.ms" => defaults.segment_ms.to_string(),
        "unclean.leader.election.enable" => "false".into(),
        _ => return None,
    })
}

/// The effective log settings of a topic with `overrides` over `defaults`. Overrides were
/// validated when stored; one that does not parse falls back to the default.
pub fn effective(defaults: &LogConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let mut config = defaults.clone();
    let long = |name: &str| {
        overrides
            .get(name)
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(v) = long("segment.bytes") {
        config.segment_bytes = v.max(14) as u64;
    }
    if let Some(v) = long("segment.ms") {
        config.segment_ms = v.max(1);
    }
    if let Some(v) = long("retention.ms") {
        config.retention_ms = v;
    }
    if let Some(v) = long("retention.bytes") {
        config.retention_bytes = v;
    }
    if let Some(v) = long("max.message.bytes") {
        config.max_message_bytes = v.max(0) as u64;
    }
    if let Some(v) = long("flush.messages") {
        config.flush_messages = v.max(1) as u64;
    }
    if let Some(v) = long("flush.ms") {
        config.flush_ms = v.max(0);
    }
    if let Some(v) = long("index.interval.bytes") {
        config.index_interval_bytes = v.max(0) as u64;
    }
    if let Some(v) = long("delete.retention.ms") {
        config.delete_retention_ms = v.max(0);
    }
    if let Some(v) = long("min.compaction.lag.ms") {
        config.min_compaction_lag_ms = v.max(0);
    }
    if let Some(v) = overrides
        .get("min.cleanable.dirty.ratio")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| (0.0..=1.0).contains(v))
    {
        config.min_cleanable_dirty_ratio = v;
    }
    if let Some(policy) = overrides
        .get("cleanup.policy")
        .and_then(|v| CleanupPolicy::parse(v))
    {
        config.cleanup = policy;
    }
    match overrides.get("message.timestamp.type").map(String::as_str) {
        Some("LogAppendTime") => config.timestamp_type = TimestampType::LogAppendTime,
        Some("CreateTime") => config.timestamp_type = TimestampType::CreateTime,
        _ => {}
    }
    config
}

/// `cleanup.policy` as Kafka spells it.
fn policy_name(policy: CleanupPolicy) -> &'static str {
    match (policy.compact, policy.delete) {
        (true, true) => "compact,delete",
        (true, false) => "compact",
        _ => "delete",
    }
}

/// The topic's `min.insync.replicas` (1 when unset or unparsable).
pub fn min_insync(overrides: &BTreeMap<String, String>) -> usize {
    overrides
        .get("min.insync.replicas")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_has_a_default_and_accepts_it() {
        let defaults = LogConfig::default();
        for name in NAMES {
            let value = default_value(&defaults, name).expect("default");
            validate(name, &value).unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "soon").is_err());
        assert!(validate("segment.bytes", "13").is_err());
        assert!(validate("message.timestamp.type", "Now").is_err());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("flush.messages", "0").is_err());
        assert!(validate("cleanup.policy", "bogus").is_err());
        assert!(validate("cleanup.policy", "").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "2").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "-0.1").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "NaN").is_err());
        assert!(validate("delete.retention.ms", "-1").is_err());
        assert!(validate("min.compaction.lag.ms", "-1").is_err());
    }

    #[test]
    fn compaction_configs_are_accepted_and_take_effect() {
        for policy in ["delete", "compact", "compact,delete", "delete,compact"] {
            validate("cleanup.policy", policy).unwrap_or_else(|e| panic!("{policy}: {e}"));
        }
        validate("min.cleanable.dirty.ratio", "0").expect("0 is a ratio");
        validate("min.cleanable.dirty.ratio", "1").expect("1 is a ratio");
        let overrides = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("delete.retention.ms".to_string(), "100".to_string()),
            ("min.cleanable.dirty.ratio".to_string(), "0.25".to_string()),
            ("min.compaction.lag.ms".to_string(), "5".to_string()),
        ]);
        let config = effective(&LogConfig::default(), &overrides);
        assert!(config.cleanup.compact && !config.cleanup.delete);
        assert_eq!(config.delete_retention_ms, 100);
        assert_eq!(config.min_cleanable_dirty_ratio, 0.25);
        assert_eq!(config.min_compaction_lag_ms, 5);
        assert_eq!(policy_name(config.cleanup), "compact");
    }

    #[test]
    fn overrides_win_over_defaults() {
        let defaults = LogConfig::default();
        let overrides = BTreeMap::from([
            ("segment.bytes".to_string(), "2048".to_string()),
            (
                "message.timestamp.type".to_string(),
                "LogAppendTime".to_string(),
            ),
        ]);
        let config = effective(&defaults, &overrides);
        assert_eq!(config.segment_bytes, 2048);
        assert_eq!(config.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(config.retention_ms, defaults.retention_ms);
    }
}
