//! Records inside a v2 batch: varint framing and the per-record fields that validation,
//! timestamp lookup and compaction need (offset/timestamp deltas, key, whether a value exists).

use crate::error::{Result, StorageError};

/// One record, borrowed from an uncompressed record payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordView<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub has_value: bool,
    /// The whole record including its length prefix, for copying it unchanged.
    pub raw: &'a [u8],
}

/// Walks the records of an uncompressed payload, checking that each record's length prefix
/// matches its contents and that the payload holds exactly `count` records.
pub(crate) struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: i32,
}

impl<'a> RecordIter<'a> {
    pub(crate) fn new(payload: &'a [u8], count: i32) -> RecordIter<'a> {
        RecordIter {
            buf: payload,
            pos: 0,
            remaining: count,
        }
    }

    fn parse_next(&mut self) -> Result<RecordView<'a>> {
        let start = self.pos;
        let mut cursor = Cursor {
            buf: self.buf,
            pos: self.pos,
        };
        let length = cursor.varint()?;
        if length < 0 {
            return Err(invalid(format!("negative record length {length}")));
        }
        let body_start = cursor.pos;
        let body_end = body_start
            .checked_add(length as usize)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| invalid(format!("record length {length} runs past the batch")))?;
        let mut body = Cursor {
            buf: &self.buf[..body_end],
            pos: body_start,
        };
        body.take(1)?;
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key = body.nullable_bytes()?;
        let has_value = body.nullable_bytes()?.is_some();
        let headers = body.varint()?;
        if headers < 0 {
            return Err(invalid(format!("negative header count {headers}")));
        }
        for _ in 0..headers {
            if body.nullable_bytes()?.is_none() {
                return Err(invalid("null header key".to_string()));
            }
            body.nullable_bytes()?;
        }
        if body.pos != body_end {
            return Err(invalid(format!(
                "record declares {length} bytes but its fields use {}",
                body.pos - body_start
            )));
        }
        self.pos = body_end;
        Ok(RecordView {
            offset_delta,
            timestamp_delta,
            key,
            has_value,
            raw: &self.buf[start..body_end],
        })
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if self.pos != self.buf.len() {
                self.pos = self.buf.len();
                return Some(Err(invalid(
                    "bytes left over after the declared record count".to_string(),
                )));
            }
            return None;
        }
        self.remaining -= 1;
        let item = self.parse_next();
        if item.is_err() {
            self.remaining = 0;
            self.pos = self.buf.len();
        }
        Some(item)
    }
}

fn invalid(msg: String) -> StorageError {
    StorageError::InvalidRecord(msg)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| invalid("record field runs past the record".to_string()))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn raw_varlong(&mut self, max_bytes: usize) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("varint is too long".to_string()))
    }

    fn varlong(&mut self) -> Result<i64> {
        let raw = self.raw_varlong(10)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    fn varint(&mut self) -> Result<i32> {
        let raw = self.raw_varlong(5)?;
        if raw > u64::from(u32::MAX) {
            return Err(invalid("varint overflows 32 bits".to_string()));
        }
        let raw = raw as u32;
        Ok((raw >> 1) as i32 ^ -((raw & 1) as i32))
    }

    fn nullable_bytes(&mut self) -> Result<Option<&'a [u8]>> {
        let len = self.varint()?;
        match len {
            -1 => Ok(None),
            len if len < -1 => Err(invalid(format!("negative field length {len}"))),
            len => Ok(Some(self.take(len as usize)?)),
        }
    }
}

/// Appends `value` as a zig-zag varint.
#[cfg(test)]
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchHeader, HEADER_SIZE};
    use crate::test_batches::{batch, BatchSpec};

    #[test]
    fn walks_records_produced_by_an_independent_encoder() {
        let bytes = batch(&BatchSpec::keyed(&[
            (b"k1", Some(b"v1"), 1000),
            (b"k2", None, 1005),
            (b"k3", Some(b"value-three"), 999),
        ]));
        let h = BatchHeader::parse(&bytes).unwrap();
        let recs: Vec<_> = RecordIter::new(&bytes[HEADER_SIZE..], h.records_count)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].key, Some(&b"k1"[..]));
        assert!(recs[0].has_value);
        assert!(!recs[1].has_value);
        assert_eq!(recs[2].offset_delta, 2);
        assert_eq!(h.base_timestamp + recs[2].timestamp_delta, 999);
        let total: usize = recs.iter().map(|r| r.raw.len()).sum();
        assert_eq!(total, bytes.len() - HEADER_SIZE);
    }

    #[test]
    fn count_mismatch_and_bad_lengths_are_invalid() {
        let bytes = batch(&BatchSpec::values(&[b"a", b"b"]));
        let payload = &bytes[HEADER_SIZE..];
        let too_few: Result<Vec<_>> = RecordIter::new(payload, 1).collect();
        assert_eq!(too_few.unwrap_err().kafka_error_code().code(), 87);
        let too_many: Result<Vec<_>> = RecordIter::new(payload, 3).collect();
        assert_eq!(too_many.unwrap_err().kafka_error_code().code(), 87);
        let mut bad = payload.to_vec();
        bad[0] = 0x7e;
        let r: Result<Vec<_>> = RecordIter::new(&bad, 2).collect();
        assert_eq!(r.unwrap_err().kafka_error_code().code(), 87);
    }

    #[test]
    fn varint_round_trip_and_overflow() {
        for v in [0, 1, -1, 63, -64, 300, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varint().unwrap(), v);
        }
        let long = [0xffu8; 11];
        let mut c = Cursor { buf: &long, pos: 0 };
        assert!(c.varlong().is_err());
    }
}
