//! One classic consumer group and its rebalance protocol, as Apache Kafka's group coordinator
//! runs it: JoinGroup (with KIP-394 member ids and KIP-345 static membership), SyncGroup,
//! Heartbeat, LeaveGroup, session/rebalance/sync timeouts and the initial rebalance delay.
//!
//! The group is a pure state machine: callers hold it under a lock, pass the current instant,
//! and carry out the writes it asks for ([`StoreGroup`], taken with [`Group::take_effects`]),
//! reporting back with [`Group::on_stored`]. Parked JoinGroup/SyncGroup requests are answered
//! through one-shot channels ([`Reply`]). Deadlines are fired by [`Group::on_timer`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_core::ErrorCode;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;
use storage::TopicPartition;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use super::member::{Member, Protocol};
use super::offsets::GroupOffsets;
use super::offsets_topic::{GroupMetadataValue, MemberMetadataValue};
use super::replies::{JoinResult, JoinedMember, Reply, SyncResult};
use super::state::GroupState;
use crate::replica::now_ms;

/// How long a new member's JoinGroup may wait in a rebalance before it is dropped (Kafka's
/// `NewMemberJoinTimeoutMs`): its session cannot be tracked while it has no member id.
pub const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The shortest wait for members to rejoin when none did within the rebalance timeout.
const MIN_REJOIN_WAIT: Duration = Duration::from_millis(100);

/// The protocol type of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Group-level settings from the broker configuration.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    /// group.initial.rebalance.delay.ms
    pub initial_rebalance_delay_ms: u64,
    /// group.max.size
    pub max_size: usize,
}

/// A JoinGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// JoinGroup v4+: a dynamic member without an id is given one and asked to rejoin.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a rejoining static leader may skip running the assignor.
    pub supports_skip_assignment: bool,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
    pub reason: Option<String>,
}

/// A SyncGroup as the state machine sees it.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub generation: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Sent by the leader only.
    pub assignments: Vec<(String, Bytes)>,
}

/// One member named in a LeaveGroup.
#[derive(Debug, Clone)]
pub struct LeavingMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

/// A write of the group's metadata record that the caller must carry out, then report with
/// [`Group::on_stored`].
#[derive(Debug)]
pub struct StoreGroup {
    pub value: GroupMetadataValue,
    pub then: AfterStore,
}

/// What to do once a [`StoreGroup`] is replicated (or failed).
#[derive(Debug)]
pub enum AfterStore {
    Nothing,
    /// The leader's assignment for `generation`: hand it out and become Stable.
    Sync {
        generation: i32,
        assignment: HashMap<String, Bytes>,
    },
    /// A known static member rejoined with a new member id without changing the group.
    StaticRejoin(StaticRejoin),
}

#[derive(Debug)]
pub struct StaticRejoin {
    generation: i32,
    group_instance_id: String,
    old_member_id: String,
    new_member_id: String,
    previous_protocols: Vec<Protocol>,
    previous_rebalance_timeout_ms: i32,
    previous_session_timeout_ms: i32,
    leader_before: Option<String>,
    supports_skip_assignment: bool,
}

/// DescribeGroups' view of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// DescribeGroups' view of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// The pending completion of the PreparingRebalance phase.
#[derive(Debug, Clone, Copy)]
enum JoinPhase {
    /// A new group waits `group.initial.rebalance.delay.ms` (extended while members keep
    /// arriving, up to the rebalance timeout) before completing the join.
    InitialDelay {
        deadline: Instant,
        delay_ms: u64,
        remaining_ms: u64,
    },
    /// Completes when every member has rejoined, or at the deadline (rebalance timeout).
    Rebalance { deadline: Instant },
}

impl JoinPhase {
    fn deadline(&self) -> Instant {
        match self {
            JoinPhase::InitialDelay { deadline, .. } | JoinPhase::Rebalance { deadline } => {
                *deadline
            }
        }
    }
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[derive(Debug)]
pub struct Group {
    id: String,
    state: GroupState,
    /// Wall-clock time of the last state change (ms), if known.
    state_timestamp_ms: Option<i64>,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// group.instance.id -> member id.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they lapse.
    pending_members: HashMap<String, Instant>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pending_sync: HashSet<String>,
    sync_deadline: Option<(i32, Instant)>,
    new_member_added: bool,
    join_phase: Option<JoinPhase>,
    /// For consumer groups: the union of the members' subscriptions (None if unknown).
    subscribed_topics: Option<BTreeSet<String>>,
    offsets: GroupOffsets,
    settings: GroupSettings,
    outbox: Vec<StoreGroup>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: String, settings: GroupSettings) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            state_timestamp_ms: Some(now_ms()),
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline: None,
            new_member_added: false,
            join_phase: None,
            subscribed_topics: None,
            offsets: GroupOffsets::default(),
            settings,
            outbox: Vec::new(),
        }
    }

    /// A group read back from `__consumer_offsets`: Stable with its stored members (each given
    /// a fresh session), or Empty. `value` is None for groups that only have offsets.
    pub fn loaded(
        id: String,
        value: Option<GroupMetadataValue>,
        offsets: GroupOffsets,
        settings: GroupSettings,
        now: Instant,
    ) -> Group {
        let mut group = Group::new(id, settings);
        group.offsets = offsets;
        let Some(value) = value else {
            return group;
        };
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol;
        group.leader = value.leader;
        group.state_timestamp_ms = Some(value.current_state_timestamp).filter(|t| *t >= 0);
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let protocol_type = group.protocol_type.clone().unwrap_or_default();
        for m in value.members {
            let member = Member {
                id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocol_type: protocol_type.clone(),
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline: Some(now + millis(m.session_timeout_ms)),
            };
            group.add_member(member);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        info!(group = %group.id, generation = group.generation, state = %group.state, members = group.members.len(), offsets = group.offsets.committed_count(), "loaded group");
        if group.members.len() > group.settings.max_size {
            group.prepare_rebalance(
                &format!(
                    "freshly loaded group is over capacity ({})",
                    group.settings.max_size
                ),
                now,
            );
        }
        group
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    #[cfg(test)]
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    #[cfg(test)]
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.members.len()
    }

    #[cfg(test)]
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    #[cfg(test)]
    pub fn static_member_id(&self, group_instance_id: &str) -> Option<&str> {
        self.static_members
            .get(group_instance_id)
            .map(String::as_str)
    }

    #[cfg(test)]
    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members.contains_key(member_id)
    }

    pub fn is_consumer_group(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    pub fn offsets(&self) -> &GroupOffsets {
        &self.offsets
    }

    pub fn offsets_mut(&mut self) -> &mut GroupOffsets {
        &mut self.offsets
    }

    /// The writes the group asked for since the last call.
    pub fn take_effects(&mut self) -> Vec<StoreGroup> {
        std::mem::take(&mut self.outbox)
    }

    /// The earliest instant at which [`Group::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let members = self.members.values().filter_map(|m| m.heartbeat_deadline);
        let pending = self.pending_members.values().copied();
        let join = self.join_phase.map(|p| p.deadline());
        let sync = self.sync_deadline.map(|(_, d)| d);
        members.chain(pending).chain(join).chain(sync).min()
    }

    /// Whether the consumer group's members subscribe to `topic` (true when unknown).
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => true,
        }
    }

    fn transition(&mut self, next: GroupState) {
        if !self.state.can_transition_to(next) {
            error!(group = %self.id, from = %self.state, to = %next, "invalid group state transition");
        }
        self.state = next;
        self.state_timestamp_ms = Some(now_ms());
    }

    fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(Member::is_awaiting_join)
    }

    fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.is_awaiting_join())
            .count()
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
        }
    }

    /// The protocol every member supports that gets the most votes (ties: the first member's
    /// preference order).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some(choice) = m.vote(&candidates) {
                *votes.entry(choice).or_insert(0) += 1;
            }
        }
        let best = votes.values().copied().max()?;
        candidates
            .into_iter()
            .find(|c| votes.get(c).copied() == Some(best))
            .map(str::to_string)
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.is_consumer_group() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            match parse_subscription(&m.metadata(protocol)) {
                Some(subscribed) => topics.extend(subscribed),
                None => {
                    warn!(group = %self.id, protocol, member = %m.id, "cannot parse the consumer protocol subscription; subscribed topics unknown");
                    return None;
                }
            }
        }
        Some(topics)
    }

    fn current_member_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    fn join_result(
        &self,
        member_id: &str,
        members: Vec<JoinedMember>,
        leader: Option<&str>,
        skip_assignment: bool,
    ) -> JoinResult {
        JoinResult {
            error: ErrorCode::NONE,
            member_id: member_id.to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: leader.unwrap_or_default().to_string(),
            skip_assignment,
            members,
        }
    }

    /// The group metadata record for the current state with `assignment` as the members'.
    pub fn metadata_value(&self, assignment: &HashMap<String, Bytes>) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol),
                    assignment: assignment.get(&m.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn current_assignment(&self) -> HashMap<String, Bytes> {
        self.members
            .values()
            .map(|m| (m.id.clone(), m.assignment.clone()))
            .collect()
    }

    // ---- membership bookkeeping -------------------------------------------------------------

    fn add_member(&mut self, member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member outright; a parked request it still has is told it is unknown now.
    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut m) = self.members.remove(member_id) {
            if let Some(instance) = &m.group_instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
            m.complete_join(JoinResult::error("", ErrorCode::UNKNOWN_MEMBER_ID));
            m.complete_sync(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID));
        }
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_members.remove(member_id);
        self.remove_pending_sync(member_id);
    }

    /// Kafka's `removeMemberAndUpdateGroup`: remove, then rebalance or finish the join.
    fn remove_member_and_update_group(&mut self, member_id: &str, reason: &str, now: Instant) {
        self.remove_member(member_id);
        match self.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(reason, now)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
        }
    }

    fn remove_pending_sync(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    fn update_member(
        &mut self,
        member_id: &str,
        protocols: Vec<Protocol>,
        rebalance_timeout_ms: i32,
        session_timeout_ms: i32,
        awaiting_join: Option<tokio::sync::oneshot::Sender<JoinResult>>,
    ) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = protocols;
            m.rebalance_timeout_ms = rebalance_timeout_ms;
            m.session_timeout_ms = session_timeout_ms;
            m.awaiting_join = awaiting_join;
        }
    }

    fn schedule_heartbeat(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = Some(now + millis(m.session_timeout_ms));
        }
    }

    /// Kafka's `validateCurrentMember`: a static member must map to `member_id`, and
    /// `member_id` must be a member.
    fn validate_current_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance) = group_instance_id {
            match self.static_members.get(instance) {
                Some(current) if current != member_id => {
                    info!(group = %self.id, member = member_id, instance, current = %current, "static member fenced by a newer member id");
                    return Err(ErrorCode::FENCED_INSTANCE_ID);
                }
                Some(_) => {}
                None => return Err(ErrorCode::UNKNOWN_MEMBER_ID),
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(ErrorCode::UNKNOWN_MEMBER_ID)
        }
    }

    fn replace_static_member(
        &mut self,
        group_instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) {
        let Some(mut member) = self.members.remove(old_member_id) else {
            return;
        };
        // Fence whatever the old incarnation still has parked.
        member.complete_join(JoinResult::error(
            old_member_id,
            ErrorCode::FENCED_INSTANCE_ID,
        ));
        member.complete_sync(SyncResult::error(ErrorCode::FENCED_INSTANCE_ID));
        member.id = new_member_id.to_string();
        self.members.insert(new_member_id.to_string(), member);
        if self.is_leader(old_member_id) {
            self.leader = Some(new_member_id.to_string());
        }
        self.static_members
            .insert(group_instance_id.to_string(), new_member_id.to_string());
        if self.pending_sync.remove(old_member_id) {
            self.pending_sync.insert(new_member_id.to_string());
        }
    }

    // ---- JoinGroup ------------------------------------------------------------------------------

    fn accepts_joining_member(&self, member_id: &str) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(Member::is_awaiting_join)
                    || self.num_awaiting_join() < self.settings.max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < self.settings.max_size
            }
        }
    }

    /// JoinGroup (the session timeout is checked by the caller).
    pub fn join(&mut self, request: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let reply = if !self.accepts_joining_member(&request.member_id) {
            info!(group = %self.id, member = %request.member_id, max = self.settings.max_size, "join refused: group is full");
            self.remove_member(&request.member_id);
            Reply::Ready(JoinResult::error("", ErrorCode::GROUP_MAX_SIZE_REACHED))
        } else if request.member_id.is_empty() {
            self.join_new_member(request, now)
        } else {
            self.join_current_member(request, now)
        };
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now);
        }
        reply
    }

    fn join_new_member(&mut self, request: JoinRequest, now: Instant) -> Reply<JoinResult> {
        if self.state == GroupState::Dead {
            return Reply::Ready(JoinResult::error("", ErrorCode::COORDINATOR_NOT_AVAILABLE));
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return Reply::Ready(JoinResult::error(
                "",
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
            ));
        }
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(&request.client_id);
        let new_member_id = format!("{prefix}-{}", Uuid::new_v4());
        match request.group_instance_id.clone() {
            Some(instance) => match self.static_members.get(&instance).cloned() {
                Some(old_member_id) => {
                    info!(group = %self.id, instance = %instance, old_member = %old_member_id, member = %new_member_id, state = %self.state, "static member rejoins with a new member id");
                    self.update_static_member_and_rebalance(
                        &old_member_id,
                        new_member_id,
                        instance,
                        request,
                        now,
                    )
                }
                None => {
                    info!(group = %self.id, instance = %instance, member = %new_member_id, state = %self.state, "new static member joins");
                    self.add_member_and_rebalance(new_member_id, request, now)
                }
            },
            None if request.require_known_member_id => {
                debug!(group = %self.id, member = %new_member_id, "new dynamic member must rejoin with its assigned member id");
                self.pending_members.insert(
                    new_member_id.clone(),
                    now + millis(request.session_timeout_ms),
                );
                Reply::Ready(JoinResult::error(
                    new_member_id,
                    ErrorCode::MEMBER_ID_REQUIRED,
                ))
            }
            None => {
                info!(group = %self.id, member = %new_member_id, state = %self.state, "new dynamic member joins");
                self.add_member_and_rebalance(new_member_id, request, now)
            }
        }
    }

    fn join_current_member(&mut self, request: JoinRequest, now: Instant) -> Reply<JoinResult> {
        let member_id = request.member_id.clone();
        if self.state == GroupState::Dead {
            return Reply::Ready(JoinResult::error(
                member_id,
                ErrorCode::COORDINATOR_NOT_AVAILABLE,
            ));
        }
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            return Reply::Ready(JoinResult::error(
                member_id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
            ));
        }
        if self.pending_members.contains_key(&member_id) {
            if request.group_instance_id.is_some() {
                return Reply::Ready(JoinResult::error(member_id, ErrorCode::UNKNOWN_MEMBER_ID));
            }
            info!(group = %self.id, member = %member_id, state = %self.state, "pending member joins");
            return self.add_member_and_rebalance(member_id, request, now);
        }
        if let Err(code) =
            self.validate_current_member(&member_id, request.group_instance_id.as_deref())
        {
            return Reply::Ready(JoinResult::error(member_id, code));
        }
        let matches = self
            .members
            .get(&member_id)
            .is_some_and(|m| m.matches(&request.protocols));
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(request, "member rejoins during rebalance", now)
            }
            GroupState::CompletingRebalance if matches => {
                // A retry of a join whose answer was lost: same answer again.
                let members = if self.is_leader(&member_id) {
                    self.current_member_metadata()
                } else {
                    Vec::new()
                };
                Reply::Ready(self.join_result(&member_id, members, self.leader.as_deref(), false))
            }
            GroupState::CompletingRebalance => self.update_member_and_rebalance(
                request,
                "member changed its metadata during CompletingRebalance",
                now,
            ),
            GroupState::Stable if self.is_leader(&member_id) => {
                // The leader may rejoin to trigger a rebalance (e.g. topic metadata changed).
                self.update_member_and_rebalance(request, "leader rejoins", now)
            }
            GroupState::Stable if !matches => {
                self.update_member_and_rebalance(request, "member changed its metadata", now)
            }
            GroupState::Stable => Reply::Ready(self.join_result(
                &member_id,
                Vec::new(),
                self.leader.as_deref(),
                false,
            )),
            GroupState::Empty | GroupState::Dead => {
                warn!(group = %self.id, member = %member_id, state = %self.state, "member rejoins a group in an unexpected state");
                Reply::Ready(JoinResult::error(member_id, ErrorCode::UNKNOWN_MEMBER_ID))
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        let (tx, reply) = Reply::waiting();
        if self.state == GroupState::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        let reason = format!(
            "adding new member {member_id} with group instance id {:?}; client reason: {}",
            request.group_instance_id,
            request.reason.as_deref().unwrap_or("not provided")
        );
        self.add_member(Member {
            id: member_id,
            group_instance_id: request.group_instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline: Some(now + NEW_MEMBER_JOIN_TIMEOUT),
        });
        self.maybe_prepare_rebalance(&reason, now);
        reply
    }

    fn update_member_and_rebalance(
        &mut self,
        request: JoinRequest,
        why: &str,
        now: Instant,
    ) -> Reply<JoinResult> {
        let (tx, reply) = Reply::waiting();
        let reason = format!(
            "{why} (member {}); client reason: {}",
            request.member_id,
            request.reason.as_deref().unwrap_or("not provided")
        );
        self.update_member(
            &request.member_id,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            Some(tx),
        );
        self.maybe_prepare_rebalance(&reason, now);
        reply
    }

    fn update_static_member_and_rebalance(
        &mut self,
        old_member_id: &str,
        new_member_id: String,
        instance: String,
        request: JoinRequest,
        now: Instant,
    ) -> Reply<JoinResult> {
        let leader_before = self.leader.clone();
        self.replace_static_member(&instance, old_member_id, &new_member_id);
        self.schedule_heartbeat(&new_member_id, now);
        let Some(member) = self.members.get(&new_member_id) else {
            return Reply::Ready(JoinResult::error("", ErrorCode::UNKNOWN_MEMBER_ID));
        };
        let previous_protocols = member.protocols.clone();
        let previous_rebalance_timeout_ms = member.rebalance_timeout_ms;
        let previous_session_timeout_ms = member.session_timeout_ms;
        let (tx, reply) = Reply::waiting();
        self.update_member(
            &new_member_id,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            Some(tx),
        );
        let reason = format!(
            "static member {new_member_id} with instance id {instance} rejoined; client reason: {}",
            request.reason.as_deref().unwrap_or("not provided")
        );
        match self.state {
            GroupState::Stable => {
                if self.select_protocol() == self.protocol_name {
                    // Nothing the assignment depends on changed: persist the new member id and
                    // answer without a rebalance.
                    let assignment = self.current_assignment();
                    let value = self.metadata_value(&assignment);
                    self.outbox.push(StoreGroup {
                        value,
                        then: AfterStore::StaticRejoin(StaticRejoin {
                            generation: self.generation,
                            group_instance_id: instance,
                            old_member_id: old_member_id.to_string(),
                            new_member_id,
                            previous_protocols,
                            previous_rebalance_timeout_ms,
                            previous_session_timeout_ms,
                            leader_before,
                            supports_skip_assignment: request.supports_skip_assignment,
                        }),
                    });
                } else {
                    self.maybe_prepare_rebalance(
                        &format!("{reason}, changing the group's protocol"),
                        now,
                    );
                }
            }
            GroupState::CompletingRebalance => {
                // The leader may already have assigned to the old member id: start over.
                self.prepare_rebalance(&reason, now);
            }
            GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                if let Some(m) = self.members.get_mut(&new_member_id) {
                    m.complete_join(JoinResult::error(
                        new_member_id.clone(),
                        ErrorCode::UNKNOWN_MEMBER_ID,
                    ));
                }
            }
        }
        reply
    }

    // ---- rebalance phases -----------------------------------------------------------------------

    fn maybe_prepare_rebalance(&mut self, reason: &str, now: Instant) {
        if self.state.can_rebalance() {
            self.prepare_rebalance(reason, now);
        }
    }

    fn prepare_rebalance(&mut self, reason: &str, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(ErrorCode::REBALANCE_IN_PROGRESS, now);
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        let rebalance_timeout_ms = u64::try_from(self.rebalance_timeout_ms()).unwrap_or(0);
        self.join_phase = Some(if self.state == GroupState::Empty {
            let delay_ms = self.settings.initial_rebalance_delay_ms;
            JoinPhase::InitialDelay {
                deadline: now + Duration::from_millis(delay_ms),
                delay_ms,
                remaining_ms: rebalance_timeout_ms.saturating_sub(delay_ms),
            }
        } else {
            JoinPhase::Rebalance {
                deadline: now + Duration::from_millis(rebalance_timeout_ms),
            }
        });
        let from = self.state;
        self.transition(GroupState::PreparingRebalance);
        info!(group = %self.id, from = %from, generation = self.generation, members = self.members.len(), reason, "preparing to rebalance");
        self.maybe_complete_join(now);
    }

    /// Completes the join phase once every member has rejoined (not during the initial delay).
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance
            && matches!(self.join_phase, Some(JoinPhase::Rebalance { .. }))
            && self.has_all_members_joined()
        {
            self.complete_join(now);
        }
    }

    /// Kafka's `onCompleteJoin`: drop dynamic members that did not rejoin, start the next
    /// generation and answer every parked JoinGroup (the leader gets the member list).
    fn complete_join(&mut self, now: Instant) {
        self.join_phase = None;
        let not_rejoined: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && !m.is_static())
            .map(|m| m.id.clone())
            .collect();
        for member_id in &not_rejoined {
            info!(group = %self.id, member = %member_id, generation = self.generation, "removing member that did not rejoin in time");
            self.remove_member(member_id);
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            error!(group = %self.id, generation = self.generation, "no member rejoined; waiting another rebalance timeout");
            // At least a moment, so that members with a zero rebalance timeout cannot spin this.
            let timeout = millis(self.rebalance_timeout_ms()).max(MIN_REJOIN_WAIT);
            self.join_phase = Some(JoinPhase::Rebalance {
                deadline: now + timeout,
            });
            return;
        }
        self.init_next_generation();
        if self.state == GroupState::Empty {
            info!(group = %self.id, generation = self.generation, "group is now empty");
            let value = self.metadata_value(&HashMap::new());
            self.outbox.push(StoreGroup {
                value,
                then: AfterStore::Nothing,
            });
            return;
        }
        info!(group = %self.id, generation = self.generation, protocol = ?self.protocol_name, leader = ?self.leader, members = self.members.len(), "rebalance joined; awaiting the leader's assignment");
        let leader_members = self.current_member_metadata();
        let generation = self.generation;
        let protocol_type = self.protocol_type.clone();
        let protocol_name = self.protocol_name.clone();
        let leader = self.leader.clone().unwrap_or_default();
        for m in self.members.values_mut() {
            let members = if m.id == leader {
                leader_members.clone()
            } else {
                Vec::new()
            };
            m.complete_join(JoinResult {
                error: ErrorCode::NONE,
                member_id: m.id.clone(),
                generation,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                leader: leader.clone(),
                skip_assignment: false,
                members,
            });
            m.heartbeat_deadline = Some(now + millis(m.session_timeout_ms));
            m.is_new = false;
            self.pending_sync.insert(m.id.clone());
        }
        self.sync_deadline = Some((generation, now + millis(self.rebalance_timeout_ms())));
    }

    /// Keeps the leader if it rejoined, else picks any member that did. False if none did.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(current) = self.leader.clone() else {
            return false;
        };
        if self
            .members
            .get(&current)
            .is_some_and(Member::is_awaiting_join)
        {
            return true;
        }
        match self
            .members
            .values()
            .find(|m| m.is_awaiting_join())
            .map(|m| m.id.clone())
        {
            Some(new_leader) => {
                info!(group = %self.id, old_leader = %current, leader = %new_leader, "leader did not rejoin in time; elected another member");
                self.leader = Some(new_leader);
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::Empty);
        } else {
            let selected = self.select_protocol().or_else(|| {
                error!(group = %self.id, "members share no protocol; using the first member's first");
                self.members
                    .values()
                    .next()
                    .and_then(|m| m.protocols.first())
                    .map(|(name, _)| name.clone())
            });
            self.protocol_name = selected;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::CompletingRebalance);
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
    }

    fn reset_and_propagate_assignment_error(&mut self, error: ErrorCode, now: Instant) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(error, now);
    }

    fn propagate_assignment(&mut self, error: ErrorCode, now: Instant) {
        let (protocol_type, protocol_name) = if error == ErrorCode::NONE {
            (self.protocol_type.clone(), self.protocol_name.clone())
        } else {
            (None, None)
        };
        for m in self.members.values_mut() {
            let result = SyncResult {
                error,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment: m.assignment.clone(),
            };
            if m.complete_sync(result) {
                // Sessions restart once the member has its answer.
                m.heartbeat_deadline = Some(now + millis(m.session_timeout_ms));
            }
        }
    }

    // ---- SyncGroup, Heartbeat, LeaveGroup -------------------------------------------------------

    pub fn sync(&mut self, request: SyncRequest, now: Instant) -> Reply<SyncResult> {
        if self.state == GroupState::Dead {
            return Reply::Ready(SyncResult::error(ErrorCode::COORDINATOR_NOT_AVAILABLE));
        }
        let member_id = request.member_id.as_str();
        if let Err(code) =
            self.validate_current_member(member_id, request.group_instance_id.as_deref())
        {
            return Reply::Ready(SyncResult::error(code));
        }
        if request.generation != self.generation {
            return Reply::Ready(SyncResult::error(ErrorCode::ILLEGAL_GENERATION));
        }
        if request
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t))
            || request
                .protocol_name
                .as_ref()
                .is_some_and(|n| self.protocol_name.as_ref() != Some(n))
        {
            return Reply::Ready(SyncResult::error(ErrorCode::INCONSISTENT_GROUP_PROTOCOL));
        }
        match self.state {
            GroupState::Empty => Reply::Ready(SyncResult::error(ErrorCode::UNKNOWN_MEMBER_ID)),
            GroupState::PreparingRebalance => {
                Reply::Ready(SyncResult::error(ErrorCode::REBALANCE_IN_PROGRESS))
            }
            GroupState::CompletingRebalance => {
                let (tx, reply) = Reply::waiting();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = Some(tx);
                }
                self.remove_pending_sync(member_id);
                if self.is_leader(member_id) {
                    let mut assignment: HashMap<String, Bytes> =
                        request.assignments.into_iter().collect();
                    let missing: Vec<String> = self
                        .members
                        .keys()
                        .filter(|id| !assignment.contains_key(*id))
                        .cloned()
                        .collect();
                    if !missing.is_empty() {
                        warn!(group = %self.id, generation = self.generation, members = ?missing, "leader's assignment leaves members out; they get an empty one");
                    }
                    for id in missing {
                        assignment.insert(id, Bytes::new());
                    }
                    info!(group = %self.id, generation = self.generation, leader = member_id, members = self.members.len(), static_members = self.static_members.len(), "assignment received from the leader");
                    let value = self.metadata_value(&assignment);
                    self.outbox.push(StoreGroup {
                        value,
                        then: AfterStore::Sync {
                            generation: self.generation,
                            assignment,
                        },
                    });
                }
                reply
            }
            GroupState::Stable => {
                self.remove_pending_sync(member_id);
                self.schedule_heartbeat(member_id, now);
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Reply::Ready(SyncResult {
                    error: ErrorCode::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                })
            }
            GroupState::Dead => {
                Reply::Ready(SyncResult::error(ErrorCode::COORDINATOR_NOT_AVAILABLE))
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> ErrorCode {
        if self.state == GroupState::Dead {
            return ErrorCode::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(code) = self.validate_current_member(member_id, group_instance_id) {
            return code;
        }
        if generation != self.generation {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        match self.state {
            GroupState::Empty => ErrorCode::UNKNOWN_MEMBER_ID,
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.schedule_heartbeat(member_id, now);
                ErrorCode::NONE
            }
            GroupState::PreparingRebalance => {
                self.schedule_heartbeat(member_id, now);
                ErrorCode::REBALANCE_IN_PROGRESS
            }
            GroupState::Dead => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        }
    }

    /// LeaveGroup: one error per member, or a group-level error.
    pub fn leave(
        &mut self,
        leaving: &[LeavingMember],
        now: Instant,
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        if self.state == GroupState::Dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        let mut errors = Vec::with_capacity(leaving.len());
        for l in leaving {
            let reason = format!(
                "member left the group; client reason: {}",
                l.reason.as_deref().unwrap_or("not provided")
            );
            let code = if l.member_id.is_empty() {
                // Administrative removal of a static member by its instance id.
                match l
                    .group_instance_id
                    .as_deref()
                    .and_then(|i| self.static_members.get(i).cloned())
                {
                    Some(current) => {
                        info!(group = %self.id, member = %current, instance = ?l.group_instance_id, reason = ?l.reason, "static member removed by LeaveGroup");
                        self.remove_member_and_update_group(&current, &reason, now);
                        ErrorCode::NONE
                    }
                    None => ErrorCode::UNKNOWN_MEMBER_ID,
                }
            } else if self.pending_members.remove(&l.member_id).is_some() {
                info!(group = %self.id, member = %l.member_id, "pending member left");
                if self.state == GroupState::PreparingRebalance {
                    self.maybe_complete_join(now);
                }
                ErrorCode::NONE
            } else {
                match self.validate_current_member(&l.member_id, l.group_instance_id.as_deref()) {
                    Err(code) => code,
                    Ok(()) => {
                        info!(group = %self.id, member = %l.member_id, instance = ?l.group_instance_id, reason = ?l.reason, "member left the group");
                        self.remove_member_and_update_group(&l.member_id, &reason, now);
                        ErrorCode::NONE
                    }
                }
            };
            errors.push(code);
        }
        Ok(errors)
    }

    // ---- store completions, timers, unloading ---------------------------------------------------

    /// A [`StoreGroup`] finished with `error` (NONE when replicated).
    pub fn on_stored(&mut self, then: AfterStore, error: ErrorCode, now: Instant) {
        match then {
            AfterStore::Nothing => {
                if error != ErrorCode::NONE {
                    warn!(group = %self.id, error = %error, "writing the group's metadata failed");
                }
            }
            AfterStore::Sync {
                generation,
                assignment,
            } => {
                if self.state != GroupState::CompletingRebalance || generation != self.generation {
                    return;
                }
                if error != ErrorCode::NONE {
                    warn!(group = %self.id, generation, error = %error, "storing the assignment failed; rebalancing again");
                    self.reset_and_propagate_assignment_error(error, now);
                    self.maybe_prepare_rebalance("storing the group assignment failed", now);
                    return;
                }
                for m in self.members.values_mut() {
                    m.assignment = assignment.get(&m.id).cloned().unwrap_or_default();
                }
                self.propagate_assignment(ErrorCode::NONE, now);
                self.transition(GroupState::Stable);
                info!(group = %self.id, generation, members = self.members.len(), protocol = ?self.protocol_name, "group is stable");
            }
            AfterStore::StaticRejoin(s) => self.on_static_rejoin_stored(s, error, now),
        }
    }

    fn on_static_rejoin_stored(&mut self, s: StaticRejoin, error: ErrorCode, now: Instant) {
        let unchanged = self.state == GroupState::Stable
            && self.generation == s.generation
            && self.static_members.get(&s.group_instance_id) == Some(&s.new_member_id)
            && self
                .members
                .get(&s.new_member_id)
                .is_some_and(Member::is_awaiting_join);
        if !unchanged {
            // The group moved on (a rebalance started); the member's join is answered by it.
            return;
        }
        if error != ErrorCode::NONE {
            warn!(group = %self.id, instance = %s.group_instance_id, error = %error, "persisting the static member's new id failed; reverting");
            let tx = self
                .members
                .get_mut(&s.new_member_id)
                .and_then(|m| m.awaiting_join.take());
            self.update_member(
                &s.new_member_id,
                s.previous_protocols,
                s.previous_rebalance_timeout_ms,
                s.previous_session_timeout_ms,
                None,
            );
            self.replace_static_member(&s.group_instance_id, &s.new_member_id, &s.old_member_id);
            self.schedule_heartbeat(&s.old_member_id, now);
            if let Some(tx) = tx {
                let mut result =
                    self.join_result("", Vec::new(), s.leader_before.as_deref(), false);
                result.error = error;
                let _ = tx.send(result);
            }
            return;
        }
        let result = if s.supports_skip_assignment {
            // JoinGroup v9+: the static leader learns it leads but skips the assignor.
            let is_leader = self.is_leader(&s.new_member_id);
            let members = if is_leader {
                self.current_member_metadata()
            } else {
                Vec::new()
            };
            self.join_result(&s.new_member_id, members, self.leader.as_deref(), is_leader)
        } else {
            // Older clients get the previous leader id so a rejoining leader does not assign
            // (a Stable group would not hand that assignment out).
            self.join_result(
                &s.new_member_id,
                Vec::new(),
                s.leader_before.as_deref(),
                false,
            )
        };
        info!(group = %self.id, instance = %s.group_instance_id, member = %s.new_member_id, "static member rejoined without a rebalance");
        if let Some(m) = self.members.get_mut(&s.new_member_id) {
            m.complete_join(result);
        }
    }

    /// Fires every deadline that has passed: pending members, member sessions, the join phase
    /// (initial delay or rebalance timeout) and the sync timeout.
    pub fn on_timer(&mut self, now: Instant) {
        if self.state == GroupState::Dead {
            return;
        }
        let lapsed: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for member_id in lapsed {
            info!(group = %self.id, member = %member_id, "pending member expired without joining");
            self.pending_members.remove(&member_id);
            if self.state == GroupState::PreparingRebalance {
                self.maybe_complete_join(now);
            }
        }

        let due: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for member_id in due {
            let Some(m) = self.members.get_mut(&member_id) else {
                continue;
            };
            if m.heartbeat_deadline.is_none_or(|d| d > now) {
                continue;
            }
            if !m.is_new && (m.is_awaiting_join() || m.is_awaiting_sync()) {
                // Members waiting in a rebalance are alive; their session restarts when answered.
                m.heartbeat_deadline = None;
                continue;
            }
            info!(group = %self.id, member = %member_id, instance = ?m.group_instance_id, session_timeout_ms = m.session_timeout_ms, generation = self.generation, "member session expired; removing it");
            self.remove_member_and_update_group(
                &member_id,
                &format!("member {member_id} session expired"),
                now,
            );
        }

        // An extended initial delay may already be due again (e.g. a zero delay): loop.
        while let Some(phase) = self.join_phase {
            if phase.deadline() > now {
                break;
            }
            if self.state != GroupState::PreparingRebalance {
                self.join_phase = None;
                break;
            }
            match phase {
                JoinPhase::InitialDelay {
                    delay_ms,
                    remaining_ms,
                    ..
                } if self.new_member_added && remaining_ms != 0 => {
                    self.new_member_added = false;
                    let delay = self.settings.initial_rebalance_delay_ms.min(remaining_ms);
                    self.join_phase = Some(JoinPhase::InitialDelay {
                        deadline: now + Duration::from_millis(delay),
                        delay_ms: delay,
                        remaining_ms: remaining_ms.saturating_sub(delay_ms),
                    });
                }
                _ => self.complete_join(now),
            }
        }

        if let Some((generation, deadline)) = self.sync_deadline {
            if deadline <= now {
                self.sync_deadline = None;
                if generation == self.generation
                    && matches!(
                        self.state,
                        GroupState::CompletingRebalance | GroupState::Stable
                    )
                    && !self.pending_sync.is_empty()
                {
                    let missing: Vec<String> = self.pending_sync.drain().collect();
                    for member_id in &missing {
                        self.remove_member(member_id);
                    }
                    info!(group = %self.id, generation, members = ?missing, "members did not send SyncGroup in time; removing them");
                    self.prepare_rebalance("members did not sync in time", now);
                }
            }
        }
    }

    /// Kafka's `onGroupUnloaded`: the group moves to another coordinator. Parked requests are
    /// told NOT_COORDINATOR so the clients find the new one.
    pub fn unload(&mut self) {
        info!(group = %self.id, generation = self.generation, state = %self.state, "unloading group");
        self.mark_dead();
        for m in self.members.values_mut() {
            m.complete_join(JoinResult::error(m.id.clone(), ErrorCode::NOT_COORDINATOR));
            m.complete_sync(SyncResult::error(ErrorCode::NOT_COORDINATOR));
        }
    }

    /// The group is gone (deleted, expired or unloaded): no more deadlines.
    pub fn mark_dead(&mut self) {
        self.transition(GroupState::Dead);
        self.join_phase = None;
        self.sync_deadline = None;
        self.pending_members.clear();
        for m in self.members.values_mut() {
            m.heartbeat_deadline = None;
        }
    }

    // ---- offsets --------------------------------------------------------------------------------

    /// Kafka's `validateOffsetCommit` plus the state checks of `doCommitOffsets`; a valid commit
    /// by a member also counts as its heartbeat.
    pub fn validate_offset_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), ErrorCode> {
        if self.state == GroupState::Dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && self.state == GroupState::Empty {
            // A standalone consumer (or admin client) committing for an empty group.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            self.validate_current_member(member_id, group_instance_id)?;
            if generation != self.generation {
                return Err(ErrorCode::ILLEGAL_GENERATION);
            }
        } else if self.state != GroupState::Empty {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        match self.state {
            GroupState::Empty => Ok(()),
            GroupState::Stable | GroupState::PreparingRebalance => {
                self.schedule_heartbeat(member_id, now);
                Ok(())
            }
            GroupState::CompletingRebalance => Err(ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::Dead => Err(ErrorCode::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// Removes offsets past `offsets.retention.minutes` under Kafka's rules: all offsets of an
    /// empty group once it has been empty that long; offsets of a stable consumer group for
    /// topics it no longer subscribes to; offsets of a standalone consumer group by commit time.
    pub fn remove_expired_offsets(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
    ) -> Vec<TopicPartition> {
        let none = BTreeSet::new();
        let state_ts = self.state_timestamp_ms;
        match (self.protocol_type.as_deref(), self.state) {
            (Some(_), GroupState::Empty) => self.offsets.expire(
                now_ms,
                retention_ms,
                |o| state_ts.unwrap_or(o.commit_timestamp_ms),
                &none,
            ),
            (Some(CONSUMER_PROTOCOL_TYPE), GroupState::Stable)
                if self.subscribed_topics.is_some() =>
            {
                let keep = self.subscribed_topics.clone().unwrap_or_default();
                self.offsets
                    .expire(now_ms, retention_ms, |o| o.commit_timestamp_ms, &keep)
            }
            (None, _) => {
                self.offsets
                    .expire(now_ms, retention_ms, |o| o.commit_timestamp_ms, &none)
            }
            _ => Vec::new(),
        }
    }

    // ---- views ----------------------------------------------------------------------------------

    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = if stable {
            self.protocol_name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = self
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        GroupDescription {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        }
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;

/// The topics of a consumer protocol subscription (any version: v0 is a prefix of all).
pub fn parse_subscription(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, 0).ok()?;
    Some(
        subscription
            .topics
            .into_iter()
            .map(|t| t.to_string())
            .collect(),
    )
}
