//! The leader-side validation of a produced record batch. The first byte picks the topic's
//! settings (bit 0: compacted, so keys are checked and compressed payloads decompressed;
//! bit 1: LogAppendTime) and whether the harness fixes the CRC-32C (bit 2), so inputs get past
//! the CRC check to the header, timestamp and record checks; the rest is the batch.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use storage::{CleanupPolicy, LogConfig, TimestampType};

/// Where the CRC field sits in a v2 batch header, and where the bytes it covers begin.
const CRC_FIELD: std::ops::Range<usize> = 17..21;
const CRC_START: usize = 21;
const NOW_MS: i64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, batch)) = data.split_first() else {
        return;
    };
    let mut batch = batch.to_vec();
    if flags & 4 != 0 && batch.len() > CRC_START {
        let crc = crc32c::crc32c(&batch[CRC_START..]);
        batch[CRC_FIELD].copy_from_slice(&crc.to_be_bytes());
    }
    let config = LogConfig {
        cleanup_policy: if flags & 1 != 0 {
            CleanupPolicy::Compact
        } else {
            CleanupPolicy::Delete
        },
        message_timestamp_type: if flags & 2 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        ..LogConfig::default()
    };
    let records = Bytes::from(batch);
    if let Ok(header) = storage::validate_produced(&records, &config, NOW_MS) {
        assert_eq!(header.size(), records.len());
        assert!(header.last_offset_delta >= 0 && header.records_count >= 0);
    }
});
