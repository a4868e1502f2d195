//! Kafka v2 record batch header: a parsed view of the 61-byte header, CRC-32C checks and the
//! header fields the log rewrites (base offset, partition leader epoch, log-append time).

use crate::error::{Result, StorageError};

/// Bytes before `batchLength` counts: baseOffset (8) + batchLength (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, up to and including the record count.
pub(crate) const HEADER_SIZE: usize = 61;
/// The only record format this broker stores.
pub(crate) const MAGIC_V2: i8 = 2;

const LENGTH_OFFSET: usize = 8;
const LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
pub(crate) const CRC_START: usize = 21;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const RECORD_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// Parsed header of one v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `buf` (no CRC check). Fails with `InvalidRecord` for a
    /// magic other than 2 and with `CorruptMessage` for a short buffer or impossible length.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() <= MAGIC_OFFSET {
            return Err(StorageError::CorruptMessage(format!(
                "{} bytes is shorter than a batch header",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != MAGIC_V2 {
            return Err(StorageError::InvalidRecord(format!(
                "record batch magic {magic} is not supported, only magic 2"
            )));
        }
        if buf.len() < HEADER_SIZE {
            return Err(StorageError::CorruptMessage(format!(
                "{} bytes is shorter than a batch header",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, LENGTH_OFFSET),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_OFFSET),
            magic,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, RECORD_COUNT_OFFSET),
        };
        if (header.batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(StorageError::CorruptMessage(format!(
                "batch length {} is smaller than the header",
                header.batch_length
            )));
        }
        if header.last_offset_delta < 0 || header.records_count < 0 {
            return Err(StorageError::CorruptMessage(format!(
                "negative last offset delta {} or record count {}",
                header.last_offset_delta, header.records_count
            )));
        }
        Ok(header)
    }

    /// Offset of the last record of the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Whether the timestamps are log-append times.
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Total size of the batch in bytes, including the offset and length fields.
    pub fn size(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Whether an idempotent or transactional producer wrote the batch.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// Sequence number of the last record, wrapping at `i32::MAX` as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `sequence + increment`, wrapping from `i32::MAX` to 0.
pub(crate) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// Checks the stored CRC of a whole batch (one hardware-accelerated pass over its bytes).
pub(crate) fn verify_crc(batch: &[u8], header: &BatchHeader) -> Result<()> {
    let actual = crc32c::crc32c(&batch[CRC_START..]);
    if actual != header.crc {
        return Err(StorageError::CorruptMessage(format!(
            "batch at offset {} has CRC {:#010x} but its bytes hash to {:#010x}",
            header.base_offset, header.crc, actual
        )));
    }
    Ok(())
}

/// Checks a whole batch: parse, size within `batch`, CRC.
#[cfg(test)]
pub(crate) fn check_batch(batch: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(batch)?;
    if header.size() != batch.len() {
        return Err(StorageError::CorruptMessage(format!(
            "batch length {} does not match the {} bytes given",
            header.size(),
            batch.len()
        )));
    }
    verify_crc(batch, &header)?;
    Ok(header)
}

/// Writes a new base offset and partition leader epoch into a header copy (neither is CRC'd).
pub(crate) fn set_offset_and_epoch(header: &mut [u8; HEADER_SIZE], base_offset: i64, epoch: i32) {
    header[..LENGTH_OFFSET].copy_from_slice(&base_offset.to_be_bytes());
    header[LEADER_EPOCH_OFFSET..MAGIC_OFFSET].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks a header copy as LogAppendTime with `timestamp` as its max timestamp and refreshes
/// its CRC over the header and `body`, the bytes that follow it.
pub(crate) fn set_log_append_time(header: &mut [u8; HEADER_SIZE], timestamp: i64, body: &[u8]) {
    let attributes = be_i16(header, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&timestamp.to_be_bytes());
    set_crc(header, body);
}

/// Rewrites the record count and max timestamp of a header copy and refreshes its CRC.
pub(crate) fn set_count_and_max_timestamp(
    header: &mut [u8; HEADER_SIZE],
    records_count: i32,
    max_timestamp: i64,
) {
    header[RECORD_COUNT_OFFSET..HEADER_SIZE].copy_from_slice(&records_count.to_be_bytes());
    header[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
}

/// Sets the batch length and attributes of a header copy.
pub(crate) fn set_length_and_attributes(
    header: &mut [u8; HEADER_SIZE],
    batch_size: usize,
    attributes: i16,
) {
    let length = (batch_size - LOG_OVERHEAD) as i32;
    header[LENGTH_OFFSET..LEADER_EPOCH_OFFSET].copy_from_slice(&length.to_be_bytes());
    header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
}

/// Recomputes the CRC field over the header bytes and `body`, the bytes that follow it.
pub(crate) fn set_crc(header: &mut [u8; HEADER_SIZE], body: &[u8]) {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[CRC_START..]), body);
    header[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
}

/// Copies the header bytes of a batch into a fixed array.
pub(crate) fn header_array(batch: &[u8]) -> [u8; HEADER_SIZE] {
    let mut out = [0u8; HEADER_SIZE];
    out.copy_from_slice(&batch[..HEADER_SIZE]);
    out
}

/// Iterates over the complete batches at the start of a buffer. A trailing partial batch is
/// not returned (followers may be sent one, as Kafka allows); errors stop the iteration.
pub(crate) struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> BatchIter<'a> {
        BatchIter { buf, pos: 0 }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(usize, BatchHeader)>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        if rest.len() < HEADER_SIZE {
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(header) => header,
            Err(err) => {
                self.pos = self.buf.len();
                return Some(Err(err));
            }
        };
        if header.size() > rest.len() {
            return None;
        }
        let start = self.pos;
        self.pos += header.size();
        Some(Ok((start, header)))
    }
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn be_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batches::{batch, BatchSpec};

    #[test]
    fn parses_header_fields() {
        let bytes = batch(&BatchSpec {
            base_offset: 7,
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 10,
            ..BatchSpec::values(&[b"a", b"b", b"c"])
        });
        let h = check_batch(&bytes).unwrap();
        assert_eq!(h.base_offset, 7);
        assert_eq!(h.last_offset(), 9);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.producer_id, 42);
        assert_eq!(h.producer_epoch, 3);
        assert_eq!(h.base_sequence, 10);
        assert_eq!(h.last_sequence(), 12);
        assert_eq!(h.size(), bytes.len());
        assert_eq!(h.compression(), 0);
        assert!(!h.is_control() && !h.is_transactional() && !h.timestamp_type_is_log_append());
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 0), 5);
    }

    #[test]
    fn rejects_bad_magic_short_and_bad_crc() {
        let bytes = batch(&BatchSpec::values(&[b"x"]));
        let mut bad_magic = bytes.to_vec();
        bad_magic[16] = 1;
        assert_eq!(
            BatchHeader::parse(&bad_magic)
                .unwrap_err()
                .kafka_error_code()
                .code(),
            87
        );
        assert_eq!(
            BatchHeader::parse(&bytes[..40])
                .unwrap_err()
                .kafka_error_code()
                .code(),
            2
        );
        let mut bad_crc = bytes.to_vec();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        assert_eq!(
            check_batch(&bad_crc).unwrap_err().kafka_error_code().code(),
            2
        );
        let mut short_len = bytes.to_vec();
        short_len[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            BatchHeader::parse(&short_len)
                .unwrap_err()
                .kafka_error_code()
                .code(),
            2
        );
    }

    #[test]
    fn patched_offset_and_epoch_keep_crc_valid() {
        let bytes = batch(&BatchSpec::values(&[b"x", b"y"]));
        let mut header = header_array(&bytes);
        set_offset_and_epoch(&mut header, 1234, 9);
        let mut patched = header.to_vec();
        patched.extend_from_slice(&bytes[HEADER_SIZE..]);
        let h = check_batch(&patched).unwrap();
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.partition_leader_epoch, 9);
    }

    #[test]
    fn log_append_time_rewrite_recomputes_crc() {
        let bytes = batch(&BatchSpec::values(&[b"x", b"y"]));
        let h = check_batch(&bytes).unwrap();
        verify_crc(&bytes, &h).unwrap();
        let mut header = header_array(&bytes);
        set_log_append_time(&mut header, 99_000, &bytes[HEADER_SIZE..]);
        let mut patched = header.to_vec();
        patched.extend_from_slice(&bytes[HEADER_SIZE..]);
        let h2 = check_batch(&patched).unwrap();
        assert!(h2.timestamp_type_is_log_append());
        assert_eq!(h2.max_timestamp, 99_000);
    }

    #[test]
    fn iterates_complete_batches_and_ignores_partial_tail() {
        let a = batch(&BatchSpec::values(&[b"1"]));
        let b = batch(&BatchSpec {
            base_offset: 1,
            ..BatchSpec::values(&[b"2", b"3"])
        });
        let mut buf = a.to_vec();
        buf.extend_from_slice(&b);
        buf.extend_from_slice(&a[..30]);
        let got: Vec<_> = BatchIter::new(&buf).map(|r| r.unwrap()).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, a.len());
        assert_eq!(got[1].1.base_offset, 1);
        let mut garbage = a.to_vec();
        garbage[16] = 0;
        let mut it = BatchIter::new(&garbage);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }
}
