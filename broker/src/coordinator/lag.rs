//! Consumer lag in records and in seconds, estimated the way Lightbend's kafka-lag-exporter does:
//! each partition keeps a small sliding table of sampled (latest offset, wall time) points; the
//! time at which the log reached a group's committed offset is interpolated between the two
//! points around it (or extrapolated from the table's overall trend when it is older than the
//! table), and the time lag is now minus that time.

use std::collections::{BTreeSet, HashMap, VecDeque};

use parking_lot::Mutex;
use storage::TopicPartition;

/// Points kept per partition: with a sample every few seconds, a window of several minutes.
pub const SAMPLES_PER_PARTITION: usize = 128;

/// One sample: the partition's latest (consumer-visible) offset at a wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    pub offset: i64,
    pub time_ms: i64,
}

/// A partition's sliding table of samples, offsets non-decreasing.
#[derive(Debug, Clone)]
pub struct SampleTable {
    points: VecDeque<Point>,
    limit: usize,
}

impl SampleTable {
    pub fn new(limit: usize) -> SampleTable {
        SampleTable {
            points: VecDeque::with_capacity(limit.min(16)),
            limit: limit.max(2),
        }
    }

    pub fn latest(&self) -> Option<Point> {
        self.points.back().copied()
    }

    /// Adds a sample. Out-of-order samples are ignored; a smaller offset (the partition was
    /// truncated or re-created) starts the table over; a flat run keeps only its first and last
    /// point, so an idle partition costs two points.
    pub fn add(&mut self, point: Point) {
        if let Some(last) = self.points.back().copied() {
            if point.time_ms <= last.time_ms {
                return;
            }
            if point.offset < last.offset {
                self.points.clear();
            } else if point.offset == last.offset
                && self.points.len() > 1
                && self.points.get(self.points.len() - 2).map(|p| p.offset) == Some(point.offset)
            {
                if let Some(back) = self.points.back_mut() {
                    *back = point;
                }
                return;
            }
        }
        if self.points.len() == self.limit {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    /// The estimated wall time (ms) at which the latest offset reached `offset`. `None` when the
    /// table cannot tell (fewer than two points) — unless the group is caught up, which is
    /// reported as the latest sample's time.
    pub fn time_at(&self, offset: i64) -> Option<f64> {
        let last = self.latest()?;
        if offset >= last.offset {
            return Some(last.time_ms as f64);
        }
        if self.points.len() < 2 {
            return None;
        }
        let pair = self
            .points
            .iter()
            .zip(self.points.iter().skip(1))
            .rev()
            .find(|(l, r)| offset >= l.offset && offset <= r.offset);
        let (left, right) = match pair {
            Some((l, r)) => (*l, *r),
            // Older than the table: extrapolate along the table's overall trend.
            None => (*self.points.front()?, last),
        };
        let dy = (right.offset - left.offset) as f64;
        let dx = (right.time_ms - left.time_ms) as f64;
        if dy <= 0.0 {
            return Some(left.time_ms as f64);
        }
        Some(right.time_ms as f64 - (right.offset - offset) as f64 * dx / dy)
    }

    /// Seconds the consumer at `committed` lags behind the log at `now_ms` (0 when caught up).
    pub fn lag_seconds(&self, committed: i64, now_ms: i64) -> Option<f64> {
        let last = self.latest()?;
        if committed >= last.offset {
            return Some(0.0);
        }
        let reached = self.time_at(committed)?;
        Some(((now_ms as f64 - reached) / 1000.0).max(0.0))
    }
}

/// Sample tables of every partition some group coordinated here has committed offsets for.
#[derive(Debug, Default)]
pub struct LagTables {
    tables: Mutex<HashMap<TopicPartition, SampleTable>>,
}

/// One group's lag on one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLag {
    pub records: i64,
    pub seconds: Option<f64>,
}

impl LagTables {
    /// Records the latest offsets sampled at `now_ms`, and forgets partitions no longer in
    /// `tracked` (bounded memory).
    pub fn record(
        &self,
        latest: &HashMap<TopicPartition, i64>,
        tracked: &BTreeSet<TopicPartition>,
        now_ms: i64,
    ) {
        let mut tables = self.tables.lock();
        tables.retain(|tp, _| tracked.contains(tp));
        for (tp, offset) in latest {
            if !tracked.contains(tp) {
                continue;
            }
            tables
                .entry(tp.clone())
                .or_insert_with(|| SampleTable::new(SAMPLES_PER_PARTITION))
                .add(Point {
                    offset: *offset,
                    time_ms: now_ms,
                });
        }
    }

    /// The lag of a group committed at `committed` on `tp`, if the partition has been sampled.
    pub fn lag(&self, tp: &TopicPartition, committed: i64, now_ms: i64) -> Option<PartitionLag> {
        let tables = self.tables.lock();
        let table = tables.get(tp)?;
        let latest = table.latest()?;
        Some(PartitionLag {
            records: (latest.offset - committed).max(0),
            seconds: table.lag_seconds(committed, now_ms),
        })
    }

    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.tables.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(points: &[(i64, i64)]) -> SampleTable {
        let mut t = SampleTable::new(8);
        for (offset, time_ms) in points {
            t.add(Point {
                offset: *offset,
                time_ms: *time_ms,
            });
        }
        t
    }

    #[test]
    fn interpolates_between_samples() {
        let t = table(&[(0, 0), (100, 10_000), (300, 20_000)]);
        assert_eq!(t.time_at(50), Some(5_000.0));
        assert_eq!(t.time_at(200), Some(15_000.0));
        assert_eq!(t.time_at(300), Some(20_000.0));
        // Committed at 200 at time 30 s: the log was there at 15 s.
        assert_eq!(t.lag_seconds(200, 30_000), Some(15.0));
        assert_eq!(t.lag_seconds(300, 30_000), Some(0.0));
        assert_eq!(t.lag_seconds(400, 30_000), Some(0.0));
    }

    #[test]
    fn extrapolates_before_the_table() {
        let t = table(&[(1000, 10_000), (2000, 20_000)]);
        assert_eq!(t.time_at(500), Some(5_000.0));
        assert_eq!(t.lag_seconds(500, 20_000), Some(15.0));
    }

    #[test]
    fn too_few_points_means_unknown_unless_caught_up() {
        let t = table(&[(10, 1000)]);
        assert_eq!(t.lag_seconds(5, 2000), None);
        assert_eq!(t.lag_seconds(10, 2000), Some(0.0));
        assert_eq!(SampleTable::new(4).lag_seconds(0, 0), None);
    }

    #[test]
    fn flat_runs_are_compressed_and_ordering_enforced() {
        let t = table(&[
            (5, 1000),
            (5, 2000),
            (5, 3000),
            (5, 4000),
            (4, 4000),
            (6, 3500),
        ]);
        assert_eq!(t.points.len(), 2);
        assert_eq!(
            t.latest(),
            Some(Point {
                offset: 5,
                time_ms: 4000
            })
        );
        // A flat table before the committed offset: the earliest time it is known to be there.
        assert_eq!(t.time_at(3), Some(1000.0));
        // A smaller offset later in time starts over (partition re-created).
        let mut t = t;
        t.add(Point {
            offset: 1,
            time_ms: 5000,
        });
        assert_eq!(t.points.len(), 1);
    }

    #[test]
    fn tables_are_bounded() {
        let mut t = SampleTable::new(4);
        for i in 0..100 {
            t.add(Point {
                offset: i * 10,
                time_ms: i * 1000,
            });
        }
        assert_eq!(t.points.len(), 4);
        let tables = LagTables::default();
        let a = TopicPartition {
            topic: "a".into(),
            partition: 0,
        };
        let b = TopicPartition {
            topic: "b".into(),
            partition: 0,
        };
        let latest: HashMap<TopicPartition, i64> = [(a.clone(), 10), (b.clone(), 20)].into();
        tables.record(&latest, &[a.clone(), b.clone()].into(), 1000);
        assert_eq!(tables.tracked(), 2);
        tables.record(&latest, &[a.clone()].into(), 2000);
        assert_eq!(tables.tracked(), 1);
        // The log was already at 10 one second ago: the group at 4 is at least that far behind.
        assert_eq!(
            tables.lag(&a, 4, 2000),
            Some(PartitionLag {
                records: 6,
                seconds: Some(1.0)
            })
        );
        assert_eq!(tables.lag(&b, 4, 2000), None);
    }
}
