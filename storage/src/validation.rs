//! Leader-side checks of one produced batch before it is appended (Kafka's LogValidator for
//! magic 2): exactly one batch, sizes, CRC-32C, header consistency, timestamps, record framing
//! of uncompressed batches and keys on compacted topics. Compressed batches are only
//! decompressed when the topic is compacted (keys must be checked); otherwise the CRC is enough.

use bytes::Bytes;

use crate::batch::{verify_crc, BatchHeader, HEADER_SIZE};
use crate::codec;
use crate::config::{LogConfig, TimestampType};
use crate::error::{Result, StorageError};
use crate::record::RecordIter;

/// Validates the records of one partition in a produce request: the checks
/// [`Log::append_as_leader`](crate::Log::append_as_leader) runs before it writes anything,
/// public so they can be exercised (fuzzed) without a log.
pub fn validate_produced(records: &Bytes, config: &LogConfig, now_ms: i64) -> Result<BatchHeader> {
    if records.is_empty() {
        return Err(StorageError::InvalidRecord(
            "produce request holds no record batch".to_string(),
        ));
    }
    let header = BatchHeader::parse(records)?;
    let size = header.size();
    if size > records.len() {
        return Err(StorageError::CorruptMessage(format!(
            "batch declares {size} bytes but only {} were sent",
            records.len()
        )));
    }
    if size < records.len() {
        return Err(StorageError::InvalidRecord(
            "a produce request must hold exactly one record batch per partition".to_string(),
        ));
    }
    if size as u64 > config.segment_bytes {
        return Err(StorageError::RecordListTooLarge {
            size,
            max: config.segment_bytes,
        });
    }
    if size > config.max_message_bytes as usize {
        return Err(StorageError::MessageTooLarge {
            size,
            max: config.max_message_bytes,
        });
    }
    verify_crc(records, &header)?;
    check_header(&header)?;
    let create_time = config.message_timestamp_type == TimestampType::CreateTime;
    if create_time {
        check_timestamp(header.max_timestamp, config, now_ms)?;
    }
    let compacted = config.cleanup_policy.compacts() && !header.is_control();
    if header.compression() == 0 {
        walk_records(
            &records[HEADER_SIZE..],
            &header,
            config,
            now_ms,
            create_time,
            compacted,
        )?;
    } else if compacted {
        let payload = codec::payload(records, &header)?;
        walk_records(&payload, &header, config, now_ms, create_time, compacted)?;
    } else if create_time {
        check_timestamp(header.base_timestamp, config, now_ms)?;
    }
    Ok(header)
}

fn check_header(header: &BatchHeader) -> Result<()> {
    if header.compression() > 4 {
        return Err(StorageError::InvalidRecord(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    if header.records_count == 0 {
        return Err(StorageError::InvalidRecord(
            "record batch holds no records".to_string(),
        ));
    }
    if i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
        return Err(StorageError::InvalidRecord(format!(
            "record count {} does not match last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.is_transactional() && !header.has_producer_id() {
        return Err(StorageError::InvalidRecord(
            "transactional batch without a producer id".to_string(),
        ));
    }
    if header.has_producer_id() && !header.is_control() && header.base_sequence < 0 {
        return Err(StorageError::InvalidRecord(format!(
            "idempotent batch with invalid base sequence {}",
            header.base_sequence
        )));
    }
    Ok(())
}

fn check_timestamp(ts: i64, config: &LogConfig, now_ms: i64) -> Result<()> {
    if ts < 0 {
        return Ok(());
    }
    if now_ms.saturating_sub(ts) > config.message_timestamp_before_max_ms {
        return Err(StorageError::InvalidTimestamp(format!(
            "timestamp {ts} is more than message.timestamp.before.max.ms before {now_ms}"
        )));
    }
    if ts.saturating_sub(now_ms) > config.message_timestamp_after_max_ms {
        return Err(StorageError::InvalidTimestamp(format!(
            "timestamp {ts} is more than message.timestamp.after.max.ms after {now_ms}"
        )));
    }
    Ok(())
}

fn walk_records(
    payload: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
    now_ms: i64,
    check_times: bool,
    need_keys: bool,
) -> Result<()> {
    for (i, record) in RecordIter::new(payload, header.records_count).enumerate() {
        let record = record?;
        if i64::from(record.offset_delta) != i as i64 {
            return Err(StorageError::InvalidRecord(format!(
                "record {i} has offset delta {}",
                record.offset_delta
            )));
        }
        if need_keys && record.key.is_none() {
            return Err(StorageError::InvalidRecord(
                "compacted topic cannot accept a record without a key".to_string(),
            ));
        }
        if check_times {
            check_timestamp(
                header.base_timestamp.saturating_add(record.timestamp_delta),
                config,
                now_ms,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CleanupPolicy;
    use crate::test_batches::{batch, BatchSpec};
    use kafka_protocol::records::Compression;

    fn code(records: &Bytes, config: &LogConfig) -> i16 {
        validate_produced(records, config, 10_000)
            .unwrap_err()
            .kafka_error_code()
            .code()
    }

    #[test]
    fn accepts_a_good_batch() {
        let b = batch(&BatchSpec::values(&[b"a", b"b"]));
        let header = validate_produced(&b, &LogConfig::default(), 10_000).unwrap();
        assert_eq!(header.records_count, 2);
    }

    #[test]
    fn maps_each_defect_to_kafkas_error() {
        let config = LogConfig::default();
        let good = batch(&BatchSpec::values(&[b"a", b"b"]));
        assert_eq!(code(&Bytes::new(), &config), 87);
        assert_eq!(code(&good.slice(..good.len() - 1), &config), 2);
        let mut two = good.to_vec();
        two.extend_from_slice(&good);
        assert_eq!(code(&Bytes::from(two), &config), 87);
        let mut bad_crc = good.to_vec();
        bad_crc[HEADER_SIZE + 2] ^= 1;
        assert_eq!(code(&Bytes::from(bad_crc), &config), 2);
        let small = LogConfig {
            max_message_bytes: 10,
            ..config.clone()
        };
        assert_eq!(code(&good, &small), 10);
        let tiny_segment = LogConfig {
            segment_bytes: 20,
            ..config.clone()
        };
        assert_eq!(code(&good, &tiny_segment), 18);
        let mut magic1 = good.to_vec();
        magic1[16] = 1;
        assert_eq!(code(&Bytes::from(magic1), &config), 87);
    }

    #[test]
    fn bad_framing_in_uncompressed_batch_is_invalid_record() {
        let good = batch(&BatchSpec::values(&[b"a", b"b"]));
        let mut bad = crate::batch::header_array(&good);
        bad[57..61].copy_from_slice(&3i32.to_be_bytes());
        bad[23..27].copy_from_slice(&2i32.to_be_bytes());
        let body = &good[HEADER_SIZE..];
        crate::batch::set_crc(&mut bad, body);
        let mut bytes = bad.to_vec();
        bytes.extend_from_slice(body);
        assert_eq!(code(&Bytes::from(bytes), &LogConfig::default()), 87);
    }

    #[test]
    fn compacted_topics_need_keys_even_when_compressed() {
        let config = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..LogConfig::default()
        };
        for compression in [Compression::None, Compression::Lz4] {
            let keyless = batch(&BatchSpec {
                compression,
                ..BatchSpec::values(&[b"a"])
            });
            assert_eq!(code(&keyless, &config), 87);
            let keyed = batch(&BatchSpec {
                compression,
                ..BatchSpec::keyed(&[(b"k", Some(b"v"), 5)])
            });
            assert!(validate_produced(&keyed, &config, 10).is_ok());
        }
    }

    #[test]
    fn idempotent_batch_needs_a_sequence() {
        let b = batch(&BatchSpec::values(&[b"a"]).producer(5, 0, -1));
        assert_eq!(code(&b, &LogConfig::default()), 87);
    }

    #[test]
    fn timestamps_outside_the_allowed_window_are_rejected() {
        let config = LogConfig {
            message_timestamp_before_max_ms: 1000,
            message_timestamp_after_max_ms: 1000,
            ..LogConfig::default()
        };
        let old = batch(&BatchSpec::keyed(&[(b"k", Some(b"v"), 5000)]));
        assert_eq!(code(&old, &config), 32);
        let future = batch(&BatchSpec::keyed(&[(b"k", Some(b"v"), 20_000)]));
        assert_eq!(code(&future, &config), 32);
        let ok = batch(&BatchSpec::keyed(&[(b"k", Some(b"v"), 9500)]));
        assert!(validate_produced(&ok, &config, 10_000).is_ok());
        let append_time = LogConfig {
            message_timestamp_type: TimestampType::LogAppendTime,
            ..config
        };
        assert!(validate_produced(&old, &append_time, 10_000).is_ok());
    }
}
