//! From request bodies to appended records: parsing the produce forms into records borrowed
//! from the body, choosing partitions, batching, appending, and waiting for durability.
//!
//! Forms: Confluent v3 (one record object, or a stream of them), Confluent v2
//! (`{"records": [...]}` with JSON or base64 embedded data), and NDJSON (one v2 JSON record per
//! line) for large batches.

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::BrokerError;
use crate::log::batch::NewRecord;

/// Key or value bytes, borrowed from the request body where possible.
type Bytes<'a> = Cow<'a, [u8]>;

/// How keys and values are embedded in a v2 or NDJSON request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// Any JSON value; its text is stored.
    Json,
    /// A base64 string; its decoded bytes are stored.
    Binary,
}

/// A record to produce with the partition the client asked for, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRecord<'a> {
    pub partition: Option<i64>,
    pub record: NewRecord<'a>,
}

/// The type tag of a v3 key or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Json,
    String,
    Binary,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::String => "STRING",
            Self::Binary => "BINARY",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Record<'a> {
    #[serde(default)]
    partition_id: Option<i64>,
    #[serde(borrow, default)]
    key: Option<V3Data<'a>>,
    #[serde(borrow, default)]
    value: Option<V3Data<'a>>,
    #[serde(borrow, default)]
    headers: Option<Vec<V3Header<'a>>>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct V3Data<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Header<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct V2Body<'a> {
    #[serde(borrow)]
    records: Vec<V2Record<'a>>,
}

#[derive(Deserialize)]
struct V2Record<'a> {
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    partition: Option<i64>,
}

/// One parsed v3 record, or why it cannot be produced; with the types of key and value for
/// the answer.
pub type V3Parsed<'a> =
    Result<(ProduceRecord<'a>, Option<DataType>, Option<DataType>), BrokerError>;

/// Parses a v3 body: one record object or several concatenated (a stream). A record that is
/// well-formed JSON but invalid (bad base64, unknown type) yields an error in its place.
///
/// # Errors
/// [`BrokerError::MalformedRequest`] when the body is not a sequence of JSON objects.
pub fn parse_v3(body: &[u8], now_ms: i64) -> Result<Vec<V3Parsed<'_>>, BrokerError> {
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<V3Record<'_>>();
    let mut out = Vec::new();
    for item in stream {
        let record =
            item.map_err(|e| BrokerError::MalformedRequest(format!("malformed record: {e}")))?;
        out.push(convert_v3(record, now_ms));
    }
    if out.is_empty() {
        return Err(BrokerError::MalformedRequest(
            "request body holds no record".into(),
        ));
    }
    Ok(out)
}

fn convert_v3(record: V3Record<'_>, now_ms: i64) -> V3Parsed<'_> {
    let (key, key_type) = convert_v3_data(record.key, "key")?;
    let (value, value_type) = convert_v3_data(record.value, "value")?;
    let mut headers = Vec::new();
    for header in record.headers.unwrap_or_default() {
        let value = match header.value {
            None => None,
            Some(text) => Some(Cow::Owned(decode_base64(&text, "header value")?)),
        };
        headers.push((header.name, value));
    }
    let timestamp = match record.timestamp {
        None => now_ms,
        Some(raw) => parse_timestamp(raw.get())?,
    };
    Ok((
        ProduceRecord {
            partition: record.partition_id,
            record: NewRecord {
                key,
                value,
                headers,
                timestamp,
            },
        },
        key_type,
        value_type,
    ))
}

fn convert_v3_data<'a>(
    data: Option<V3Data<'a>>,
    what: &str,
) -> Result<(Option<Bytes<'a>>, Option<DataType>), BrokerError> {
    let Some(data) = data else {
        return Ok((None, None));
    };
    let kind = match data.kind.as_deref() {
        None | Some("JSON") => DataType::Json,
        Some("STRING") => DataType::String,
        Some("BINARY") => DataType::Binary,
        Some(other) => {
            return Err(BrokerError::InvalidRequest(format!(
                "{what} type {other:?} is not supported; use JSON, STRING or BINARY"
            )));
        }
    };
    let Some(raw) = data.data else {
        return Ok((None, Some(kind)));
    };
    let bytes = match kind {
        DataType::Json => Cow::Borrowed(raw.get().as_bytes()),
        DataType::String => match serde_json::from_str::<Cow<'a, str>>(raw.get()) {
            Ok(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
            Ok(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
            Err(_) => {
                return Err(BrokerError::InvalidRequest(format!(
                    "{what} of type STRING must be a JSON string"
                )));
            }
        },
        DataType::Binary => {
            let text: Cow<'_, str> = serde_json::from_str(raw.get()).map_err(|_| {
                BrokerError::InvalidRequest(format!(
                    "{what} of type BINARY must be a base64 string"
                ))
            })?;
            Cow::Owned(decode_base64(&text, what)?)
        }
    };
    Ok((Some(bytes), Some(kind)))
}

/// Parses a v2 `{"records": [...]}` body.
///
/// # Errors
/// [`BrokerError::MalformedRequest`] for bad JSON; [`BrokerError::InvalidRequest`] for bad
/// base64.
pub fn parse_v2(
    body: &[u8],
    embedded: Embedded,
    now_ms: i64,
) -> Result<Vec<ProduceRecord<'_>>, BrokerError> {
    let parsed: V2Body<'_> = serde_json::from_slice(body)
        .map_err(|e| BrokerError::MalformedRequest(format!("malformed request body: {e}")))?;
    if parsed.records.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "\"records\" must not be empty".into(),
        ));
    }
    parsed
        .records
        .into_iter()
        .map(|r| convert_v2(r, embedded, now_ms))
        .collect()
}

/// Parses NDJSON: one v2 JSON record object per line.
///
/// # Errors
/// [`BrokerError::MalformedRequest`] naming the record that is not valid JSON.
pub fn parse_ndjson(body: &[u8], now_ms: i64) -> Result<Vec<ProduceRecord<'_>>, BrokerError> {
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<V2Record<'_>>();
    let mut out = Vec::new();
    for (index, item) in stream.enumerate() {
        let record = item.map_err(|e| {
            BrokerError::MalformedRequest(format!("malformed record #{index}: {e}"))
        })?;
        out.push(convert_v2(record, Embedded::Json, now_ms)?);
    }
    if out.is_empty() {
        return Err(BrokerError::MalformedRequest(
            "request body holds no record".into(),
        ));
    }
    Ok(out)
}

fn convert_v2<'a>(
    record: V2Record<'a>,
    embedded: Embedded,
    now_ms: i64,
) -> Result<ProduceRecord<'a>, BrokerError> {
    let convert =
        |raw: Option<&'a RawValue>, what: &str| -> Result<Option<Cow<'a, [u8]>>, BrokerError> {
            let Some(raw) = raw else { return Ok(None) };
            if raw.get() == "null" {
                return Ok(None);
            }
            match embedded {
                Embedded::Json => Ok(Some(Cow::Borrowed(raw.get().as_bytes()))),
                Embedded::Binary => {
                    let text: Cow<'_, str> = serde_json::from_str(raw.get()).map_err(|_| {
                        BrokerError::InvalidRequest(format!("{what} must be a base64 string"))
                    })?;
                    Ok(Some(Cow::Owned(decode_base64(&text, what)?)))
                }
            }
        };
    Ok(ProduceRecord {
        partition: record.partition,
        record: NewRecord {
            key: convert(record.key, "key")?,
            value: convert(record.value, "value")?,
            headers: Vec::new(),
            timestamp: now_ms,
        },
    })
}

fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, BrokerError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| BrokerError::InvalidRequest(format!("{what} is not valid base64: {e}")))
}

/// A timestamp as milliseconds since the epoch or an RFC 3339 string.
fn parse_timestamp(raw: &str) -> Result<i64, BrokerError> {
    if let Ok(ms) = raw.parse::<i64>() {
        if ms < 0 {
            return Err(BrokerError::InvalidRequest(format!(
                "timestamp {ms} is negative"
            )));
        }
        return Ok(ms);
    }
    let text: String = serde_json::from_str(raw).map_err(|_| {
        BrokerError::InvalidRequest("timestamp must be milliseconds or an RFC 3339 string".into())
    })?;
    runnel_common::time::parse_rfc3339(&text)
        .ok_or_else(|| BrokerError::InvalidRequest(format!("timestamp {text:?} is not RFC 3339")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_types_decode_to_bytes() {
        let body = br#"{"key":{"type":"STRING","data":"k"},"value":{"type":"JSON","data":{"a":[1,2]}}}
            {"value":{"type":"BINARY","data":"aGVsbG8="},"headers":[{"name":"h","value":"dg=="}],"timestamp":5}
            {"value":{"type":"STRING","data":"esc\"aped"},"partition_id":2,"timestamp":"1970-01-01T00:00:01Z"}"#;
        let parsed = parse_v3(body, 99).expect("parses");
        let records: Vec<_> = parsed.into_iter().map(|r| r.expect("valid").0).collect();
        assert_eq!(records[0].record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(
            records[0].record.value.as_deref(),
            Some(&br#"{"a":[1,2]}"#[..])
        );
        assert_eq!(records[0].record.timestamp, 99);
        assert_eq!(records[1].record.value.as_deref(), Some(&b"hello"[..]));
        assert_eq!(records[1].record.headers[0].1.as_deref(), Some(&b"v"[..]));
        assert_eq!(records[1].record.timestamp, 5);
        assert_eq!(records[2].record.value.as_deref(), Some(&b"esc\"aped"[..]));
        assert_eq!(records[2].partition, Some(2));
        assert_eq!(records[2].record.timestamp, 1000);
    }

    #[test]
    fn v3_bad_records_fail_alone() {
        let body =
            br#"{"value":{"type":"BINARY","data":"***"}} {"value":{"type":"STRING","data":"ok"}}"#;
        let parsed = parse_v3(body, 0).expect("parses");
        assert!(matches!(parsed[0], Err(BrokerError::InvalidRequest(_))));
        assert!(parsed[1].is_ok());
        assert!(parse_v3(b"{\"value\":", 0).is_err());
        assert!(parse_v3(b"", 0).is_err());
        assert!(parse_v3(br#"{"value":{"type":"AVRO","data":1}}"#, 0).expect("parses")[0].is_err());
    }

    #[test]
    fn v2_and_ndjson_forms() {
        let v2 = parse_v2(
            br#"{"records":[{"key":"k","value":{"x":1}},{"value":null,"partition":1}]}"#,
            Embedded::Json,
            0,
        )
        .expect("parses");
        assert_eq!(v2[0].record.key.as_deref(), Some(&b"\"k\""[..]));
        assert_eq!(v2[1].record.value, None);
        let binary =
            parse_v2(br#"{"records":[{"value":"aGk="}]}"#, Embedded::Binary, 0).expect("parses");
        assert_eq!(binary[0].record.value.as_deref(), Some(&b"hi"[..]));
        assert!(
            parse_v2(
                br#"{"records":[{"value":"not base64!"}]}"#,
                Embedded::Binary,
                0
            )
            .is_err()
        );
        let nd =
            parse_ndjson(b"{\"value\":1}\n{\"value\":2,\"partition\":0}\n", 0).expect("parses");
        assert_eq!(nd.len(), 2);
        assert_eq!(nd[1].partition, Some(0));
        assert!(parse_ndjson(b"{\"value\":1}\n{oops}\n", 0).is_err());
    }
}
