//! The leader's bookkeeping of its followers, and the two decisions made from it: the high
//! watermark and the in-sync set. Pure functions of their inputs and a clock passed in, so they
//! are tested without a runtime.

use std::collections::BTreeMap;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset: the offset of its last fetch. `None` until it fetches.
    pub log_end: Option<i64>,
    /// Last time the follower was known to have everything the leader had.
    pub caught_up_at_ms: i64,
    last_fetch_leader_end: i64,
    last_fetch_ms: i64,
}

impl FollowerProgress {
    /// A follower the leader has not heard from yet. In-sync members start with a full
    /// `replica.lag.time.max.ms` of grace from `now_ms`, as when a new leader takes over.
    pub fn new(now_ms: i64) -> Self {
        Self {
            log_end: None,
            caught_up_at_ms: now_ms,
            last_fetch_leader_end: -1,
            last_fetch_ms: now_ms,
        }
    }

    /// Records a fetch at `fetch_offset` when the leader's log ends at `leader_end`.
    ///
    /// The follower is caught up now if it asked for everything the leader has; it was caught
    /// up at its previous fetch if it now asks for what the leader had then (Kafka's rule, so a
    /// follower under steady load, always one fetch behind, stays in sync).
    pub fn on_fetch(&mut self, fetch_offset: i64, leader_end: i64, now_ms: i64) {
        if fetch_offset >= leader_end {
            self.caught_up_at_ms = self.caught_up_at_ms.max(now_ms);
        } else if fetch_offset >= self.last_fetch_leader_end {
            self.caught_up_at_ms = self.caught_up_at_ms.max(self.last_fetch_ms);
        }
        self.log_end = Some(fetch_offset);
        self.last_fetch_leader_end = leader_end;
        self.last_fetch_ms = now_ms;
    }
}

/// The high watermark: the offset below which every in-sync replica holds the log.
///
/// It never moves backwards, and it does not move at all while fewer than `min_insync`
/// replicas are in sync (so nothing becomes visible that fewer copies hold than promised).
/// A follower in the in-sync set that has not fetched yet holds it where it is.
///
/// Worked cases (leader 1, `leader_end` 10, current 4, `min_insync` 2):
/// - ISR {1, 2, 3}, followers at 7 and 9 → 7;
/// - ISR {1, 2}, follower 2 at 12 (a stale report past the leader) → 10;
/// - ISR {1, 2}, follower 2 has not fetched → 4;
/// - ISR {1} → 4 (below `min_insync`); with `min_insync` 1 → 10;
/// - ISR {1, 2}, follower 2 at 3 (behind the current mark) → 4, never backwards.
pub fn high_watermark(
    current: i64,
    leader: u32,
    leader_end: i64,
    isr: &[u32],
    followers: &BTreeMap<u32, FollowerProgress>,
    min_insync: usize,
) -> i64 {
    if isr.len() < min_insync.max(1) {
        return current;
    }
    let mut candidate = leader_end;
    for replica in isr.iter().filter(|&&r| r != leader) {
        match followers.get(replica).and_then(|p| p.log_end) {
            Some(end) => candidate = candidate.min(end),
            None => return current,
        }
    }
    current.max(candidate)
}

/// The in-sync set after checking lag, or `None` when it stays as it is.
///
/// A follower drops out once it has not been caught up for longer than `lag_max_ms`. A
/// replica outside the set comes back once its log reaches the high watermark and the start of
/// the leader's current epoch (so it holds everything committed, copied from this leader).
/// The leader itself always stays. The result keeps the order of `replicas`.
#[allow(clippy::too_many_arguments)]
pub fn next_isr(
    now_ms: i64,
    lag_max_ms: i64,
    leader: u32,
    isr: &[u32],
    replicas: &[u32],
    followers: &BTreeMap<u32, FollowerProgress>,
    high_watermark: i64,
    epoch_start: i64,
) -> Option<Vec<u32>> {
    let in_sync = |replica: u32| -> bool {
        if replica == leader {
            return true;
        }
        let Some(progress) = followers.get(&replica) else {
            return false;
        };
        if isr.contains(&replica) {
            now_ms - progress.caught_up_at_ms <= lag_max_ms
        } else {
            progress
                .log_end
                .is_some_and(|end| end >= high_watermark && end >= epoch_start)
                && now_ms - progress.caught_up_at_ms <= lag_max_ms
        }
    };
    let next: Vec<u32> = replicas.iter().copied().filter(|&r| in_sync(r)).collect();
    let mut current: Vec<u32> = isr.to_vec();
    current.sort_unstable();
    let mut sorted = next.clone();
    sorted.sort_unstable();
    (sorted != current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(end: i64) -> FollowerProgress {
        let mut p = FollowerProgress::new(0);
        p.log_end = Some(end);
        p
    }

    #[test]
    fn high_watermark_follows_the_worked_cases() {
        let two_three = BTreeMap::from([(2, at(7)), (3, at(9))]);
        assert_eq!(high_watermark(4, 1, 10, &[1, 2, 3], &two_three, 2), 7);
        assert_eq!(
            high_watermark(4, 1, 10, &[1, 2], &BTreeMap::from([(2, at(12))]), 2),
            10
        );
        let unknown = BTreeMap::from([(2, FollowerProgress::new(0))]);
        assert_eq!(high_watermark(4, 1, 10, &[1, 2], &unknown, 2), 4);
        assert_eq!(high_watermark(4, 1, 10, &[1], &BTreeMap::new(), 2), 4);
        assert_eq!(high_watermark(4, 1, 10, &[1], &BTreeMap::new(), 1), 10);
        assert_eq!(
            high_watermark(4, 1, 10, &[1, 2], &BTreeMap::from([(2, at(3))]), 2),
            4
        );
    }

    #[test]
    fn a_follower_one_fetch_behind_stays_caught_up() {
        let mut p = FollowerProgress::new(0);
        p.on_fetch(0, 100, 1_000); // behind: leader had 100
        assert_eq!(p.caught_up_at_ms, 0);
        p.on_fetch(100, 200, 2_000); // has what the leader had at the previous fetch
        assert_eq!(p.caught_up_at_ms, 1_000);
        p.on_fetch(200, 200, 3_000); // has everything
        assert_eq!(p.caught_up_at_ms, 3_000);
        p.on_fetch(150, 400, 4_000); // fell behind even the previous mark
        assert_eq!(p.caught_up_at_ms, 3_000);
    }

    #[test]
    fn lagging_followers_leave_and_caught_up_ones_return() {
        let mut slow = at(50);
        slow.caught_up_at_ms = 0;
        let mut fresh = at(100);
        fresh.caught_up_at_ms = 9_500;
        let followers = BTreeMap::from([(2, slow), (3, fresh)]);
        // 2 has lagged 10 s > 5 s: out. 3 is fine.
        assert_eq!(
            next_isr(10_000, 5_000, 1, &[1, 2, 3], &[1, 2, 3], &followers, 100, 0),
            Some(vec![1, 3])
        );
        // Nothing changes when everyone is in sync.
        assert_eq!(
            next_isr(10_000, 20_000, 1, &[1, 2, 3], &[1, 2, 3], &followers, 40, 0),
            None
        );
        // 3 returns once it reaches the high watermark and the epoch start; 2 does not.
        assert_eq!(
            next_isr(10_000, 5_000, 1, &[1], &[1, 2, 3], &followers, 100, 90),
            Some(vec![1, 3])
        );
        assert_eq!(
            next_isr(10_000, 5_000, 1, &[1], &[1, 2, 3], &followers, 100, 150),
            None
        );
        // The leader never leaves.
        assert_eq!(
            next_isr(10_000, 5_000, 1, &[1], &[1], &BTreeMap::new(), 0, 0),
            None
        );
    }
}
