//! Kafka's RecordBatch v2 format: encoding a batch of new records and reading batches back.
//!
//! A batch is a 61-byte header followed by varint-framed records:
//! ```text
//! 0  baseOffset i64        8  batchLength i32 (bytes after this field)
//! 12 partitionLeaderEpoch  16 magic i8 = 2     17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16        23 lastOffsetDelta  27 baseTimestamp i64  35 maxTimestamp i64
//! 43 producerId i64        51 producerEpoch    53 baseSequence i32   57 recordCount i32
//! ```
//! The CRC does not cover the base offset or the leader epoch, so the log stamps those at
//! append time without re-hashing. Only uncompressed batches are written or read here.

use std::borrow::Cow;

/// Bytes before the first record.
pub const HEADER_LEN: usize = 61;
/// Bytes of `baseOffset` + `batchLength`: what the log reads to hop from batch to batch.
pub const LOG_OVERHEAD: usize = 12;
const MAGIC: i8 = 2;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const COMPRESSION_MASK: i16 = 0x07;

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// Set by the producer (or the broker when the producer gave none).
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

impl TimestampType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTime => "CreateTime",
            Self::LogAppendTime => "LogAppendTime",
        }
    }
}

/// A record header: name and (nullable) value.
pub type Header<'a> = (Cow<'a, str>, Option<Cow<'a, [u8]>>);

/// A record to append. Borrowed from the request body wherever possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord<'a> {
    pub key: Option<Cow<'a, [u8]>>,
    pub value: Option<Cow<'a, [u8]>>,
    pub headers: Vec<Header<'a>>,
    pub timestamp: i64,
}

impl NewRecord<'_> {
    /// Bytes this record occupies in a batch, within a few bytes (varint framing).
    pub fn approximate_size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 10)
            .sum();
        self.key.as_ref().map_or(0, |k| k.len())
            + self.value.as_ref().map_or(0, |v| v.len())
            + headers
            + 21
    }
}

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("unsupported magic {0}")]
    Magic(i8),
    #[error("batch length {0} out of range")]
    Length(i32),
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("compressed batches (codec {0}) are not supported")]
    Compressed(i16),
    #[error("malformed record: {0}")]
    Record(&'static str),
}

/// Encodes `records` as one uncompressed batch with base offset 0 (the log stamps the real
/// one). With `log_append_time`, every record's timestamp becomes that time.
pub fn encode(records: &[NewRecord<'_>], log_append_time: Option<i64>) -> Vec<u8> {
    let capacity = HEADER_LEN
        + records
            .iter()
            .map(NewRecord::approximate_size)
            .sum::<usize>();
    let mut buf = Vec::with_capacity(capacity);
    buf.resize(HEADER_LEN, 0);
    let base_timestamp = log_append_time
        .or_else(|| records.first().map(|r| r.timestamp))
        .unwrap_or(0);
    let mut max_timestamp = base_timestamp;
    let mut body = Vec::with_capacity(64);
    for (delta, record) in records.iter().enumerate() {
        let timestamp = log_append_time.unwrap_or(record.timestamp);
        max_timestamp = max_timestamp.max(timestamp);
        body.clear();
        body.push(0); // record attributes
        put_varlong(&mut body, timestamp - base_timestamp);
        put_varint(&mut body, delta as i32);
        put_bytes(&mut body, record.key.as_deref());
        put_bytes(&mut body, record.value.as_deref());
        put_varint(&mut body, record.headers.len() as i32);
        for (name, value) in &record.headers {
            put_bytes(&mut body, Some(name.as_bytes()));
            put_bytes(&mut body, value.as_deref());
        }
        put_varint(&mut buf, body.len() as i32);
        buf.extend_from_slice(&body);
    }
    let batch_length = (buf.len() - LOG_OVERHEAD) as i32;
    let attributes: i16 = if log_append_time.is_some() {
        TIMESTAMP_TYPE_BIT
    } else {
        0
    };
    let last_offset_delta = records.len().saturating_sub(1) as i32;
    buf[8..12].copy_from_slice(&batch_length.to_be_bytes());
    buf[12..16].copy_from_slice(&0i32.to_be_bytes());
    buf[16] = MAGIC as u8;
    buf[21..23].copy_from_slice(&attributes.to_be_bytes());
    buf[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    buf[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    buf[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    buf[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    buf[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    buf[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    buf[57..61].copy_from_slice(&(records.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    buf
}

/// Stamps the base offset and leader epoch into an encoded batch (neither is under the CRC).
pub fn stamp(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// The fixed header of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Bytes of the whole batch including the 12-byte log overhead.
    pub size: usize,
    pub leader_epoch: i32,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub record_count: i32,
    pub timestamp_type: TimestampType,
}

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Parses the header at the start of `bytes` without checking the CRC.
    ///
    /// # Errors
    /// [`BatchError`] when the header is short or out of range.
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        let size = frame_size(bytes)?;
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: bytes.len(),
            });
        }
        let magic = bytes[16] as i8;
        if magic != MAGIC {
            return Err(BatchError::Magic(magic));
        }
        let attributes = i16::from_be_bytes([bytes[21], bytes[22]]);
        if attributes & COMPRESSION_MASK != 0 {
            return Err(BatchError::Compressed(attributes & COMPRESSION_MASK));
        }
        let last_offset_delta = be_i32(&bytes[23..27]);
        let record_count = be_i32(&bytes[57..61]);
        if last_offset_delta < 0 || record_count < 0 {
            return Err(BatchError::Record("negative offset delta or record count"));
        }
        Ok(Self {
            base_offset: be_i64(&bytes[0..8]),
            size,
            leader_epoch: be_i32(&bytes[12..16]),
            last_offset_delta,
            base_timestamp: be_i64(&bytes[27..35]),
            max_timestamp: be_i64(&bytes[35..43]),
            record_count,
            timestamp_type: if attributes & TIMESTAMP_TYPE_BIT != 0 {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
        })
    }
}

/// The size of the batch starting at `bytes` from its 12-byte log overhead alone.
///
/// # Errors
/// [`BatchError::Truncated`] when fewer than 12 bytes are given; [`BatchError::Length`] when the
/// length cannot be a batch.
pub fn frame_size(bytes: &[u8]) -> Result<usize, BatchError> {
    if bytes.len() < LOG_OVERHEAD {
        return Err(BatchError::Truncated {
            needed: LOG_OVERHEAD,
            available: bytes.len(),
        });
    }
    let length = be_i32(&bytes[8..12]);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::Length(length));
    }
    Ok(LOG_OVERHEAD + length as usize)
}

/// Checks that `bytes` starts with one whole, intact batch and returns its header.
///
/// # Errors
/// [`BatchError`] naming what is wrong: short, bad magic, bad CRC, bad records.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = check(bytes)?;
    let batch = &bytes[..header.size];
    let mut count = 0;
    for record in records(&header, batch) {
        record?;
        count += 1;
    }
    if count != header.record_count {
        return Err(BatchError::Record("record count does not match the header"));
    }
    Ok(header)
}

/// Checks that `bytes` starts with one whole batch whose CRC matches, without decoding its
/// records (the read path decodes them anyway, and reports a malformed one then).
///
/// # Errors
/// [`BatchError`] when the batch is short, has a bad magic or a bad CRC.
pub fn check(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if bytes.len() < header.size {
        return Err(BatchError::Truncated {
            needed: header.size,
            available: bytes.len(),
        });
    }
    let batch = &bytes[..header.size];
    let stored = u32::from_be_bytes([batch[17], batch[18], batch[19], batch[20]]);
    let computed = crc32c::crc32c(&batch[21..]);
    if stored != computed {
        return Err(BatchError::Crc { stored, computed });
    }
    Ok(header)
}

/// One record read from a batch, borrowing the batch's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

/// Iterates the records of one batch (`batch` is exactly the batch's bytes).
pub fn records<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
) -> impl Iterator<Item = Result<RecordView<'a>, BatchError>> + 'a {
    let header = *header;
    let mut cursor = Cursor {
        bytes: batch,
        position: HEADER_LEN.min(batch.len()),
    };
    let mut remaining = header.record_count;
    std::iter::from_fn(move || {
        if remaining <= 0 {
            return None;
        }
        remaining -= 1;
        let record = read_record(&mut cursor, &header);
        if record.is_err() {
            remaining = 0;
        }
        Some(record)
    })
}

/// Rewrites `batch` keeping only the records `keep` accepts (the log cleaner's re-encoding).
///
/// Kept records are copied byte for byte: their offset and timestamp deltas stay relative to
/// the unchanged base offset and base timestamp, so every record keeps its offset and
/// timestamp. The header keeps its base offset, last offset delta (the batch still spans its
/// original offsets, RecordBatch v2 allows the gaps), leader epoch, attributes and producer
/// fields; the length, record count, largest timestamp (under `CreateTime`; with no record
/// left it stays as it was) and the CRC are recomputed. Returns the new bytes and how many
/// records were kept; zero gives an empty batch that still spans the original offsets.
///
/// # Errors
/// [`BatchError`] when a record is malformed.
pub fn retain(
    header: &BatchHeader,
    batch: &[u8],
    mut keep: impl FnMut(&RecordView<'_>) -> bool,
) -> Result<(Vec<u8>, i32), BatchError> {
    let batch = batch.get(..header.size).ok_or(BatchError::Truncated {
        needed: header.size,
        available: batch.len(),
    })?;
    let mut out = Vec::with_capacity(batch.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    let mut cursor = Cursor {
        bytes: batch,
        position: HEADER_LEN,
    };
    let mut kept = 0i32;
    let mut max_timestamp = None::<i64>;
    for _ in 0..header.record_count {
        let start = cursor.position;
        let record = read_record(&mut cursor, header)?;
        if keep(&record) {
            out.extend_from_slice(&batch[start..cursor.position]);
            kept += 1;
            max_timestamp =
                Some(max_timestamp.map_or(record.timestamp, |m| m.max(record.timestamp)));
        }
    }
    let max_timestamp = match (header.timestamp_type, max_timestamp) {
        (TimestampType::CreateTime, Some(max)) => max,
        _ => header.max_timestamp,
    };
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    out[57..61].copy_from_slice(&kept.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok((out, kept))
}

#[inline]
fn read_record<'a>(
    cursor: &mut Cursor<'a>,
    header: &BatchHeader,
) -> Result<RecordView<'a>, BatchError> {
    let length = cursor.varint()?;
    if length < 0 {
        return Err(BatchError::Record("negative record length"));
    }
    let end = cursor.position + length as usize;
    if end > cursor.bytes.len() {
        return Err(BatchError::Record("record runs past the batch"));
    }
    let mut inner = Cursor {
        bytes: &cursor.bytes[..end],
        position: cursor.position,
    };
    cursor.position = end;
    inner.byte()?; // attributes, unused in v2
    let timestamp_delta = inner.varlong()?;
    let offset_delta = inner.varint()?;
    let key = inner.bytes()?;
    let value = inner.bytes()?;
    let header_count = inner.varint()?;
    if header_count < 0 {
        return Err(BatchError::Record("negative header count"));
    }
    let mut headers = Vec::with_capacity((header_count as usize).min(16));
    for _ in 0..header_count {
        let name = inner
            .bytes()?
            .ok_or(BatchError::Record("null header name"))?;
        headers.push((name, inner.bytes()?));
    }
    let timestamp = match header.timestamp_type {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => header.base_timestamp.wrapping_add(timestamp_delta),
    };
    Ok(RecordView {
        offset: header.base_offset + i64::from(offset_delta),
        timestamp,
        key,
        value,
        headers,
    })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn byte(&mut self) -> Result<u8, BatchError> {
        let b = *self
            .bytes
            .get(self.position)
            .ok_or(BatchError::Record("record truncated"))?;
        self.position += 1;
        Ok(b)
    }

    #[inline]
    fn varlong(&mut self) -> Result<i64, BatchError> {
        // Most varints in a batch (deltas, short lengths) fit one byte.
        if let Some(&b) = self.bytes.get(self.position)
            && b & 0x80 == 0
        {
            self.position += 1;
            let raw = u64::from(b);
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(BatchError::Record("varint too long"))
    }

    #[inline]
    fn varint(&mut self) -> Result<i32, BatchError> {
        let value = self.varlong()?;
        i32::try_from(value).map_err(|_| BatchError::Record("varint out of range"))
    }

    #[inline]
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, BatchError> {
        let length = self.varint()?;
        if length < 0 {
            return Ok(None);
        }
        let end = self.position + length as usize;
        let slice = self
            .bytes
            .get(self.position..end)
            .ok_or(BatchError::Record("field runs past the record"))?;
        self.position = end;
        Ok(Some(slice))
    }
}

fn put_varlong(buf: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_varint(buf: &mut Vec<u8>, value: i32) {
    put_varlong(buf, i64::from(value));
}

fn put_bytes(buf: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(buf, -1),
        Some(bytes) => {
            put_varint(buf, bytes.len() as i32);
            buf.extend_from_slice(bytes);
        }
    }
}

fn be_i32(bytes: &[u8]) -> i32 {
    i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn be_i64(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        key: Option<&'static [u8]>,
        value: Option<&'static [u8]>,
        ts: i64,
    ) -> NewRecord<'static> {
        NewRecord {
            key: key.map(Cow::Borrowed),
            value: value.map(Cow::Borrowed),
            headers: vec![(Cow::Borrowed("h"), Some(Cow::Borrowed(&b"v"[..])))],
            timestamp: ts,
        }
    }

    #[test]
    fn read_returns_what_was_encoded() {
        let input = vec![
            record(Some(b"k1"), Some(b"v1"), 1000),
            record(None, Some(b""), 990),
            record(Some(b"k3"), None, 1010),
        ];
        let mut batch = encode(&input, None);
        stamp(&mut batch, 42, 7);
        let header = validate(&batch).expect("valid batch");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.leader_epoch, 7);
        assert_eq!(header.last_offset(), 44);
        assert_eq!(header.max_timestamp, 1010);
        let read: Vec<_> = records(&header, &batch)
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].offset, 42);
        assert_eq!(read[1].timestamp, 990);
        assert_eq!(read[1].key, None);
        assert_eq!(read[1].value, Some(&b""[..]));
        assert_eq!(read[2].value, None);
        assert_eq!(read[2].headers, vec![(&b"h"[..], Some(&b"v"[..]))]);
    }

    #[test]
    fn log_append_time_overrides_record_timestamps() {
        let batch = encode(&[record(None, Some(b"x"), 5)], Some(77));
        let header = validate(&batch).expect("valid");
        assert_eq!(header.timestamp_type, TimestampType::LogAppendTime);
        let read: Vec<_> = records(&header, &batch)
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(read[0].timestamp, 77);
    }

    #[test]
    fn any_flipped_byte_after_the_offset_fields_is_detected() {
        let batch = encode(&[record(Some(b"key"), Some(b"value"), 1)], None);
        for i in 16..batch.len() {
            let mut corrupt = batch.clone();
            corrupt[i] ^= 0x40;
            assert!(
                validate(&corrupt).is_err(),
                "flip at byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let batch = encode(&[record(Some(b"key"), Some(b"value"), 1)], None);
        for len in 0..batch.len() {
            assert!(
                validate(&batch[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
    }

    #[test]
    fn retain_keeps_offsets_timestamps_and_header_fields() {
        let input = vec![
            record(Some(b"a"), Some(b"1"), 1000),
            record(Some(b"b"), Some(b"2"), 1005),
            record(Some(b"a"), None, 1003),
        ];
        let mut encoded = encode(&input, None);
        stamp(&mut encoded, 100, 4);
        let header = validate(&encoded).expect("valid");
        let (bytes, kept) = retain(&header, &encoded, |r| r.offset != 101).expect("retain");
        assert_eq!(kept, 2);
        let cleaned = validate(&bytes).expect("the CRC is recomputed");
        assert_eq!(cleaned.base_offset, 100);
        assert_eq!(
            cleaned.last_offset(),
            102,
            "still spans the original offsets"
        );
        assert_eq!(cleaned.leader_epoch, 4);
        assert_eq!(cleaned.record_count, 2);
        assert_eq!(cleaned.max_timestamp, 1003);
        assert_eq!(bytes[43..57], encoded[43..57], "producer fields kept");
        let read: Vec<_> = records(&cleaned, &bytes)
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(
            read.iter()
                .map(|r| (r.offset, r.timestamp))
                .collect::<Vec<_>>(),
            vec![(100, 1000), (102, 1003)]
        );
        assert_eq!(read[1].value, None);

        let (empty, kept) = retain(&header, &encoded, |_| false).expect("retain");
        assert_eq!(kept, 0);
        let empty = validate(&empty).expect("an empty batch is valid");
        assert_eq!((empty.base_offset, empty.next_offset()), (100, 103));
        assert_eq!(empty.size, HEADER_LEN);
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, value);
            let mut cursor = Cursor {
                bytes: &buf,
                position: 0,
            };
            assert_eq!(cursor.varlong().expect("decodes"), value);
            assert_eq!(cursor.position, buf.len());
        }
    }
}
