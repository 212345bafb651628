//! NDJSON produce bodies for the baseline: each line parsed into borrowed raw
//! JSON (no copy, no tree), values framed as `u32 LE length + bytes`, and the
//! `{"partitions":[...]}` answer built from the offsets given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Length prefix marking a null or absent value.
pub const NULL_LEN: u32 = u32::MAX;

/// One NDJSON line. The key is parsed (so a bad key is a bad line) but not stored.
#[derive(Deserialize)]
struct Rec<'a> {
    #[serde(borrow, rename = "key")]
    _key: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    partition: Option<i32>,
}

/// A parsed body: the bytes to append, and the partition of each record in order.
#[derive(Debug, Default)]
pub struct Batch {
    /// Length-prefixed values, ready for one write.
    pub frame: Vec<u8>,
    /// Partition of each record (0 when the line names none).
    pub partitions: Vec<i32>,
}

/// Parses an NDJSON body; blank lines are skipped. The error names the
/// 1-based line that failed.
pub fn parse(body: &[u8]) -> Result<Batch, String> {
    let mut batch = Batch {
        frame: Vec::with_capacity(body.len()),
        partitions: Vec::new(),
    };
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: Rec = serde_json::from_slice(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if rec.partition.is_some_and(|p| p < 0) {
            return Err(format!("line {}: negative partition", i + 1));
        }
        match rec.value {
            Some(v) => {
                let len = u32::try_from(v.get().len())
                    .ok()
                    .filter(|&n| n != NULL_LEN)
                    .ok_or_else(|| format!("line {}: value too large", i + 1))?;
                batch.frame.extend_from_slice(&len.to_le_bytes());
                batch.frame.extend_from_slice(v.get().as_bytes());
            }
            None => batch.frame.extend_from_slice(&NULL_LEN.to_le_bytes()),
        }
        batch.partitions.push(rec.partition.unwrap_or(0));
    }
    Ok(batch)
}

/// The produce answer: `{"partitions":[...]}`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Ack {
    /// One entry per partition written, by partition id.
    pub partitions: Vec<PartitionAck>,
}

/// Where one partition's records of a request landed.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct PartitionAck {
    /// Partition id.
    pub partition: i32,
    /// Offset of its first record in this request.
    pub base_offset: u64,
    /// Offset of its last record in this request.
    pub last_offset: u64,
    /// Its records in this request.
    pub record_count: u64,
}

/// The answer for records given offsets `base, base+1, ...` in body order.
pub fn ack(base: u64, partitions: &[i32]) -> Ack {
    let mut by_partition: BTreeMap<i32, PartitionAck> = BTreeMap::new();
    for (offset, &partition) in (base..).zip(partitions) {
        by_partition
            .entry(partition)
            .and_modify(|a| {
                a.last_offset = offset;
                a.record_count += 1;
            })
            .or_insert(PartitionAck {
                partition,
                base_offset: offset,
                last_offset: offset,
                record_count: 1,
            });
    }
    Ack {
        partitions: by_partition.into_values().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_values_and_groups_partitions() {
        let body = b"{\"value\":\"ab\",\"partition\":1}\r\n\n{\"key\":{\"x\":1},\"value\":7}\n{\"value\":null,\"partition\":1}";
        let batch = parse(body).unwrap();
        assert_eq!(batch.partitions, [1, 0, 1]);
        let mut want = Vec::new();
        want.extend_from_slice(&4u32.to_le_bytes());
        want.extend_from_slice(b"\"ab\"");
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(b"7");
        want.extend_from_slice(&NULL_LEN.to_le_bytes());
        assert_eq!(batch.frame, want);
        let a = ack(10, &batch.partitions);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "{\"partitions\":[\
             {\"partition\":0,\"base_offset\":11,\"last_offset\":11,\"record_count\":1},\
             {\"partition\":1,\"base_offset\":10,\"last_offset\":12,\"record_count\":2}]}"
        );
    }

    #[test]
    fn bad_lines_are_named() {
        let err = parse(b"{\"value\":1}\n{\"value\":}\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse(b"{\"value\":1,\"partition\":-1}").is_err());
        assert!(parse(b"[1]").is_err());
    }
}
