//! The states of a classic consumer group and the transitions Kafka allows between them.
//!
//! - `Empty`: no members (offsets may still be stored); a join starts a rebalance.
//! - `PreparingRebalance`: waiting for members to (re)join; heartbeats answer REBALANCE_IN_PROGRESS.
//! - `CompletingRebalance`: joined; waiting for the leader's assignment in SyncGroup.
//! - `Stable`: assignment handed out; members heartbeat.
//! - `Dead`: removed (deleted, expired or unloaded); nothing more happens to it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name for the state, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Whether a group may move from `self` to `next`.
    pub fn can_transition_to(self, next: GroupState) -> bool {
        use GroupState::*;
        match next {
            PreparingRebalance => matches!(self, Stable | CompletingRebalance | Empty),
            CompletingRebalance => self == PreparingRebalance,
            Stable => self == CompletingRebalance,
            Empty => self == PreparingRebalance,
            Dead => true,
        }
    }

    /// Whether a rebalance may start from this state.
    pub fn can_rebalance(self) -> bool {
        self.can_transition_to(GroupState::PreparingRebalance)
    }

    /// Case-insensitive match against a ListGroups state filter entry.
    pub fn matches_filter(self, filter: &str) -> bool {
        self.name().eq_ignore_ascii_case(filter)
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_kafka() {
        use GroupState::*;
        assert!(Empty.can_transition_to(PreparingRebalance));
        assert!(Stable.can_transition_to(PreparingRebalance));
        assert!(CompletingRebalance.can_transition_to(PreparingRebalance));
        assert!(!PreparingRebalance.can_transition_to(PreparingRebalance));
        assert!(PreparingRebalance.can_transition_to(CompletingRebalance));
        assert!(PreparingRebalance.can_transition_to(Empty));
        assert!(!Stable.can_transition_to(Empty));
        assert!(CompletingRebalance.can_transition_to(Stable));
        assert!(!PreparingRebalance.can_transition_to(Stable));
        assert!(!Dead.can_transition_to(PreparingRebalance));
        for s in GroupState::ALL {
            assert!(s.can_transition_to(Dead));
        }
        assert!(Stable.can_rebalance());
        assert!(!Dead.can_rebalance());
    }

    #[test]
    fn filters_are_case_insensitive() {
        assert!(GroupState::Stable.matches_filter("stable"));
        assert!(GroupState::CompletingRebalance.matches_filter("COMPLETINGREBALANCE"));
        assert!(!GroupState::Empty.matches_filter("Dead"));
    }
}
