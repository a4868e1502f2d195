//! Record payload compression codecs (gzip, snappy, lz4, zstd) via kafka-protocol, for the few
//! paths that must look inside compressed batches: timestamp lookup, compaction, key checks.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::error::{Result, StorageError};

/// The uncompressed record payload of `batch` (the bytes after the header). Uncompressed
/// batches are sliced without copying.
pub(crate) fn payload(batch: &Bytes, header: &BatchHeader) -> Result<Bytes> {
    let mut body = batch.slice(HEADER_SIZE..);
    let take = |buf: &mut Bytes| Ok(std::mem::take(buf));
    let out = match header.compression() {
        0 => return Ok(body),
        1 => Gzip::decompress(&mut body, take),
        2 => Snappy::decompress(&mut body, take),
        3 => Lz4::decompress(&mut body, take),
        4 => Zstd::decompress(&mut body, take),
        other => {
            return Err(StorageError::InvalidRecord(format!(
                "unknown compression codec {other}"
            )))
        }
    };
    out.map_err(|err| {
        StorageError::CorruptMessage(format!(
            "cannot decompress batch at offset {}: {err:#}",
            header.base_offset
        ))
    })
}

/// Compresses a record payload with codec `compression` (0 = none) into `out`.
pub(crate) fn compress(compression: u8, payload: &[u8], out: &mut BytesMut) -> Result<()> {
    let fill = |buf: &mut BytesMut| {
        buf.put_slice(payload);
        Ok(())
    };
    let result = match compression {
        0 => {
            out.put_slice(payload);
            Ok(())
        }
        1 => Gzip::compress(out, fill),
        2 => Snappy::compress(out, fill),
        3 => Lz4::compress(out, fill),
        4 => Zstd::compress(out, fill),
        other => {
            return Err(StorageError::InvalidRecord(format!(
                "unknown compression codec {other}"
            )))
        }
    };
    result.map_err(|err| StorageError::InvalidRecord(format!("cannot compress records: {err:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::check_batch;
    use crate::record::RecordIter;
    use crate::test_batches::{batch, BatchSpec};
    use kafka_protocol::records::Compression;

    #[test]
    fn every_codec_round_trips_records() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = batch(&BatchSpec {
                compression,
                ..BatchSpec::keyed(&[(b"a", Some(b"1"), 5), (b"b", None, 6)])
            });
            let h = check_batch(&bytes).unwrap();
            let plain = payload(&bytes, &h).unwrap();
            let recs: Vec<_> = RecordIter::new(&plain, h.records_count)
                .collect::<Result<_>>()
                .unwrap();
            assert_eq!(recs[1].key, Some(&b"b"[..]), "{compression:?}");
            let mut again = BytesMut::new();
            compress(h.compression(), &plain, &mut again).unwrap();
            let mut rebuilt = bytes[..HEADER_SIZE].to_vec();
            rebuilt.extend_from_slice(&again);
            let fake = BatchHeader {
                batch_length: (rebuilt.len() - 12) as i32,
                ..h
            };
            let back = payload(&Bytes::from(rebuilt), &fake).unwrap();
            assert_eq!(back, plain, "{compression:?}");
        }
    }

    #[test]
    fn garbage_compressed_payload_is_corrupt_not_a_panic() {
        let bytes = batch(&BatchSpec {
            compression: Compression::Zstd,
            ..BatchSpec::values(&[b"hello"])
        });
        let h = check_batch(&bytes).unwrap();
        let mut broken = bytes.to_vec();
        for b in broken[HEADER_SIZE..].iter_mut() {
            *b = 0x55;
        }
        let err = payload(&Bytes::from(broken), &h).unwrap_err();
        assert_eq!(err.kafka_error_code().code(), 2);
    }
}
