//! The controller's decisions, as a pure function of the metadata it sees.
//!
//! For every partition: replicas that died or restarted leave the in-sync set (unless they are
//! its last member: the last copy of the committed log is never dropped from it); a partition
//! whose leader is gone gets a new leader from the live in-sync replicas with a new leader
//! epoch (or, only where `unclean.leader.election.enable` is true, from any live replica); and
//! when asked, leadership moves back to the preferred (first) replica once it is in sync.

use std::collections::BTreeSet;

use runnel_common::meta::{ClusterView, PartitionState};

/// One partition state to write, guarded by the revision it was decided from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub topic: String,
    pub partition: u32,
    pub state: PartitionState,
    pub expected_revision: i64,
    pub reason: &'static str,
}

/// Decides the partition changes `view` calls for. `restarted` are brokers whose incarnation
/// changed since the controller last looked (they may have lost unsynced bytes);
/// `prefer` asks for preferred-leader moves too.
pub fn decide(view: &ClusterView, restarted: &BTreeSet<u32>, prefer: bool) -> Vec<Decision> {
    let live: BTreeSet<u32> = view.brokers.keys().copied().collect();
    let mut decisions = Vec::new();
    for (name, topic) in &view.topics {
        let unclean = topic
            .record
            .configs
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v == "true");
        for (&partition, state) in &topic.partitions {
            let Some(&revision) = topic.partition_revisions.get(&partition) else {
                continue;
            };
            let (next, reason) = decide_partition(state, &live, restarted, unclean, prefer);
            if next != *state {
                decisions.push(Decision {
                    topic: name.clone(),
                    partition,
                    state: next,
                    expected_revision: revision,
                    reason,
                });
            }
        }
    }
    decisions
}

fn decide_partition(
    state: &PartitionState,
    live: &BTreeSet<u32>,
    restarted: &BTreeSet<u32>,
    unclean: bool,
    prefer: bool,
) -> (PartitionState, &'static str) {
    let mut next = state.clone();
    let mut reason = "unchanged";
    // 1. Dead or restarted replicas leave the in-sync set, but never its last member.
    let keep: Vec<u32> = state
        .isr
        .iter()
        .copied()
        .filter(|r| live.contains(r) && !restarted.contains(r))
        .collect();
    if keep.len() != state.isr.len() {
        if keep.is_empty() {
            // Keep the last in-sync replica: ideally one that is alive (it restarted), else
            // the previous set, so the copy that has everything can lead again when it returns.
            let survivor = state.isr.iter().copied().find(|r| live.contains(r));
            next.isr = survivor.map_or_else(|| state.isr.clone(), |r| vec![r]);
        } else {
            next.isr = keep;
        }
        reason = "shrank the in-sync set";
    }
    // 2. A partition whose leader is gone, or left the in-sync set, gets a new leader.
    let leader_ok = state
        .leader
        .is_some_and(|l| live.contains(&l) && next.isr.contains(&l));
    if !leader_ok {
        let candidate = state
            .replicas
            .iter()
            .copied()
            .find(|r| next.isr.contains(r) && live.contains(r));
        let (leader, isr) = match candidate {
            Some(l) => (Some(l), next.isr.clone()),
            None if unclean => match state.replicas.iter().copied().find(|r| live.contains(r)) {
                Some(l) => (Some(l), vec![l]),
                None => (None, next.isr.clone()),
            },
            None => (None, next.isr.clone()),
        };
        if leader != state.leader {
            next.leader = leader;
            next.isr = isr;
            next.leader_epoch = state.leader_epoch + 1;
            reason = if leader.is_some() {
                "elected a new leader"
            } else {
                "no in-sync replica is alive"
            };
        }
    }
    // 3. Preferred replica election.
    if prefer
        && let (Some(leader), Some(&preferred)) = (next.leader, state.replicas.first())
        && leader != preferred
        && live.contains(&preferred)
        && !restarted.contains(&preferred)
        && next.isr.contains(&preferred)
    {
        next.leader = Some(preferred);
        next.leader_epoch += 1;
        reason = "moved leadership to the preferred replica";
    }
    (next, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(leader: Option<u32>, epoch: u32, replicas: &[u32], isr: &[u32]) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: epoch,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    fn live(ids: &[u32]) -> BTreeSet<u32> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_dead_leader_is_replaced_from_the_in_sync_set() {
        let (next, _) = decide_partition(
            &state(Some(1), 4, &[1, 2, 3], &[1, 2, 3]),
            &live(&[2, 3]),
            &live(&[]),
            false,
            false,
        );
        assert_eq!(next, state(Some(2), 5, &[1, 2, 3], &[2, 3]));
    }

    #[test]
    fn an_out_of_sync_replica_is_never_elected_cleanly() {
        let (next, _) = decide_partition(
            &state(Some(1), 4, &[1, 2, 3], &[1]),
            &live(&[2, 3]),
            &live(&[]),
            false,
            false,
        );
        assert_eq!(
            next,
            state(None, 5, &[1, 2, 3], &[1]),
            "offline, last in-sync replica kept"
        );
        let (unclean, _) = decide_partition(
            &state(Some(1), 4, &[1, 2, 3], &[1]),
            &live(&[2, 3]),
            &live(&[]),
            true,
            false,
        );
        assert_eq!(unclean, state(Some(2), 5, &[1, 2, 3], &[2]));
    }

    #[test]
    fn the_last_in_sync_replica_leads_again_when_it_returns() {
        let offline = state(None, 5, &[1, 2, 3], &[1]);
        let (next, _) = decide_partition(&offline, &live(&[1, 2, 3]), &live(&[1]), false, false);
        assert_eq!(next, state(Some(1), 6, &[1, 2, 3], &[1]));
    }

    #[test]
    fn a_restarted_replica_leaves_the_in_sync_set_and_its_leadership() {
        let (next, _) = decide_partition(
            &state(Some(1), 2, &[1, 2, 3], &[1, 2, 3]),
            &live(&[1, 2, 3]),
            &live(&[1]),
            false,
            false,
        );
        assert_eq!(next, state(Some(2), 3, &[1, 2, 3], &[2, 3]));
        // Every replica restarted at once: one of them stays, and leads.
        let (all, _) = decide_partition(
            &state(Some(1), 2, &[1, 2, 3], &[1, 2, 3]),
            &live(&[1, 2, 3]),
            &live(&[1, 2, 3]),
            false,
            false,
        );
        assert_eq!(all, state(Some(1), 2, &[1, 2, 3], &[1]));
    }

    #[test]
    fn preferred_election_waits_for_the_preferred_replica_to_be_in_sync() {
        let s = state(Some(2), 3, &[1, 2, 3], &[2, 3]);
        let (not_yet, _) = decide_partition(&s, &live(&[1, 2, 3]), &live(&[]), false, true);
        assert_eq!(not_yet, s);
        let s = state(Some(2), 3, &[1, 2, 3], &[1, 2, 3]);
        let (moved, _) = decide_partition(&s, &live(&[1, 2, 3]), &live(&[]), false, true);
        assert_eq!(moved, state(Some(1), 4, &[1, 2, 3], &[1, 2, 3]));
        let (kept, _) = decide_partition(&s, &live(&[1, 2, 3]), &live(&[]), false, false);
        assert_eq!(kept, s, "no move unless asked");
    }

    #[test]
    fn a_healthy_partition_is_left_alone() {
        let s = state(Some(1), 0, &[1, 2, 3], &[1, 2, 3]);
        assert_eq!(
            decide_partition(&s, &live(&[1, 2, 3]), &live(&[]), false, true).0,
            s
        );
    }
}
