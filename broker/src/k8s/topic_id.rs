//! Topic ids as Kafka prints them (`kafka-topics --describe`, `partition.metadata`): the UUID's
//! 16 bytes in URL-safe base64 without padding, 22 characters. `status.topicId` uses this form.

use uuid::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's text form of a topic id.
pub fn encode(id: &Uuid) -> String {
    let mut out = String::with_capacity(22);
    for chunk in id.as_bytes().chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..=chunk.len() {
            let index = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

/// Parses [`encode`]'s form; `None` for anything else.
pub fn decode(text: &str) -> Option<Uuid> {
    if text.len() != 22 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(16);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // 22 characters carry 132 bits: the last 4 must be zero in a canonical encoding.
    if bits != 0 {
        return None;
    }
    let bytes: [u8; 16] = out.try_into().ok()?;
    Some(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // Kafka: Uuid(0x0123456789abcdef, 0xfedcba9876543210).toString()
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(encode(&id), "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(decode("ASNFZ4mrze_-3LqYdlQyEA"), Some(id));
    }

    #[test]
    fn round_trips() {
        for _ in 0..100 {
            let id = Uuid::new_v4();
            let text = encode(&id);
            assert_eq!(text.len(), 22);
            assert_eq!(decode(&text), Some(id));
        }
        assert_eq!(encode(&Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn rejects_other_text() {
        assert_eq!(decode(""), None);
        assert_eq!(decode("ASNFZ4mrze_-3LqYdlQyE"), None);
        assert_eq!(decode("ASNFZ4mrze_-3LqYdlQyEA="), None);
        assert_eq!(decode("ASNFZ4mrze/+3LqYdlQyEA"), None);
        assert_eq!(decode("ASNFZ4mrze_-3LqYdlQyEB"), None);
    }
}
