//! Tests of the group state machine, driven in-process with explicit instants.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn settings(delay_ms: u64, max_size: usize) -> GroupSettings {
    GroupSettings {
        initial_rebalance_delay_ms: delay_ms,
        max_size,
    }
}

/// Consumer protocol subscription metadata (v0) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let s = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.to_string()))
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    s.encode(&mut buf, 0).unwrap();
    buf.freeze()
}

fn protocols(names: &[&str], topics: &[&str]) -> Vec<Protocol> {
    names
        .iter()
        .map(|n| (n.to_string(), subscription(topics)))
        .collect()
}

fn join(member_id: &str, instance: Option<&str>) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        group_instance_id: instance.map(str::to_string),
        require_known_member_id: true,
        supports_skip_assignment: false,
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        rebalance_timeout_ms: REBALANCE_MS,
        session_timeout_ms: SESSION_MS,
        protocol_type: "consumer".to_string(),
        protocols: protocols(&["range"], &["t"]),
        reason: None,
    }
}

fn sync(member_id: &str, generation: i32, assignments: &[(&str, &'static [u8])]) -> SyncRequest {
    SyncRequest {
        generation,
        member_id: member_id.to_string(),
        group_instance_id: None,
        protocol_type: Some("consumer".to_string()),
        protocol_name: Some("range".to_string()),
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from_static(a)))
            .collect(),
    }
}

fn ready<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    match reply {
        Reply::Ready(v) => v,
        Reply::Waiting(_) => panic!("expected an immediate answer"),
    }
}

fn waiting<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
    match reply {
        Reply::Waiting(rx) => rx,
        Reply::Ready(_) => panic!("expected a parked request"),
    }
}

fn answer<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
    rx.try_recv().ok()
}

/// Carries out the group's writes as if they were replicated (or failed with `error`).
fn store_all(g: &mut Group, error: ErrorCode, now: Instant) -> usize {
    let mut n = 0;
    loop {
        let effects = g.take_effects();
        if effects.is_empty() {
            return n;
        }
        for e in effects {
            n += 1;
            g.on_stored(e.then, error, now);
        }
    }
}

/// A new member's two-step join (KIP-394): returns its member id and parked join.
fn join_new(g: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinResult>) {
    join_new_like(g, join("", None), now)
}

fn join_new_like(
    g: &mut Group,
    template: JoinRequest,
    now: Instant,
) -> (String, oneshot::Receiver<JoinResult>) {
    let first = ready(g.join(template.clone(), now));
    assert_eq!(first.error, ErrorCode::MEMBER_ID_REQUIRED);
    assert!(first.member_id.starts_with("client-"));
    assert!(g.is_pending_member(&first.member_id));
    let rx = waiting(g.join(
        JoinRequest {
            member_id: first.member_id.clone(),
            ..template
        },
        now,
    ));
    (first.member_id, rx)
}

/// A Stable group with the given members (dynamic), at generation 1, after a full round.
fn stable_group(n: usize, now: Instant) -> (Group, Vec<String>) {
    let mut g = Group::new("g".into(), settings(0, 100));
    let mut joins = Vec::new();
    for _ in 0..n {
        joins.push(join_new(&mut g, now));
    }
    g.on_timer(now);
    let ids: Vec<String> = joins.iter().map(|(id, _)| id.clone()).collect();
    let mut leader = String::new();
    for (id, mut rx) in joins {
        let r = answer(&mut rx).expect("join answered");
        assert_eq!(r.error, ErrorCode::NONE);
        assert_eq!(r.generation, 1);
        leader = r.leader.clone();
        assert_eq!(r.member_id, id);
    }
    let assignments: Vec<(String, Bytes)> = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(id.clone())))
        .collect();
    let mut syncs = Vec::new();
    for id in &ids {
        if *id != leader {
            syncs.push(waiting(g.sync(sync(id, 1, &[]), now)));
        }
    }
    let mut leader_sync = sync(&leader, 1, &[]);
    leader_sync.assignments = assignments;
    syncs.push(waiting(g.sync(leader_sync, now)));
    assert_eq!(store_all(&mut g, ErrorCode::NONE, now), 1);
    assert_eq!(g.state(), GroupState::Stable);
    for mut rx in syncs {
        let r = answer(&mut rx).expect("sync answered");
        assert_eq!(r.error, ErrorCode::NONE);
        assert!(!r.assignment.is_empty());
    }
    (g, ids)
}

#[test]
fn first_member_joins_syncs_and_heartbeats() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let (id, mut rx) = join_new(&mut g, now);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert!(
        answer(&mut rx).is_none(),
        "the join waits for the (zero) initial delay"
    );
    g.on_timer(now);
    let r = answer(&mut rx).unwrap();
    assert_eq!(r.error, ErrorCode::NONE);
    assert_eq!(r.generation, 1);
    assert_eq!(r.leader, id);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(r.members.len(), 1);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    // Heartbeats are fine while the assignment is being computed.
    assert_eq!(g.heartbeat(&id, None, 1, now), ErrorCode::NONE);

    let mut leader_assignment = sync(&id, 1, &[]);
    leader_assignment.assignments = vec![
        (id.clone(), Bytes::from_static(b"assigned")),
        ("not-a-member".to_string(), Bytes::from_static(b"x")),
    ];
    let mut s2 = waiting(g.sync(leader_assignment, now));
    assert!(answer(&mut s2).is_none(), "answered only once stored");
    let effects = g.take_effects();
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].value.generation, 1);
    assert_eq!(effects[0].value.members.len(), 1);
    assert_eq!(&effects[0].value.members[0].assignment[..], b"assigned");
    for e in effects {
        g.on_stored(e.then, ErrorCode::NONE, now);
    }
    assert_eq!(g.state(), GroupState::Stable);
    let r = answer(&mut s2).unwrap();
    assert_eq!(
        (r.error, &r.assignment[..]),
        (ErrorCode::NONE, &b"assigned"[..])
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(g.heartbeat(&id, None, 1, now), ErrorCode::NONE);
    assert_eq!(
        g.heartbeat(&id, None, 0, now),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        g.heartbeat("nobody", None, 1, now),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    // A follower-style SyncGroup in Stable returns the current assignment at once.
    let r = ready(g.sync(sync(&id, 1, &[]), now));
    assert_eq!(&r.assignment[..], b"assigned");
}

#[test]
fn dynamic_members_without_kip394_join_directly() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let mut req = join("", None);
    req.require_known_member_id = false;
    let mut rx = waiting(g.join(req, now));
    g.on_timer(now);
    let r = answer(&mut rx).unwrap();
    assert_eq!(r.error, ErrorCode::NONE);
    assert!(r.member_id.starts_with("client-"));
}

#[test]
fn initial_delay_waits_and_extends_while_members_arrive() {
    let t0 = Instant::now();
    let mut g = Group::new("g".into(), settings(3000, 100));
    let (_, mut a) = join_new(&mut g, t0);
    g.on_timer(t0 + Duration::from_millis(2000));
    assert!(answer(&mut a).is_none());
    let (_, mut b) = join_new(&mut g, t0 + Duration::from_millis(2000));
    // The delay ends at 3 s, but a member arrived: it is extended by another delay.
    g.on_timer(t0 + Duration::from_millis(3000));
    assert!(answer(&mut a).is_none());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    g.on_timer(t0 + Duration::from_millis(6000));
    let ra = answer(&mut a).unwrap();
    let rb = answer(&mut b).unwrap();
    assert_eq!((ra.generation, rb.generation), (1, 1));
    assert_eq!(g.size(), 2);
    let leader_gets_members = if ra.leader == ra.member_id {
        ra.members.len()
    } else {
        rb.members.len()
    };
    assert_eq!(leader_gets_members, 2);
}

#[test]
fn new_member_triggers_rebalance_that_completes_when_all_rejoin() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(2, now);
    let (c, mut c_join) = join_new(&mut g, now);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&ids[0], None, 1, now),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    // Commits from the previous generation are still accepted while preparing.
    assert_eq!(g.validate_offset_commit(1, &ids[0], None, now), Ok(()));
    let mut a = waiting(g.join(join(&ids[0], None), now));
    assert!(answer(&mut a).is_none());
    let mut b = waiting(g.join(join(&ids[1], None), now));
    // Everyone is in: the join completes at once.
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    let results = [
        answer(&mut a).unwrap(),
        answer(&mut b).unwrap(),
        answer(&mut c_join).unwrap(),
    ];
    assert!(results
        .iter()
        .all(|r| r.generation == 2 && r.error == ErrorCode::NONE));
    assert_eq!(results.iter().filter(|r| !r.members.is_empty()).count(), 1);
    assert!(g.member(&c).is_some());
}

#[test]
fn members_that_miss_the_rebalance_timeout_are_dropped() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(2, now);
    // The first member rejoins (e.g. to trigger a rebalance); the second never does.
    let mut a = waiting(g.join(
        JoinRequest {
            protocols: protocols(&["range"], &["t", "u"]),
            ..join(&ids[0], None)
        },
        now,
    ));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let later = now + Duration::from_millis(REBALANCE_MS as u64);
    // Keep the first member's session alive; the second's expiry is also due by then.
    g.on_timer(later);
    let r = answer(&mut a).unwrap();
    assert_eq!((r.error, r.generation), (ErrorCode::NONE, 2));
    assert_eq!(r.leader, ids[0]);
    assert_eq!(g.size(), 1);
    assert!(g.member(&ids[1]).is_none());
}

#[test]
fn expired_sessions_remove_members_and_rebalance() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(2, now);
    let half = now + Duration::from_millis(SESSION_MS as u64 / 2);
    assert_eq!(g.heartbeat(&ids[0], None, 1, half), ErrorCode::NONE);
    g.on_timer(now + Duration::from_millis(SESSION_MS as u64 + 1));
    assert!(g.member(&ids[1]).is_none());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&ids[0], None, 1, half),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        g.heartbeat(&ids[1], None, 1, half),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn members_waiting_in_a_rebalance_do_not_expire() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(2, now);
    let mut a = waiting(g.join(join(&ids[0], None), now));
    // ids[1] heartbeats along, but has not rejoined; ids[0] is parked in JoinGroup.
    let t = now + Duration::from_millis(SESSION_MS as u64 + 1);
    assert_eq!(
        g.heartbeat(&ids[1], None, 1, t - Duration::from_millis(2)),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    g.on_timer(t);
    assert!(g.member(&ids[0]).is_some(), "a parked member is alive");
    assert!(answer(&mut a).is_none());
    let mut b = waiting(g.join(join(&ids[1], None), t));
    assert_eq!(answer(&mut a).map(|r| r.generation), Some(2));
    assert_eq!(answer(&mut b).map(|r| r.generation), Some(2));
}

#[test]
fn last_member_leaving_empties_the_group() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(1, now);
    let errors = g
        .leave(
            &[LeavingMember {
                member_id: ids[0].clone(),
                group_instance_id: None,
                reason: Some("closing".into()),
            }],
            now,
        )
        .unwrap();
    assert_eq!(errors, vec![ErrorCode::NONE]);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation(), 2);
    let effects = g.take_effects();
    assert_eq!(effects.len(), 1);
    assert!(effects[0].value.members.is_empty());
    assert_eq!(effects[0].value.protocol, None);
    assert_eq!(
        g.leave(
            &[LeavingMember {
                member_id: "unknown".into(),
                group_instance_id: None,
                reason: None
            }],
            now
        ),
        Ok(vec![ErrorCode::UNKNOWN_MEMBER_ID])
    );
    // An empty group accepts standalone commits and refuses member heartbeats.
    assert_eq!(g.validate_offset_commit(-1, "", None, now), Ok(()));
    assert_eq!(
        g.heartbeat(&ids[0], None, 2, now),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn leaving_member_during_rebalance_completes_the_join() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(2, now);
    let mut a = waiting(g.join(join(&ids[0], None), now));
    let errors = g
        .leave(
            &[LeavingMember {
                member_id: ids[1].clone(),
                group_instance_id: None,
                reason: None,
            }],
            now,
        )
        .unwrap();
    assert_eq!(errors, vec![ErrorCode::NONE]);
    let r = answer(&mut a).unwrap();
    assert_eq!((r.generation, r.members.len()), (2, 1));
}

#[test]
fn pending_member_ids_lapse_after_the_session_timeout() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let first = ready(g.join(join("", None), now));
    assert!(g.is_pending_member(&first.member_id));
    assert_eq!(
        g.next_deadline(),
        Some(now + Duration::from_millis(SESSION_MS as u64))
    );
    g.on_timer(now + Duration::from_millis(SESSION_MS as u64));
    assert!(!g.is_pending_member(&first.member_id));
    // Rejoining with the lapsed id is refused.
    let r = ready(g.join(join(&first.member_id, None), now));
    assert_eq!(r.error, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn static_member_rejoins_without_a_rebalance() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let mut a = waiting(g.join(join("", Some("instance-a")), now));
    let mut b = waiting(g.join(join("", Some("instance-b")), now));
    g.on_timer(now);
    let ra = answer(&mut a).unwrap();
    let rb = answer(&mut b).unwrap();
    assert!(ra.member_id.starts_with("instance-a-"));
    let leader = ra.leader.clone();
    let mut leader_sync = sync(&leader, 1, &[]);
    leader_sync.group_instance_id = Some(
        if leader == ra.member_id {
            "instance-a"
        } else {
            "instance-b"
        }
        .into(),
    );
    leader_sync.assignments = vec![
        (ra.member_id.clone(), Bytes::from_static(b"A")),
        (rb.member_id.clone(), Bytes::from_static(b"B")),
    ];
    let _ = g.sync(leader_sync, now);
    store_all(&mut g, ErrorCode::NONE, now);
    assert_eq!(g.state(), GroupState::Stable);

    // instance-a restarts: it joins with no member id but the same instance id and metadata.
    let mut rejoin = waiting(g.join(join("", Some("instance-a")), now));
    assert_eq!(g.state(), GroupState::Stable);
    let effects = g.take_effects();
    assert_eq!(effects.len(), 1, "the new member id is persisted");
    for e in effects {
        g.on_stored(e.then, ErrorCode::NONE, now);
    }
    let r = answer(&mut rejoin).unwrap();
    assert_eq!(r.error, ErrorCode::NONE);
    assert_ne!(r.member_id, ra.member_id);
    assert_eq!(r.generation, 1);
    assert!(r.members.is_empty());
    // Before JoinGroup v9 the old leader id is returned so the member does not re-assign.
    assert_eq!(r.leader, leader);
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.static_member_id("instance-a"), Some(r.member_id.as_str()));
    // It keeps its assignment.
    let s = ready(g.sync(
        SyncRequest {
            group_instance_id: Some("instance-a".into()),
            ..sync(&r.member_id, 1, &[])
        },
        now,
    ));
    assert_eq!(&s.assignment[..], b"A");
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(&ra.member_id, Some("instance-a"), 1, now),
        ErrorCode::FENCED_INSTANCE_ID
    );
    let fenced = ready(g.join(join(&ra.member_id, Some("instance-a")), now));
    assert_eq!(fenced.error, ErrorCode::FENCED_INSTANCE_ID);
    assert_eq!(
        g.heartbeat(&r.member_id, Some("instance-a"), 1, now),
        ErrorCode::NONE
    );
    assert_eq!(
        g.heartbeat(&r.member_id, Some("instance-x"), 1, now),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn static_leader_with_skip_assignment_learns_it_leads() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let mut a = waiting(g.join(join("", Some("i")), now));
    g.on_timer(now);
    let ra = answer(&mut a).unwrap();
    let _ = g.sync(
        SyncRequest {
            group_instance_id: Some("i".into()),
            ..sync(&ra.member_id, 1, &[])
        },
        now,
    );
    store_all(&mut g, ErrorCode::NONE, now);
    let mut req = join("", Some("i"));
    req.supports_skip_assignment = true;
    let mut rejoin = waiting(g.join(req, now));
    store_all(&mut g, ErrorCode::NONE, now);
    let r = answer(&mut rejoin).unwrap();
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn failed_static_rejoin_store_reverts_the_member_id() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let mut a = waiting(g.join(join("", Some("i")), now));
    g.on_timer(now);
    let ra = answer(&mut a).unwrap();
    let _ = g.sync(
        SyncRequest {
            group_instance_id: Some("i".into()),
            ..sync(&ra.member_id, 1, &[])
        },
        now,
    );
    store_all(&mut g, ErrorCode::NONE, now);
    let mut rejoin = waiting(g.join(join("", Some("i")), now));
    store_all(&mut g, ErrorCode::NOT_COORDINATOR, now);
    let r = answer(&mut rejoin).unwrap();
    assert_eq!(r.error, ErrorCode::NOT_COORDINATOR);
    assert_eq!(g.static_member_id("i"), Some(ra.member_id.as_str()));
    assert_eq!(
        g.heartbeat(&ra.member_id, Some("i"), 1, now),
        ErrorCode::NONE
    );
}

#[test]
fn static_member_with_changed_protocols_triggers_rebalance() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let mut a = waiting(g.join(join("", Some("i")), now));
    g.on_timer(now);
    let ra = answer(&mut a).unwrap();
    let _ = g.sync(
        SyncRequest {
            group_instance_id: Some("i".into()),
            ..sync(&ra.member_id, 1, &[])
        },
        now,
    );
    store_all(&mut g, ErrorCode::NONE, now);
    let mut req = join("", Some("i"));
    req.protocols = protocols(&["roundrobin", "range"], &["t"]);
    let mut rejoin = waiting(g.join(req, now));
    // The vote now picks another protocol: a rebalance, which completes at once (sole member).
    let r = answer(&mut rejoin).unwrap();
    assert_eq!(
        (r.generation, r.protocol_name.as_deref()),
        (2, Some("roundrobin"))
    );
}

#[test]
fn protocols_must_be_compatible() {
    let now = Instant::now();
    let (mut g, _) = stable_group(1, now);
    let mut other_type = join("", None);
    other_type.require_known_member_id = false;
    other_type.protocol_type = "connect".into();
    assert_eq!(
        ready(g.join(other_type, now)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut no_common = join("", None);
    no_common.protocols = protocols(&["roundrobin"], &["t"]);
    assert_eq!(
        ready(g.join(no_common, now)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut empty = Group::new("e".into(), settings(0, 100));
    let mut none = join("", None);
    none.protocols.clear();
    assert_eq!(
        ready(empty.join(none, now)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn protocol_is_chosen_by_vote() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let prefs: [&[&str]; 3] = [
        &["range", "roundrobin"],
        &["roundrobin", "range"],
        &["roundrobin", "range", "sticky"],
    ];
    let mut rxs = Vec::new();
    for p in prefs {
        let mut req = join("", None);
        req.require_known_member_id = false;
        req.protocols = protocols(p, &["t"]);
        rxs.push(waiting(g.join(req, now)));
    }
    g.on_timer(now);
    for mut rx in rxs {
        assert_eq!(
            answer(&mut rx).unwrap().protocol_name.as_deref(),
            Some("roundrobin")
        );
    }
}

#[test]
fn group_max_size_is_enforced() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 1));
    let (_, mut a) = join_new(&mut g, now);
    g.on_timer(now);
    assert!(answer(&mut a).is_some());
    let mut req = join("", None);
    req.require_known_member_id = false;
    let r = ready(g.join(req, now));
    assert_eq!(
        (r.error, r.member_id.as_str()),
        (ErrorCode::GROUP_MAX_SIZE_REACHED, "")
    );
}

#[test]
fn sync_checks_member_generation_and_protocol() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(1, now);
    assert_eq!(
        ready(g.sync(sync("nobody", 1, &[]), now)).error,
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    assert_eq!(
        ready(g.sync(sync(&ids[0], 7, &[]), now)).error,
        ErrorCode::ILLEGAL_GENERATION
    );
    let mut wrong = sync(&ids[0], 1, &[]);
    wrong.protocol_name = Some("roundrobin".into());
    assert_eq!(
        ready(g.sync(wrong, now)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    let mut wrong = sync(&ids[0], 1, &[]);
    wrong.protocol_type = Some("connect".into());
    assert_eq!(
        ready(g.sync(wrong, now)).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
    // A (v0-v4) SyncGroup without protocol fields is fine.
    let mut old = sync(&ids[0], 1, &[]);
    old.protocol_type = None;
    old.protocol_name = None;
    assert_eq!(ready(g.sync(old, now)).error, ErrorCode::NONE);
    let (_, _join) = join_new(&mut g, now);
    assert_eq!(
        ready(g.sync(sync(&ids[0], 1, &[]), now)).error,
        ErrorCode::REBALANCE_IN_PROGRESS
    );
}

#[test]
fn failed_assignment_store_sends_members_back_to_rejoin() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    let (a, mut ja) = join_new(&mut g, now);
    let (b, mut jb) = join_new(&mut g, now);
    g.on_timer(now);
    let leader = answer(&mut ja).unwrap().leader;
    answer(&mut jb).unwrap();
    let follower = if leader == a { b.clone() } else { a.clone() };
    let mut fs = waiting(g.sync(sync(&follower, 1, &[]), now));
    let mut ls = waiting(g.sync(sync(&leader, 1, &[(a.as_str(), b"x")]), now));
    store_all(&mut g, ErrorCode::REBALANCE_IN_PROGRESS, now);
    assert_eq!(
        answer(&mut fs).unwrap().error,
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(
        answer(&mut ls).unwrap().error,
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn members_that_do_not_sync_in_time_are_removed() {
    let now = Instant::now();
    let mut g = Group::new("g".into(), settings(0, 100));
    // A sync timeout (the rebalance timeout) shorter than the session timeout.
    let quick = JoinRequest {
        rebalance_timeout_ms: 5_000,
        ..join("", None)
    };
    let (a, mut ja) = join_new_like(&mut g, quick.clone(), now);
    let (b, mut jb) = join_new_like(&mut g, quick, now);
    g.on_timer(now);
    let leader = answer(&mut ja).unwrap().leader;
    answer(&mut jb).unwrap();
    let follower = if leader == a { b.clone() } else { a.clone() };
    // Only the follower syncs; the leader never sends its assignment.
    let mut fs = waiting(g.sync(sync(&follower, 1, &[]), now));
    g.on_timer(now + Duration::from_millis(4_999));
    assert!(g.member(&leader).is_some());
    g.on_timer(now + Duration::from_millis(5_000));
    assert!(g.member(&leader).is_none());
    assert!(g.member(&follower).is_some());
    assert_eq!(
        answer(&mut fs).unwrap().error,
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn offset_commits_are_validated_like_kafka() {
    let now = Instant::now();
    let mut empty = Group::new("g".into(), settings(0, 100));
    assert_eq!(empty.validate_offset_commit(-1, "", None, now), Ok(()));
    assert_eq!(
        empty.validate_offset_commit(3, "m", None, now),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    let (mut g, ids) = stable_group(1, now);
    assert_eq!(g.validate_offset_commit(1, &ids[0], None, now), Ok(()));
    assert_eq!(
        g.validate_offset_commit(0, &ids[0], None, now),
        Err(ErrorCode::ILLEGAL_GENERATION)
    );
    assert_eq!(
        g.validate_offset_commit(1, "other", None, now),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        g.validate_offset_commit(-1, "", None, now),
        Err(ErrorCode::UNKNOWN_MEMBER_ID)
    );
    // CompletingRebalance: the member must sync first.
    let (_, mut j) = join_new(&mut g, now);
    let _ = g.join(join(&ids[0], None), now);
    assert!(answer(&mut j).is_some());
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(
        g.validate_offset_commit(2, &ids[0], None, now),
        Err(ErrorCode::REBALANCE_IN_PROGRESS)
    );
}

#[test]
fn unloading_answers_parked_requests_with_not_coordinator() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(2, now);
    let mut a = waiting(g.join(join(&ids[0], None), now));
    g.unload();
    assert_eq!(answer(&mut a).unwrap().error, ErrorCode::NOT_COORDINATOR);
    assert_eq!(g.state(), GroupState::Dead);
    assert_eq!(
        g.heartbeat(&ids[1], None, 1, now),
        ErrorCode::COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(g.next_deadline(), None);
}

#[test]
fn a_group_read_back_from_its_record_keeps_working_without_a_rebalance() {
    let now = Instant::now();
    let (g, ids) = stable_group(2, now);
    let assignment: HashMap<String, Bytes> = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(id.clone())))
        .collect();
    let value = g.metadata_value(&assignment);
    let encoded = value.encode().unwrap();
    let decoded = GroupMetadataValue::decode(&encoded).unwrap();
    let mut loaded = Group::loaded(
        "g".into(),
        Some(decoded),
        GroupOffsets::default(),
        settings(0, 100),
        now,
    );
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation(), 1);
    assert_eq!(loaded.protocol_name(), Some("range"));
    assert_eq!(loaded.leader(), g.leader());
    for id in &ids {
        assert_eq!(loaded.heartbeat(id, None, 1, now), ErrorCode::NONE);
        let s = ready(loaded.sync(sync(id, 1, &[]), now));
        assert_eq!(s.assignment, Bytes::from(id.clone()));
        assert_eq!(loaded.validate_offset_commit(1, id, None, now), Ok(()));
    }
    assert!(loaded.is_subscribed_to("t"));
    assert!(!loaded.is_subscribed_to("u"));
    // Sessions go on after the load: a member that falls silent expires one session later.
    assert_eq!(
        loaded.heartbeat(&ids[0], None, 1, now + Duration::from_millis(1)),
        ErrorCode::NONE
    );
    loaded.on_timer(now + Duration::from_millis(SESSION_MS as u64));
    assert!(loaded.member(&ids[1]).is_none());
    assert_eq!(loaded.state(), GroupState::PreparingRebalance);
}

#[test]
fn offsets_expire_under_kafkas_rules() {
    let now = Instant::now();
    let tp = |t: &str| TopicPartition {
        topic: t.into(),
        partition: 0,
    };
    let committed = |ts: i64| super::super::offsets::CommittedOffset {
        offset: 1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: ts,
        expire_timestamp_ms: None,
        record_offset: 0,
    };
    // A stable consumer group keeps offsets of subscribed topics, loses the others.
    let (mut g, _) = stable_group(1, now);
    g.offsets_mut().put_if_newer(tp("t"), committed(0));
    g.offsets_mut().put_if_newer(tp("old"), committed(0));
    let expired = g.remove_expired_offsets(10_000, 1000);
    assert_eq!(expired, vec![tp("old")]);
    // A standalone (protocol-less) group expires by commit time.
    let mut simple = Group::new("s".into(), settings(0, 100));
    simple.offsets_mut().put_if_newer(tp("t"), committed(9_500));
    simple.offsets_mut().put_if_newer(tp("u"), committed(0));
    assert_eq!(simple.remove_expired_offsets(10_000, 1000), vec![tp("u")]);
    // An empty consumer group expires everything once empty for the retention period.
    let mut emptied = Group::loaded(
        "e".into(),
        Some(GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: None,
            leader: None,
            current_state_timestamp: 5_000,
            members: vec![],
        }),
        GroupOffsets::default(),
        settings(0, 100),
        now,
    );
    emptied
        .offsets_mut()
        .put_if_newer(tp("t"), committed(9_999));
    assert!(emptied.remove_expired_offsets(5_500, 1000).is_empty());
    assert_eq!(emptied.remove_expired_offsets(6_000, 1000), vec![tp("t")]);
    assert!(!emptied.offsets().has_offsets());
}

#[test]
fn describe_shows_metadata_only_when_stable() {
    let now = Instant::now();
    let (mut g, ids) = stable_group(1, now);
    let d = g.describe();
    assert_eq!(
        (d.state, d.protocol_type.as_str(), d.protocol.as_str()),
        (GroupState::Stable, "consumer", "range")
    );
    assert_eq!(d.members[0].member_id, ids[0]);
    assert!(!d.members[0].metadata.is_empty());
    assert_eq!(d.members[0].client_host, "/127.0.0.1");
    let _ = join_new(&mut g, now);
    let d = g.describe();
    assert_eq!(
        (d.state, d.protocol.as_str()),
        (GroupState::PreparingRebalance, "")
    );
    assert!(d
        .members
        .iter()
        .all(|m| m.metadata.is_empty() && m.assignment.is_empty()));
}

#[test]
fn bad_subscriptions_leave_topics_unknown() {
    assert_eq!(
        parse_subscription(&subscription(&["a", "b"])),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(parse_subscription(&Bytes::from_static(&[0])), None);
    assert_eq!(
        parse_subscription(&Bytes::from_static(&[0xff, 0xff, 0, 0])),
        None
    );
    assert_eq!(
        parse_subscription(&Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])),
        None
    );
}
