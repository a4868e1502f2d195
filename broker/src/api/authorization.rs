//! The authorization checks handlers make, one per resource type, against the ACLs of the
//! newest metadata image. Requests on the inter-broker listener act as the broker itself (Kafka
//! requires the broker's principal to be a super user): that listener is PLAINTEXT until the
//! replica fetchers can authenticate, so it belongs on a network only brokers reach.

use kafka_core::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use kafka_core::ErrorCode;
use raft_controller::MetadataImage;

use super::RequestContext;
use crate::context::{Context, MetadataView};

/// Checks many resources against one image.
pub(crate) struct Check<'a> {
    ctx: &'a Context,
    rc: &'a RequestContext,
    /// `None` when every request is allowed (no authorizer, or the inter-broker listener).
    image: Option<std::sync::Arc<MetadataImage>>,
}

impl<'a> Check<'a> {
    pub(crate) fn new(ctx: &'a Context, rc: &'a RequestContext) -> Check<'a> {
        let enforced = ctx.authorizer().is_enabled()
            && rc.connection.listener != ctx.config().inter_broker_listener_name;
        Check {
            ctx,
            rc,
            image: enforced.then(|| ctx.latest_image()),
        }
    }

    pub(crate) fn allows(
        &self,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        match &self.image {
            None => true,
            Some(image) => self.ctx.authorizer().authorize(
                &image.acls,
                &self.rc.connection.principal,
                self.rc.connection.peer.ip(),
                operation,
                resource_type,
                name,
            ),
        }
    }

    pub(crate) fn topic(&self, operation: AclOperation, topic: &str) -> bool {
        self.allows(operation, ResourceType::Topic, topic)
    }

    pub(crate) fn group(&self, operation: AclOperation, group: &str) -> bool {
        self.allows(operation, ResourceType::Group, group)
    }

    pub(crate) fn cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_RESOURCE_NAME)
    }

    /// What an idempotent producer needs (InitProducerId without a transactional id): the
    /// cluster's IDEMPOTENT_WRITE, or WRITE on some topic.
    pub(crate) fn idempotent_write(&self) -> bool {
        self.cluster(AclOperation::IdempotentWrite)
            || self.image.as_ref().is_none_or(|image| {
                self.ctx.authorizer().authorize_any(
                    &image.acls,
                    &self.rc.connection.principal,
                    self.rc.connection.peer.ip(),
                    AclOperation::Write,
                    ResourceType::Topic,
                )
            })
    }
}

/// `Ok` when allowed, else the code a resource gets when it is not.
pub(crate) fn authorized(allowed: bool) -> Result<(), ErrorCode> {
    if allowed {
        Ok(())
    } else {
        Err(ErrorCode::TOPIC_AUTHORIZATION_FAILED)
    }
}
