//! The Kafka protocol server: listeners, request handlers, partition replicas and group coordinator.
