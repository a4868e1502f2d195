//! Partition logs: append-only segments of Kafka v2 record batches with mmap'd sparse indexes.
