//! Which old segments retention deletes, following Kafka's `UnifiedLog.deleteOldSegments`:
//! segments wholly below the log start offset always; with `cleanup.policy` containing
//! `delete` also the oldest segments while the log is over `retention.bytes`, and those whose
//! largest timestamp is older than `retention.ms`. Only whole segments below the high
//! watermark go, and the active segment only when it is not empty.

use crate::config::LogConfig;

/// What retention needs to know about a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub base_offset: i64,
    pub size: u64,
    pub largest_timestamp: i64,
}

/// Why segments are deleted (for logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    LogStartOffset,
    RetentionBytes,
    RetentionMs,
}

/// Offsets and clock retention works against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetentionInput {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub now_ms: i64,
}

/// How many of the oldest `segments` (ordered by base offset, last = active) to delete, with
/// the reason for each pass that deleted some.
pub(crate) fn deletable_prefix(
    segments: &[SegmentSummary],
    config: &LogConfig,
    input: RetentionInput,
) -> (usize, Vec<(Reason, usize)>) {
    let mut deleted = 0;
    let mut reasons = Vec::new();
    let mut pass =
        |reason: Reason,
         deleted: &mut usize,
         predicate: &mut dyn FnMut(&SegmentSummary, Option<&SegmentSummary>) -> bool| {
            let n = prefix(&segments[*deleted..], input, predicate);
            if n > 0 {
                reasons.push((reason, n));
                *deleted += n;
            }
        };
    pass(Reason::LogStartOffset, &mut deleted, &mut |_, next| {
        next.is_some_and(|n| n.base_offset <= input.log_start_offset)
    });
    if config.cleanup_policy.deletes() {
        if config.retention_bytes >= 0 {
            let total: u64 = segments[deleted..].iter().map(|s| s.size).sum();
            let limit = config.retention_bytes as u64;
            if total >= limit {
                let mut diff = total - limit;
                pass(Reason::RetentionBytes, &mut deleted, &mut |s, _| {
                    if diff >= s.size {
                        diff -= s.size;
                        true
                    } else {
                        false
                    }
                });
            }
        }
        if config.retention_ms >= 0 {
            pass(Reason::RetentionMs, &mut deleted, &mut |s, _| {
                input.now_ms.saturating_sub(s.largest_timestamp) > config.retention_ms
            });
        }
    }
    (deleted, reasons)
}

/// Kafka's `deletableSegments`: the longest prefix whose segments all pass `predicate`, lie
/// below the high watermark, and are not an empty active segment.
fn prefix(
    segments: &[SegmentSummary],
    input: RetentionInput,
    predicate: &mut dyn FnMut(&SegmentSummary, Option<&SegmentSummary>) -> bool,
) -> usize {
    let mut n = 0;
    while n < segments.len() {
        let segment = &segments[n];
        let next = segments.get(n + 1);
        let upper_bound = next.map_or(input.log_end_offset, |s| s.base_offset);
        let last_and_empty = next.is_none() && segment.size == 0;
        if last_and_empty || input.high_watermark < upper_bound || !predicate(segment, next) {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CleanupPolicy;

    fn segs(spec: &[(i64, u64, i64)]) -> Vec<SegmentSummary> {
        spec.iter()
            .map(|&(base_offset, size, largest_timestamp)| SegmentSummary {
                base_offset,
                size,
                largest_timestamp,
            })
            .collect()
    }

    fn input(log_start: i64, hw: i64) -> RetentionInput {
        RetentionInput {
            log_start_offset: log_start,
            log_end_offset: 40,
            high_watermark: hw,
            now_ms: 10_000,
        }
    }

    #[test]
    fn log_start_deletes_segments_wholly_below() {
        let s = segs(&[(0, 100, 1), (10, 100, 2), (20, 100, 3), (30, 100, 4)]);
        let config = LogConfig {
            retention_ms: -1,
            ..LogConfig::default()
        };
        assert_eq!(deletable_prefix(&s, &config, input(19, 40)).0, 1);
        assert_eq!(deletable_prefix(&s, &config, input(20, 40)).0, 2);
        let (n, reasons) = deletable_prefix(&s, &config, input(35, 40));
        assert_eq!((n, reasons), (3, vec![(Reason::LogStartOffset, 3)]));
    }

    #[test]
    fn retention_bytes_keeps_the_log_at_or_under_the_limit() {
        let s = segs(&[(0, 100, 1), (10, 100, 2), (20, 100, 3), (30, 50, 4)]);
        let config = LogConfig {
            retention_ms: -1,
            retention_bytes: 200,
            ..LogConfig::default()
        };
        assert_eq!(deletable_prefix(&s, &config, input(0, 40)).0, 1);
        let config = LogConfig {
            retention_bytes: 150,
            ..config
        };
        assert_eq!(deletable_prefix(&s, &config, input(0, 40)).0, 2);
        let config = LogConfig {
            retention_bytes: 0,
            ..config
        };
        assert_eq!(deletable_prefix(&s, &config, input(0, 40)).0, 4);
    }

    #[test]
    fn retention_ms_uses_largest_timestamp_and_the_high_watermark() {
        let s = segs(&[
            (0, 100, 1000),
            (10, 100, 2000),
            (20, 100, 9500),
            (30, 100, 100),
        ]);
        let config = LogConfig {
            retention_ms: 1000,
            ..LogConfig::default()
        };
        assert_eq!(deletable_prefix(&s, &config, input(0, 40)).0, 2);
        assert_eq!(deletable_prefix(&s, &config, input(0, 15)).0, 1);
        let compact = LogConfig {
            cleanup_policy: CleanupPolicy::Compact,
            ..config
        };
        assert_eq!(deletable_prefix(&s, &compact, input(0, 40)).0, 0);
    }

    #[test]
    fn active_segment_goes_only_when_not_empty() {
        let config = LogConfig {
            retention_ms: 10,
            ..LogConfig::default()
        };
        let s = segs(&[(0, 100, 1), (30, 100, 1)]);
        assert_eq!(deletable_prefix(&s, &config, input(0, 40)).0, 2);
        let s = segs(&[(0, 100, 1), (40, 0, 1)]);
        assert_eq!(deletable_prefix(&s, &config, input(0, 40)).0, 1);
    }
}
