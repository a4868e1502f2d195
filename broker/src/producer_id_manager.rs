//! Producer ids for idempotent producers: blocks reserved from the controller through the
//! metadata quorum, handed out one at a time, so ids are unique across the cluster.

use kafka_core::ErrorCode;
use raft_controller::Quorum;
use tokio::sync::Mutex;
use tracing::{info, warn};

#[derive(Debug)]
pub struct ProducerIdManager {
    quorum: Quorum,
    node_id: i32,
    /// (next id, end of the block, exclusive)
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(quorum: Quorum, node_id: i32) -> ProducerIdManager {
        ProducerIdManager {
            quorum,
            node_id,
            block: Mutex::new((0, 0)),
        }
    }

    /// The next unused producer id, or a retriable Kafka error code.
    pub async fn next(&self) -> Result<i64, ErrorCode> {
        let mut block = self.block.lock().await;
        if block.0 >= block.1 {
            let epoch = self
                .quorum
                .image()
                .brokers
                .get(&self.node_id)
                .map(|b| b.epoch)
                .unwrap_or(-1);
            match self.quorum.allocate_producer_ids(self.node_id, epoch).await {
                Ok(Ok((first, count))) => {
                    info!(first, count, "reserved a block of producer ids");
                    *block = (first, first + i64::from(count));
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "producer id block refused by the controller");
                    return Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
                }
                Err(e) => {
                    warn!(error = %e, "producer id block: controller unavailable");
                    return Err(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
                }
            }
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}
