//! Tests of the group manager against real `__consumer_offsets` partitions (storage logs in a
//! temporary directory, led by this node): loading, the protocol with timers, persistence of
//! offsets and group metadata across a reload, deletion and expiry.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage::{CleanupPolicy, Log, LogConfig, TopicPartition};
use uuid::Uuid;

use super::*;
use crate::coordinator::group::GroupSettings;
use crate::coordinator::replies::Reply;
use crate::coordinator::OFFSETS_TOPIC;
use crate::replica::partition::Assignment;

fn config(initial_delay_ms: u64, retention_ms: i64) -> Arc<CoordinatorConfig> {
    Arc::new(CoordinatorConfig {
        node_id: 0,
        offsets_topic_partitions: 1,
        offsets_topic_replication_factor: 1,
        offsets_topic_segment_bytes: 1 << 20,
        offsets_retention_ms: retention_ms,
        offsets_retention_check_interval: Duration::from_secs(600),
        offsets_commit_timeout: Duration::from_secs(5),
        offset_metadata_max_bytes: 16,
        group_min_session_timeout_ms: 10,
        group_max_session_timeout_ms: 60_000,
        group: GroupSettings {
            initial_rebalance_delay_ms: initial_delay_ms,
            max_size: 100,
        },
        inter_broker_listener: "PLAINTEXT".into(),
    })
}

/// `__consumer_offsets-0` in `dir`, led by node 0 as the only replica.
fn open_partition(dir: &Path) -> Arc<Partition> {
    let tp = TopicPartition {
        topic: OFFSETS_TOPIC.into(),
        partition: 0,
    };
    let log_config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(dir.join(tp.to_string()), tp.clone(), log_config).unwrap());
    let assignment = Assignment {
        leader: 0,
        leader_epoch: 1,
        partition_epoch: 1,
        replicas: vec![0],
        isr: vec![0],
    };
    let partition = Arc::new(Partition::new(
        tp,
        Uuid::new_v4(),
        0,
        log,
        assignment.clone(),
        1,
    ));
    partition.become_leader(assignment, now_ms()).unwrap();
    partition
}

async fn active_manager(
    config: Arc<CoordinatorConfig>,
    partition: Arc<Partition>,
) -> Arc<GroupManager> {
    let manager = GroupManager::new(config, Arc::new(Metrics::new()));
    manager.set_offsets_partitions(1);
    manager.elected(0, 1, partition);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !manager.is_active(0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("partition loads");
    manager
}

fn join_request(member_id: &str, session_ms: i32) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        require_known_member_id: false,
        supports_skip_assignment: false,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 2_000,
        session_timeout_ms: session_ms,
        protocol_type: "consumer".into(),
        protocols: vec![(
            "range".into(),
            Bytes::from_static(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]),
        )],
        reason: None,
    }
}

async fn wait<T: std::fmt::Debug>(reply: Reply<T>) -> T {
    tokio::time::timeout(
        Duration::from_secs(10),
        reply.wait(|| panic!("reply dropped")),
    )
    .await
    .expect("answered in time")
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(TopicPartition, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        member_id: member.into(),
        group_instance_id: None,
        generation,
        retention_ms: None,
        entries: offsets
            .iter()
            .map(|(tp, o)| OffsetCommitEntry {
                partition: tp.clone(),
                offset: *o,
                leader_epoch: 3,
                metadata: Some("m".into()),
            })
            .collect(),
    }
}

/// One member joins, the leader's assignment is stored, the group is Stable.
async fn stable_single_member(
    manager: &GroupManager,
    group: &str,
    session_ms: i32,
) -> (String, i32) {
    let joined = wait(manager.join_group(group, join_request("", session_ms))).await;
    assert_eq!(joined.error, ErrorCode::NONE);
    assert_eq!(joined.leader, joined.member_id);
    let synced = wait(manager.sync_group(
        group,
        SyncRequest {
            generation: joined.generation,
            member_id: joined.member_id.clone(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(joined.member_id.clone(), Bytes::from_static(b"assignment"))],
        },
    ))
    .await;
    assert_eq!(synced.error, ErrorCode::NONE);
    assert_eq!(&synced.assignment[..], b"assignment");
    (joined.member_id, joined.generation)
}

#[tokio::test]
async fn groups_are_loading_until_the_partition_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let manager = GroupManager::new(config(0, 60_000), Arc::new(Metrics::new()));
    manager.set_offsets_partitions(1);
    assert_eq!(
        manager.heartbeat("g", "m", None, 1),
        ErrorCode::NOT_COORDINATOR
    );
    manager.elected(0, 1, open_partition(dir.path()));
    // The load runs in the background; nothing has been awaited yet.
    let r = wait(manager.join_group("g", join_request("", 1000))).await;
    assert_eq!(r.error, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
    assert_eq!(
        manager.fetch_offsets("g", None).unwrap_err(),
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    );
    // Heartbeats are answered blindly and SyncGroup asks for a rejoin while loading.
    assert_eq!(manager.heartbeat("g", "m", None, 1), ErrorCode::NONE);
    let s = wait(manager.sync_group(
        "g",
        SyncRequest {
            generation: 1,
            member_id: "m".into(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![],
        },
    ))
    .await;
    assert_eq!(s.error, ErrorCode::REBALANCE_IN_PROGRESS);
    let (error, _) = manager.list_groups();
    assert_eq!(error, ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
}

#[tokio::test]
async fn offsets_and_groups_survive_a_coordinator_change() {
    let dir = tempfile::tempdir().unwrap();
    let partition = open_partition(dir.path());
    let manager = active_manager(config(0, 60_000), partition.clone()).await;

    // A standalone consumer commits (generation -1).
    let errors = manager
        .commit_offsets(commit(
            "standalone",
            "",
            -1,
            &[(tp("t", 0), 42), (tp("t", 1), 7)],
        ))
        .await;
    assert_eq!(errors, vec![ErrorCode::NONE, ErrorCode::NONE]);
    // A group member commits with its generation.
    let (member, generation) = stable_single_member(&manager, "group", 30_000).await;
    let errors = manager
        .commit_offsets(commit("group", &member, generation, &[(tp("t", 0), 100)]))
        .await;
    assert_eq!(errors, vec![ErrorCode::NONE]);
    assert_eq!(
        manager
            .commit_offsets(commit("group", &member, generation + 5, &[(tp("t", 0), 1)]))
            .await,
        vec![ErrorCode::ILLEGAL_GENERATION]
    );
    assert_eq!(
        manager
            .commit_offsets(commit("group", "stranger", generation, &[(tp("t", 0), 1)]))
            .await,
        vec![ErrorCode::UNKNOWN_MEMBER_ID]
    );
    // Commits for a group that does not exist with a generation are refused.
    assert_eq!(
        manager
            .commit_offsets(commit("nobody", "m", 3, &[(tp("t", 0), 1)]))
            .await,
        vec![ErrorCode::ILLEGAL_GENERATION]
    );
    let mut too_long = commit("standalone", "", -1, &[(tp("t", 2), 1)]);
    too_long.entries[0].metadata = Some("x".repeat(17));
    assert_eq!(
        manager.commit_offsets(too_long).await,
        vec![ErrorCode::OFFSET_METADATA_TOO_LARGE]
    );

    let fetched = manager
        .fetch_offsets("standalone", Some(&[tp("t", 0), tp("t", 9)]))
        .unwrap();
    assert_eq!(
        fetched[0]
            .1
            .as_ref()
            .map(|c| (c.offset, c.leader_epoch, c.metadata.as_str())),
        Some((42, 3, "m"))
    );
    assert_eq!(fetched[1].1, None);
    assert_eq!(manager.fetch_offsets("standalone", None).unwrap().len(), 2);
    assert_eq!(
        manager.fetch_offsets("unknown-group", None).unwrap(),
        vec![]
    );

    // Leadership moves away: this broker stops answering for the groups.
    manager.resigned(0);
    assert_eq!(
        manager.fetch_offsets("group", None).unwrap_err(),
        ErrorCode::NOT_COORDINATOR
    );
    assert_eq!(
        manager.heartbeat("group", &member, None, generation),
        ErrorCode::NOT_COORDINATOR
    );
    drop(manager);
    partition.log().close().unwrap();
    drop(partition);

    // A new coordinator (another broker, or this one restarted) replays the partition.
    let manager = active_manager(config(0, 60_000), open_partition(dir.path())).await;
    let fetched = manager.fetch_offsets("standalone", None).unwrap();
    let offsets: Vec<(TopicPartition, i64)> = fetched
        .into_iter()
        .map(|(tp, c)| (tp, c.map(|c| c.offset).unwrap_or(-1)))
        .collect();
    assert_eq!(offsets, vec![(tp("t", 0), 42), (tp("t", 1), 7)]);
    assert_eq!(
        manager.fetch_offsets("group", Some(&[tp("t", 0)])).unwrap()[0]
            .1
            .as_ref()
            .map(|c| c.offset),
        Some(100)
    );
    // The member, its generation and its assignment are known: it carries on without a rebalance.
    let described = manager.describe_group("group").unwrap().unwrap();
    assert_eq!(described.state, GroupState::Stable);
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.members[0].member_id, member);
    assert_eq!(&described.members[0].assignment[..], b"assignment");
    assert_eq!(
        manager.heartbeat("group", &member, None, generation),
        ErrorCode::NONE
    );
    assert_eq!(
        manager
            .commit_offsets(commit("group", &member, generation, &[(tp("t", 0), 101)]))
            .await,
        vec![ErrorCode::NONE]
    );
    let (error, listed) = manager.list_groups();
    assert_eq!(error, ErrorCode::NONE);
    let names: Vec<(&str, GroupState)> = listed
        .iter()
        .map(|g| (g.group_id.as_str(), g.state))
        .collect();
    assert_eq!(
        names,
        vec![
            ("group", GroupState::Stable),
            ("standalone", GroupState::Empty)
        ]
    );
}

#[tokio::test]
async fn sessions_expire_on_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let manager = active_manager(config(0, 60_000), open_partition(dir.path())).await;
    let (member, generation) = stable_single_member(&manager, "g", 200).await;
    assert_eq!(
        manager.heartbeat("g", &member, None, generation),
        ErrorCode::NONE
    );
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if manager
                .describe_group("g")
                .unwrap()
                .is_some_and(|d| d.state == GroupState::Empty)
            {
                break;
            }
        }
    })
    .await
    .expect("the silent member expires");
    assert_eq!(
        manager.heartbeat("g", &member, None, generation),
        ErrorCode::UNKNOWN_MEMBER_ID
    );
}

#[tokio::test]
async fn a_second_member_rebalances_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let manager = active_manager(config(0, 60_000), open_partition(dir.path())).await;
    let (first, generation) = stable_single_member(&manager, "g", 30_000).await;
    let second = manager.join_group("g", join_request("", 30_000));
    assert_eq!(
        manager.heartbeat("g", &first, None, generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    let first_rejoin = wait(manager.join_group("g", join_request(&first, 30_000))).await;
    let second = wait(second).await;
    assert_eq!(
        (first_rejoin.generation, second.generation),
        (generation + 1, generation + 1)
    );
    assert_eq!(first_rejoin.members.len() + second.members.len(), 2);
}

#[tokio::test]
async fn deleting_groups_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let partition = open_partition(dir.path());
    let manager = active_manager(config(0, 60_000), partition.clone()).await;
    let (member, generation) = stable_single_member(&manager, "g", 30_000).await;
    assert_eq!(
        manager
            .commit_offsets(commit(
                "g",
                &member,
                generation,
                &[(tp("t", 0), 5), (tp("u", 0), 6)]
            ))
            .await,
        vec![ErrorCode::NONE, ErrorCode::NONE]
    );
    assert_eq!(manager.delete_group("g"), ErrorCode::NON_EMPTY_GROUP);
    assert_eq!(
        manager.delete_group("missing"),
        ErrorCode::GROUP_ID_NOT_FOUND
    );
    // The member subscribes to "t" only: its offsets stay, "u"'s may go.
    assert_eq!(
        manager
            .delete_offsets("g", &[tp("t", 0), tp("u", 0)])
            .unwrap(),
        vec![ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC, ErrorCode::NONE]
    );
    assert_eq!(
        manager.delete_offsets("missing", &[tp("t", 0)]),
        Err(ErrorCode::GROUP_ID_NOT_FOUND)
    );
    let left = manager.leave_group(
        "g",
        &[LeavingMember {
            member_id: member.clone(),
            group_instance_id: None,
            reason: None,
        }],
    );
    assert_eq!(left, Ok(vec![ErrorCode::NONE]));
    assert_eq!(
        manager.describe_group("g").unwrap().map(|d| d.state),
        Some(GroupState::Empty)
    );
    assert_eq!(manager.delete_group("g"), ErrorCode::NONE);
    assert_eq!(manager.describe_group("g").unwrap(), None);
    assert_eq!(
        manager.fetch_offsets("g", Some(&[tp("t", 0)])).unwrap()[0].1,
        None
    );

    // After a reload the group is still gone.
    manager.resigned(0);
    partition.log().close().unwrap();
    drop(partition);
    let manager = active_manager(config(0, 60_000), open_partition(dir.path())).await;
    assert_eq!(manager.describe_group("g").unwrap(), None);
    assert_eq!(manager.fetch_offsets("g", None).unwrap(), vec![]);
}

#[tokio::test]
async fn expired_offsets_and_groups_are_removed_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let partition = open_partition(dir.path());
    let manager = active_manager(config(0, 1_000), partition.clone()).await;
    assert_eq!(
        manager
            .commit_offsets(commit("standalone", "", -1, &[(tp("t", 0), 1)]))
            .await,
        vec![ErrorCode::NONE]
    );
    manager.expire_offsets(now_ms());
    assert_eq!(manager.fetch_offsets("standalone", None).unwrap().len(), 1);
    manager.expire_offsets(now_ms() + 1_000);
    assert_eq!(manager.fetch_offsets("standalone", None).unwrap(), vec![]);
    assert_eq!(manager.describe_group("standalone").unwrap(), None);
    manager.resigned(0);
    partition.log().close().unwrap();
    drop(partition);
    let manager = active_manager(config(0, 1_000), open_partition(dir.path())).await;
    assert_eq!(manager.fetch_offsets("standalone", None).unwrap(), vec![]);
}

#[tokio::test]
async fn offsets_of_deleted_topics_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let partition = open_partition(dir.path());
    let manager = active_manager(config(0, 60_000), partition.clone()).await;
    assert_eq!(
        manager
            .commit_offsets(commit("only-gone", "", -1, &[(tp("gone", 0), 1)]))
            .await,
        vec![ErrorCode::NONE]
    );
    assert_eq!(
        manager
            .commit_offsets(commit(
                "mixed",
                "",
                -1,
                &[(tp("gone", 1), 1), (tp("kept", 0), 2)]
            ))
            .await,
        vec![ErrorCode::NONE, ErrorCode::NONE]
    );
    manager.remove_deleted_partitions(|tp| tp.topic != "gone");
    assert_eq!(manager.describe_group("only-gone").unwrap(), None);
    let mixed: Vec<TopicPartition> = manager
        .fetch_offsets("mixed", None)
        .unwrap()
        .into_iter()
        .map(|(tp, _)| tp)
        .collect();
    assert_eq!(mixed, vec![tp("kept", 0)]);
    // The tombstones make it permanent.
    manager.resigned(0);
    partition.log().close().unwrap();
    drop(partition);
    let manager = active_manager(config(0, 60_000), open_partition(dir.path())).await;
    assert_eq!(manager.fetch_offsets("only-gone", None).unwrap(), vec![]);
    assert_eq!(manager.fetch_offsets("mixed", None).unwrap().len(), 1);
}
