//! What the group state machine answers to JoinGroup and SyncGroup: either at once, or later
//! through a one-shot channel when the rebalance phase the member waits for completes.

use bytes::Bytes;
use kafka_core::ErrorCode;
use tokio::sync::oneshot;

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The outcome of a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub error: ErrorCode,
    pub member_id: String,
    /// -1 with an error.
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// "" when there is none.
    pub leader: String,
    pub skip_assignment: bool,
    /// Filled for the leader only.
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn error(member_id: impl Into<String>, error: ErrorCode) -> JoinResult {
        JoinResult {
            error,
            member_id: member_id.into(),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }
}

/// The outcome of a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer now, or a promise of one.
#[derive(Debug)]
pub enum Reply<T> {
    Ready(T),
    Waiting(oneshot::Receiver<T>),
}

impl<T> Reply<T> {
    /// A reply to be delivered later, and the sender that delivers it.
    pub fn waiting() -> (oneshot::Sender<T>, Reply<T>) {
        let (tx, rx) = oneshot::channel();
        (tx, Reply::Waiting(rx))
    }

    /// Waits for the answer. A promise that is dropped unanswered (the member's request was
    /// superseded by a newer one) yields `abandoned()`.
    pub async fn wait(self, abandoned: impl FnOnce() -> T) -> T {
        match self {
            Reply::Ready(value) => value,
            Reply::Waiting(rx) => rx.await.unwrap_or_else(|_| abandoned()),
        }
    }
}
