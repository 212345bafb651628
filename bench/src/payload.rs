//! Produce request bodies, built once before the run: random values of an
//! exact serialized size, optional random keys, in the ndjson, v2 or v3 form.

use std::fmt::Write as _;

use bytes::Bytes;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::cli::Form;

/// How the records of a produce body look.
#[derive(Debug, Clone, Copy)]
pub struct RecordShape {
    /// Request form.
    pub form: Form,
    /// Serialized size of each value, quotes included (at least 2).
    pub record_size: usize,
    /// Random keys and no partition, instead of one explicit partition.
    pub keyed: bool,
}

/// One ready-to-send request body.
#[derive(Debug, Clone)]
pub struct Body {
    /// The bytes to send.
    pub bytes: Bytes,
    /// Records it carries.
    pub records: u64,
    /// The partition every record names, when not keyed.
    pub partition: Option<i32>,
}

/// Distinct bodies built per partition (or in all, when keyed): enough that
/// consecutive requests do not carry identical bytes, few enough to stay small.
const VARIANTS_BATCHED: usize = 2;
const VARIANTS_SINGLE: usize = 64;

/// The bodies a run cycles through. Unkeyed, body `i` targets partition
/// `i % partitions`, so taking them in turn round-robins the partitions.
pub fn body_set(
    shape: RecordShape,
    partitions: i32,
    batch: usize,
    rng: &mut impl Rng,
) -> Vec<Body> {
    let variants = if batch == 1 {
        VARIANTS_SINGLE
    } else {
        VARIANTS_BATCHED
    };
    let mut out = Vec::new();
    for _ in 0..variants {
        if shape.keyed {
            out.push(build(shape, None, batch, rng));
        } else {
            for p in 0..partitions {
                out.push(build(shape, Some(p), batch, rng));
            }
        }
    }
    out
}

/// One body of `records` records, all for `partition` (or keyed when `None`).
pub fn build(
    shape: RecordShape,
    partition: Option<i32>,
    records: usize,
    rng: &mut impl Rng,
) -> Body {
    let mut s = String::with_capacity(records * (shape.record_size + 48) + 16);
    match shape.form {
        Form::Ndjson => {
            for _ in 0..records {
                kafka_record(&mut s, shape, partition, rng);
                s.push('\n');
            }
        }
        Form::V2 => {
            s.push_str("{\"records\":[");
            for i in 0..records {
                if i > 0 {
                    s.push(',');
                }
                kafka_record(&mut s, shape, partition, rng);
            }
            s.push_str("]}");
        }
        Form::V3 => {
            // Single-record form: one record whatever `records` says.
            s.push('{');
            if let Some(p) = partition {
                let _ = write!(s, "\"partition_id\":{p},");
            }
            if shape.keyed {
                s.push_str("\"key\":{\"type\":\"STRING\",\"data\":");
                push_key(&mut s, rng);
                s.push_str("},");
            }
            s.push_str("\"value\":{\"type\":\"STRING\",\"data\":");
            push_value(&mut s, shape.record_size, rng);
            s.push_str("}}");
        }
    }
    let records = if shape.form == Form::V3 {
        1
    } else {
        records as u64
    };
    Body {
        bytes: Bytes::from(s),
        records,
        partition,
    }
}

/// `{"key":..,"value":..,"partition":..}` as ndjson lines and v2 records have it.
fn kafka_record(s: &mut String, shape: RecordShape, partition: Option<i32>, rng: &mut impl Rng) {
    s.push('{');
    if shape.keyed {
        s.push_str("\"key\":");
        push_key(s, rng);
        s.push(',');
    }
    s.push_str("\"value\":");
    push_value(s, shape.record_size, rng);
    if let Some(p) = partition {
        let _ = write!(s, ",\"partition\":{p}");
    }
    s.push('}');
}

/// A random key, as a JSON string `"k<16 alphanumerics>"`.
fn push_key(s: &mut String, rng: &mut impl Rng) {
    s.push_str("\"k");
    s.extend(rng.sample_iter(Alphanumeric).take(16).map(char::from));
    s.push('"');
}

/// A JSON string of random alphanumerics whose serialized size is `size`.
fn push_value(s: &mut String, size: usize, rng: &mut impl Rng) {
    s.push('"');
    s.extend(
        rng.sample_iter(Alphanumeric)
            .take(size.saturating_sub(2))
            .map(char::from),
    );
    s.push('"');
}

/// The first per-record or per-partition error in an HTTP 200 produce answer: v2 and NDJSON
/// answers report failures in the body (`"error_code": N` instead of `null`), not in the
/// status. `None` when every entry succeeded. The scan is byte-level, so a success costs no
/// JSON decoding.
pub fn answer_error(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"error_code\":";
    let mut rest = body;
    while let Some(at) = find(rest, KEY) {
        rest = &rest[at + KEY.len()..];
        let value = rest.trim_ascii_start();
        if !value.starts_with(b"null") {
            // Report the whole entry around the code, cut to a readable length.
            let start = body.len() - rest.len();
            let from = body[..start].iter().rposition(|&c| c == b'{').unwrap_or(0);
            let to = body[start..]
                .iter()
                .position(|&c| c == b'}')
                .map_or(body.len(), |p| start + p + 1);
            let entry = &body[from..to.min(from + 512)];
            return Some(format!(
                "error in answer: {}",
                String::from_utf8_lossy(entry)
            ));
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn shape(form: Form, keyed: bool) -> RecordShape {
        RecordShape {
            form,
            record_size: 100,
            keyed,
        }
    }

    #[test]
    fn ndjson_lines_have_exact_value_size_and_partition() {
        let body = build(shape(Form::Ndjson, false), Some(3), 5, &mut rand::rng());
        assert_eq!(body.records, 5);
        let text = std::str::from_utf8(&body.bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        for line in lines {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["partition"], 3);
            assert_eq!(v["value"].to_string().len(), 100);
            assert!(v.get("key").is_none());
        }
    }

    #[test]
    fn v2_and_v3_parse() {
        let v2 = build(shape(Form::V2, true), None, 3, &mut rand::rng());
        let v: Value = serde_json::from_slice(&v2.bytes).unwrap();
        assert_eq!(v["records"].as_array().unwrap().len(), 3);
        assert!(v["records"][0]["key"].is_string());
        let v3 = build(shape(Form::V3, false), Some(1), 1000, &mut rand::rng());
        assert_eq!(v3.records, 1);
        let v: Value = serde_json::from_slice(&v3.bytes).unwrap();
        assert_eq!(v["partition_id"], 1);
        assert_eq!(v["value"]["data"].to_string().len(), 100);
    }

    #[test]
    fn errors_inside_ok_answers_are_found() {
        let ok = br#"{"partitions":[{"partition":0,"base_offset":0,"last_offset":9,"record_count":10,"error_code":null,"message":null}]}"#;
        assert_eq!(answer_error(ok), None);
        assert_eq!(answer_error(b"{}"), None);
        let bad = br#"{"partitions":[{"partition":0,"error_code":null},{"partition":1,"base_offset":null,"record_count":10,"error_code": 50302,"message":"no leader"}]}"#;
        let e = answer_error(bad).unwrap();
        assert!(e.contains("50302") && e.contains("\"partition\":1"), "{e}");
        let v2 = br#"{"offsets":[{"partition":0,"offset":1,"error_code":null,"error":null},{"partition":null,"offset":null,"error_code":42201,"error":"too large"}]}"#;
        assert!(answer_error(v2).unwrap().contains("42201"));
    }

    #[test]
    fn body_set_round_robins_partitions() {
        let set = body_set(shape(Form::Ndjson, false), 3, 2, &mut rand::rng());
        assert_eq!(set.len(), 3 * VARIANTS_BATCHED);
        for (i, b) in set.iter().enumerate() {
            let first = b.bytes.split(|&c| c == b'\n').next().unwrap();
            let v: Value = serde_json::from_slice(first).unwrap();
            assert_eq!(v["partition"], (i % 3) as i64);
        }
    }
}
