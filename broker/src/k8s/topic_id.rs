//! Topic ids as Kafka prints them (`kafka-topics --describe`, `partition.metadata`): the UUID's
//! 16 bytes in URL-safe base64 without padding, 22 characters. `status.topicId` uses this form.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use uuid::Uuid;

/// Kafka's text form of a topic id.
pub fn encode(id: &Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Parses [`encode`]'s form (canonical: no padding, no stray trailing bits); `None` for
/// anything else.
pub fn decode(text: &str) -> Option<Uuid> {
    let bytes: [u8; 16] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
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
