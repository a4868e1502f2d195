//! The task that fires a group's deadlines (member sessions, pending member ids, the join and
//! sync phases): it sleeps until the group's next deadline or until woken because deadlines
//! changed, and ends when the group is dead.

use std::sync::Arc;

use tokio::time::Instant;

use super::shard::{GroupHandle, Shard};
use super::state::GroupState;

pub fn spawn(shard: Arc<Shard>, handle: Arc<GroupHandle>) {
    tokio::spawn(run(shard, handle));
}

async fn run(shard: Arc<Shard>, handle: Arc<GroupHandle>) {
    loop {
        let next = {
            let group = handle.lock();
            if group.state() == GroupState::Dead {
                return;
            }
            group.next_deadline()
        };
        match next {
            Some(at) if at <= Instant::now() => {}
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = handle.woken() => continue,
                }
            }
            None => {
                handle.woken().await;
                continue;
            }
        }
        let mut group = handle.lock();
        if group.state() == GroupState::Dead {
            return;
        }
        group.on_timer(Instant::now());
        shard.apply_effects(&handle, &mut group);
        let dead = group.state() == GroupState::Dead;
        drop(group);
        if dead {
            shard.remove_if_dead(&handle);
            return;
        }
    }
}
