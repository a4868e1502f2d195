//! Partition logs for Rivulet: append-only segments of Kafka v2 record batches, stored
//! byte-for-byte in Kafka's on-disk layout (`<topic>-<partition>/<base offset>.log`, `.index`,
//! `.timeindex`), with mmap'd sparse indexes, crash recovery, retention, compaction, idempotent
//! producer state and the leader epoch cache. [`LogManager`] owns the logs of a broker.

mod append;
mod atomic_file;
mod batch;
mod batch_scan;
mod checkpoint;
mod cleaner;
mod codec;
mod config;
mod error;
mod index_file;
mod leader_epoch;
mod log;
mod log_dir;
mod maintenance;
mod manager;
mod offset_index;
mod partition_metadata;
mod plain_batch;
mod producer_state;
mod read;
mod record;
mod recovery;
mod region;
mod retention;
mod segment;
#[cfg(test)]
mod test_batches;
mod time_index;
mod timestamp_search;
mod validation;
mod vectored_write;
mod verification;

pub use append::AppendInfo;
pub use batch::BatchHeader;
pub use cleaner::CompactionOutcome;
pub use config::{CleanupPolicy, LogConfig, TimestampType};
pub use error::{Result, StorageError};
pub use kafka_core::TopicPartition;
pub use log::Log;
pub use log_dir::{is_log_dir_failure, FailureListener, LogDirFailure};
pub use maintenance::MaintenanceOutcome;
pub use manager::{LogDirUsage, LogManager};
pub use plain_batch::plain_batch;
pub use producer_state::{ProducerBatch, ProducerEntry};
pub use read::ReadInfo;
pub use region::FileRegion;
pub use timestamp_search::TimestampOffset;
pub use validation::validate_produced;
