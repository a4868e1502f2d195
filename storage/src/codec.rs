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
        2 => {
            check_snappy_lengths(&body).map_err(|reason| {
                StorageError::CorruptMessage(format!(
                    "cannot decompress batch at offset {}: {reason}",
                    header.base_offset
                ))
            })?;
            Snappy::decompress(&mut body, take)
        }
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

/// The xerial framing Kafka's Java client writes around snappy blocks (magic, version,
/// compatible version); without it the payload is one raw snappy block.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

/// Snappy's densest element (a 64-byte copy in 3 bytes) expands about 21-fold, so no genuine
/// block declares more than this multiple of its own size.
const SNAPPY_MAX_EXPANSION: u64 = 32;

/// Refuses snappy blocks whose declared uncompressed length no genuine block can have.
/// kafka-protocol allocates that length before decoding, so a few bytes declaring gigabytes
/// would otherwise abort the process on a failed allocation.
fn check_snappy_lengths(body: &[u8]) -> std::result::Result<(), String> {
    let Some(mut framed) = body.strip_prefix(XERIAL_HEADER.as_slice()) else {
        return check_snappy_block(body);
    };
    while let Some((size, rest)) = framed.split_first_chunk::<4>() {
        let size = u32::from_be_bytes(*size) as usize;
        let block = rest
            .get(..size)
            .ok_or_else(|| format!("snappy block of {size} bytes runs past the batch"))?;
        check_snappy_block(block)?;
        framed = &rest[size..];
    }
    Ok(())
}

/// Checks the uncompressed length (a little-endian base-128 varint) a raw block starts with.
fn check_snappy_block(block: &[u8]) -> std::result::Result<(), String> {
    let mut declared: u64 = 0;
    for (i, byte) in block.iter().take(5).enumerate() {
        declared |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let max = block.len() as u64 * SNAPPY_MAX_EXPANSION;
            return if declared > max {
                Err(format!(
                    "snappy block of {} bytes declares {declared} uncompressed bytes",
                    block.len()
                ))
            } else {
                Ok(())
            };
        }
    }
    Err("snappy block without a complete length header".to_string())
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
    fn snappy_lengths_no_block_can_have_are_corrupt_before_any_allocation() {
        let bytes = batch(&BatchSpec {
            compression: Compression::Snappy,
            ..BatchSpec::values(&[b"hello"])
        });
        let h = check_batch(&bytes).unwrap();
        // A raw block declaring 2.9 GB (the fuzzer's find), then the same inside xerial framing.
        let raw: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0a, 0x00, 0x00];
        let mut framed = XERIAL_HEADER.to_vec();
        framed.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        framed.extend_from_slice(raw);
        for payload in [raw, &framed[..]] {
            let mut broken = bytes[..HEADER_SIZE].to_vec();
            broken.extend_from_slice(payload);
            let err = payload_of(broken, &h).unwrap_err();
            assert_eq!(err.kafka_error_code().code(), 2, "{err}");
            assert!(err.to_string().contains("declares"), "{err}");
        }
        // Genuine snappy payloads, highly compressible ones included, still decompress.
        let long = vec![b'x'; 100_000];
        let bytes = batch(&BatchSpec {
            compression: Compression::Snappy,
            ..BatchSpec::values(&[&long])
        });
        let h = check_batch(&bytes).unwrap();
        assert!(payload(&bytes, &h).unwrap().len() > 100_000);
    }

    fn payload_of(batch: Vec<u8>, h: &BatchHeader) -> Result<Bytes> {
        let fake = BatchHeader {
            batch_length: (batch.len() - 12) as i32,
            ..*h
        };
        payload(&Bytes::from(batch), &fake)
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
