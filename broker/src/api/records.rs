//! Reading records by offset (with long-poll) and listing offsets.
//!
//! The answer is written by hand into one buffer: it is the hottest path of the broker, and
//! rendering keys and values without building `serde_json::Value`s is several times faster.

use std::fmt::Write as _;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use runnel_common::error::ErrorBody;
use serde::Deserialize;

use super::extract::{ApiPath, ApiQuery};
use super::forward;
use super::model::*;
use super::state::{AppState, Leadership};
use crate::error::BrokerError;
use crate::log::batch;
use crate::metrics::Metrics;
use crate::storage::Partition;

const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
const MAX_MAX_BYTES: usize = 64 * 1024 * 1024;
const MAX_WAIT_MS: u64 = 60_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReadQuery {
    /// An offset, `earliest` (default) or `latest`.
    pub offset: Option<String>,
    /// Stop after about this many bytes of records (default 1 MiB, at most 64 MiB); at least one
    /// batch is always returned.
    pub max_bytes: Option<i64>,
    /// Return at most this many records.
    pub max_records: Option<i64>,
    /// Wait up to this long for records when there are none yet (default 0, at most 60000).
    pub max_wait_ms: Option<i64>,
    /// How keys and values are rendered: `auto` (default: JSON if the bytes are JSON, else
    /// STRING if UTF-8, else BINARY), `json`, `string` or `binary`.
    pub format: Option<String>,
    /// Overrides `format` for keys.
    pub key_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Auto,
    Json,
    String,
    Binary,
}

fn parse_format(value: Option<&str>, default: Format) -> Result<Format, BrokerError> {
    match value {
        None => Ok(default),
        Some("auto") => Ok(Format::Auto),
        Some("json") => Ok(Format::Json),
        Some("string") => Ok(Format::String),
        Some("binary") => Ok(Format::Binary),
        Some(other) => Err(BrokerError::InvalidParameter(format!(
            "format must be auto, json, string or binary, not {other:?}"
        ))),
    }
}

fn bounded(value: Option<i64>, name: &str, default: i64, max: i64) -> Result<i64, BrokerError> {
    match value {
        None => Ok(default),
        Some(v) if v < 0 => Err(BrokerError::InvalidParameter(format!(
            "{name} must not be negative"
        ))),
        Some(v) => Ok(v.min(max)),
    }
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}/partitions/{partition}/records", tag = "consume",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ("partition" = i64, Path), ReadQuery),
    responses((status = 200, body = RecordsPage), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "offset out of range"), (status = 500, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn read_records(
    State(state): State<AppState>,
    ApiPath((cluster_id, name, partition)): ApiPath<(String, String, i64)>,
    ApiQuery(query): ApiQuery<ReadQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, BrokerError> {
    state.check_cluster(&cluster_id)?;
    let max_bytes = bounded(
        query.max_bytes,
        "max_bytes",
        DEFAULT_MAX_BYTES as i64,
        MAX_MAX_BYTES as i64,
    )? as usize;
    let max_records = bounded(query.max_records, "max_records", i64::MAX, i64::MAX)?;
    let max_wait = bounded(query.max_wait_ms, "max_wait_ms", 0, MAX_WAIT_MS as i64)? as u64;
    let format = parse_format(query.format.as_deref(), Format::Auto)?;
    let key_format = parse_format(query.key_format.as_deref(), format)?;
    let (local, partition) =
        match local_or_forward(&state, &name, partition, &uri, &headers).await? {
            Ok(found) => found,
            Err(relayed) => return Ok(relayed),
        };
    let offsets = local.offsets();
    let offset = match query.offset.as_deref() {
        None | Some("earliest") => offsets.log_start,
        Some("latest") => offsets.high_watermark,
        Some(text) => text.parse::<i64>().map_err(|_| {
            BrokerError::InvalidParameter(format!(
                "offset must be a number, earliest or latest, not {text:?}"
            ))
        })?,
    };
    if offset < 0 {
        return Err(BrokerError::InvalidParameter(format!(
            "offset {offset} is negative"
        )));
    }
    // Past the high watermark but within the log (a new leader whose high watermark has not
    // caught up with what consumers already saw) is not an error: the page is empty until it
    // does, as Kafka answers OFFSET_NOT_AVAILABLE there. Past the log end is.
    let readable_end = offsets.high_watermark.max(offsets.log_end);
    if offset < offsets.log_start || offset > readable_end {
        return Err(BrokerError::OffsetOutOfRange {
            topic: name,
            partition,
            requested: offset,
            log_start: offsets.log_start,
            log_end: offsets.high_watermark,
        });
    }
    if offset >= offsets.high_watermark && max_wait > 0 {
        local
            .wait_for_data(offset, Duration::from_millis(max_wait))
            .await;
    }
    let (body, count, next_offset) = render_page(
        &state,
        &local,
        &name,
        partition,
        offset,
        max_bytes,
        max_records,
        key_format,
        format,
    )?;
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The page's shape in headers too, for clients that only count or page through records.
    headers.insert(RECORD_COUNT_HEADER, HeaderValue::from(count));
    headers.insert(NEXT_OFFSET_HEADER, HeaderValue::from(next_offset));
    Ok(response)
}

/// Response header: the number of records in the page.
pub const RECORD_COUNT_HEADER: &str = "x-runnel-record-count";
/// Response header: where the next read should start (the body's `next_offset`).
pub const NEXT_OFFSET_HEADER: &str = "x-runnel-next-offset";

/// Reads from `offset` and renders the page as JSON bytes; returns them with the record count
/// and the next offset.
#[allow(clippy::too_many_arguments)]
fn render_page(
    state: &AppState,
    local: &Partition,
    name: &str,
    partition: u32,
    offset: i64,
    max_bytes: usize,
    max_records: i64,
    key_format: Format,
    value_format: Format,
) -> Result<(Vec<u8>, i64, i64), BrokerError> {
    // Readers never see past the high watermark, even if the log already holds more.
    let high_watermark = local.high_watermark();
    let bytes = if offset < high_watermark {
        local
            .read(offset, max_bytes, max_records)
            .map_err(|e| BrokerError::from_log(name, partition, e))?
    } else {
        Vec::new()
    };
    let log_start = local.offsets().log_start;
    let mut out = Vec::with_capacity(bytes.len() * 2 + 256);
    let mut records_json = Vec::with_capacity(bytes.len() * 2);
    let mut next_offset = offset;
    let mut count = 0i64;
    let mut position = 0;
    'batches: while position < bytes.len() {
        let header = batch::check(&bytes[position..]).map_err(|e| {
            BrokerError::Storage(format!("{name}-{partition}: corrupt batch at read: {e}"))
        })?;
        let batch_bytes = &bytes[position..position + header.size];
        position += header.size;
        for record in batch::records(&header, batch_bytes) {
            let record =
                record.map_err(|e| BrokerError::Storage(format!("{name}-{partition}: {e}")))?;
            if record.offset < offset {
                continue;
            }
            if record.offset >= high_watermark || count >= max_records {
                break 'batches;
            }
            if count > 0 {
                records_json.push(b',');
            }
            write_record(
                &mut records_json,
                &record,
                header.timestamp_type.as_str(),
                key_format,
                value_format,
            );
            next_offset = record.offset + 1;
            count += 1;
        }
        // A whole batch was read: the next read starts after it, even where compaction left
        // it with fewer records (or none) than offsets, so readers never stall on a gap.
        next_offset = next_offset.max(header.next_offset().min(high_watermark));
    }
    Metrics::add(&state.metrics.records_read, count as u64);
    let _ = write!(
        Str(&mut out),
        "{{\"cluster_id\":\"{}\",\"topic_name\":\"{name}\",\"partition_id\":{partition},\"log_start_offset\":{log_start},\"high_watermark\":{high_watermark},\"next_offset\":{next_offset},\"records\":[",
        state.cluster_id
    );
    out.extend_from_slice(&records_json);
    out.extend_from_slice(b"]}");
    Ok((out, count, next_offset))
}

/// `fmt::Write` into a byte buffer.
struct Str<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Str<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn write_record(
    out: &mut Vec<u8>,
    record: &batch::RecordView<'_>,
    timestamp_type: &str,
    key_format: Format,
    value_format: Format,
) {
    out.extend_from_slice(b"{\"offset\":");
    push_int(out, record.offset);
    out.extend_from_slice(b",\"timestamp\":");
    push_int(out, record.timestamp);
    out.extend_from_slice(b",\"timestamp_type\":\"");
    out.extend_from_slice(timestamp_type.as_bytes());
    out.extend_from_slice(b"\",\"key\":");
    write_data(out, record.key, key_format);
    out.extend_from_slice(b",\"value\":");
    write_data(out, record.value, value_format);
    out.extend_from_slice(b",\"headers\":[");
    for (i, (name, value)) in record.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_json_string(out, &String::from_utf8_lossy(name));
        out.extend_from_slice(b",\"value\":");
        match value {
            Some(v) => write_base64(out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// Appends the decimal digits of `value` (`fmt` machinery is measurably slower here; two
/// digits per division halves the divisions).
fn push_int(out: &mut Vec<u8>, value: i64) {
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut n = value.unsigned_abs();
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_data(out: &mut Vec<u8>, data: Option<&[u8]>, format: Format) {
    let Some(bytes) = data else {
        out.extend_from_slice(b"null");
        return;
    };
    if matches!(format, Format::Json | Format::Auto)
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        // Valid JSON is valid UTF-8 too: embed it as it is.
        out.extend_from_slice(b"{\"type\":\"JSON\",\"data\":");
        out.extend_from_slice(bytes.trim_ascii());
        out.push(b'}');
        return;
    }
    // Bytes that cannot be shown as asked fall back to what shows them faithfully.
    match std::str::from_utf8(bytes) {
        Ok(text) if format != Format::Binary => {
            out.extend_from_slice(b"{\"type\":\"STRING\",\"data\":");
            write_json_string(out, text);
        }
        _ => {
            out.extend_from_slice(b"{\"type\":\"BINARY\",\"data\":");
            write_base64(out, bytes);
        }
    }
    out.push(b'}');
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // serde_json's escaping writes into any io::Write; a Vec never fails.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::push_int;

    #[test]
    fn integers_render_like_display() {
        for value in [
            0i64,
            7,
            -7,
            10,
            99,
            100,
            101,
            -100,
            1_700_000_000_123,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            push_int(&mut out, value);
            assert_eq!(String::from_utf8(out).expect("utf8"), value.to_string());
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct OffsetsQuery {
    /// Milliseconds since the epoch: also find the first record at or after it.
    pub timestamp: Option<i64>,
}

/// How long a relayed read may take: its own long-poll wait plus a margin, so a leader that
/// is paused or cut off fails the request instead of holding it.
fn relay_timeout(uri: &axum::http::Uri) -> std::time::Duration {
    let wait_ms = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("max_wait_ms=")))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_WAIT_MS);
    std::time::Duration::from_millis(wait_ms + 3000)
}

async fn local_or_forward(
    state: &AppState,
    name: &str,
    partition: i64,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Result<(std::sync::Arc<Partition>, u32), Response>, BrokerError> {
    let view = state.view();
    let topic = state.topic(&view, name)?;
    let partition = state.partition_id(&topic, name, partition)?;
    match state.leadership(&view, &topic, name, partition)? {
        Leadership::Local(local) => Ok(Ok((local, partition))),
        Leadership::Remote { leader_id, url } => {
            if forward::was_forwarded(headers) {
                return Err(state.not_leader(name, partition, leader_id, &url));
            }
            let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
            Ok(Err(forward::relay_get(
                state,
                &url,
                path,
                relay_timeout(uri),
            )
            .await?))
        }
    }
}

#[utoipa::path(get, path = "/v3/clusters/{cluster_id}/topics/{topic}/partitions/{partition}/offsets", tag = "consume",
    params(("cluster_id" = String, Path), ("topic" = String, Path), ("partition" = i64, Path), OffsetsQuery),
    responses((status = 200, body = OffsetsData), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 500, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list_offsets(
    State(state): State<AppState>,
    ApiPath((cluster_id, name, partition)): ApiPath<(String, String, i64)>,
    ApiQuery(query): ApiQuery<OffsetsQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, BrokerError> {
    state.check_cluster(&cluster_id)?;
    if query.timestamp.is_some_and(|t| t < 0) {
        return Err(BrokerError::InvalidParameter(
            "timestamp must not be negative".into(),
        ));
    }
    let (local, partition) =
        match local_or_forward(&state, &name, partition, &uri, &headers).await? {
            Ok(found) => found,
            Err(relayed) => return Ok(relayed),
        };
    let offsets = local.offsets();
    let offset_for_timestamp = match query.timestamp {
        None => None,
        Some(timestamp) => {
            let high_watermark = offsets.high_watermark;
            local
                .with_log(|log| log.offset_for_timestamp(timestamp))
                .map_err(|e| BrokerError::from_log(&name, partition, e))?
                .filter(|(offset, _)| *offset < high_watermark)
                .map(|(offset, timestamp)| TimestampOffset { offset, timestamp })
        }
    };
    Ok(Json(OffsetsData {
        cluster_id: state.cluster_id.to_string(),
        topic_name: name,
        partition_id: partition,
        earliest_offset: offsets.log_start,
        latest_offset: offsets.high_watermark,
        log_end_offset: offsets.log_end,
        offset_for_timestamp,
    })
    .into_response())
}

#[utoipa::path(get, path = "/topics/{topic}/partitions/{partition}/offsets", tag = "v2",
    params(("topic" = String, Path), ("partition" = i64, Path)),
    responses((status = 200, body = V2Offsets), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn v2_offsets(
    State(state): State<AppState>,
    ApiPath((name, partition)): ApiPath<(String, i64)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, BrokerError> {
    let (local, _) = match local_or_forward(&state, &name, partition, &uri, &headers).await? {
        Ok(found) => found,
        Err(relayed) => return Ok(relayed),
    };
    let offsets = local.offsets();
    Ok(Json(V2Offsets {
        beginning_offset: offsets.log_start,
        end_offset: offsets.high_watermark,
    })
    .into_response())
}
