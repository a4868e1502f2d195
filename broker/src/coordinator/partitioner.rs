//! Which `__consumer_offsets` partition owns a group: Kafka's
//! `Utils.abs(groupId.hashCode()) % partitionCount`, with Java's `String.hashCode` computed over
//! UTF-16 code units so every Kafka client and tool agrees with this broker.

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// Kafka's `Utils.abs`: `Math.abs` except that `Integer.MIN_VALUE` maps to 0.
fn kafka_abs(n: i32) -> i32 {
    if n == i32::MIN {
        0
    } else {
        n.abs()
    }
}

/// The `__consumer_offsets` partition that stores `group_id` (0 when `partitions` is not positive).
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    kafka_abs(java_string_hash(group_id)) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_codes_of_known_strings() {
        // Values of "...".hashCode() on a JVM.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("abc"), 96354);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash("Hello, World!"), 1498789909);
        assert_eq!(java_string_hash("test-group"), 627841412);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-BMP characters hash as their two UTF-16 surrogates.
        assert_eq!(java_string_hash("\u{1F600}"), 1772899);
        assert_eq!(java_string_hash("é"), 233);
    }

    #[test]
    fn partition_matches_kafka_for_known_groups() {
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("anything", 50), 4);
        assert_eq!(partition_for("hello", 50), 22);
        assert_eq!(partition_for("", 50), 0);
        // Integer.MIN_VALUE hashes to partition 0, as Utils.abs makes it 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("anything", 1), 0);
        assert_eq!(partition_for("anything", 0), 0);
    }
}
