//! Server-side assignors: from the members' subscriptions and the topics' partition counts to
//! a target assignment. Pure functions; the group state machine decides when to run them.
//!
//! - `range`: per topic, contiguous ranges over the members subscribed to it, in member-id
//!   order (Kafka's RangeAssignor). Co-partitioned topics land on the same member.
//! - `uniform`: every partition to the subscribed member with the fewest partitions so far,
//!   in (partition, topic) order: balanced over all topics, recomputed from scratch.
//! - `sticky`: balanced like `uniform`, but keeps every partition where it is unless the
//!   balance needs it to move, so a joining or leaving member moves as few partitions as
//!   possible (the spirit of Kafka's uniform server-side assignor).

use std::collections::{BTreeMap, BTreeSet};

/// A topic partition.
pub type Tp = (String, u32);
/// The partitions of one member.
pub type Assignment = BTreeSet<Tp>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assignor {
    Range,
    Uniform,
    Sticky,
}

impl Assignor {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "range" => Some(Self::Range),
            "uniform" => Some(Self::Uniform),
            "sticky" => Some(Self::Sticky),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::Uniform => "uniform",
            Self::Sticky => "sticky",
        }
    }

    /// The target assignment. `subscriptions`: member → topics it subscribes to (only topics
    /// that exist); `partitions`: topic → partition count; `current`: the previous target.
    pub fn assign(
        self,
        subscriptions: &BTreeMap<String, BTreeSet<String>>,
        partitions: &BTreeMap<String, u32>,
        current: &BTreeMap<String, Assignment>,
    ) -> BTreeMap<String, Assignment> {
        let mut out: BTreeMap<String, Assignment> = subscriptions
            .keys()
            .map(|m| (m.clone(), Assignment::new()))
            .collect();
        match self {
            Self::Range => range(subscriptions, partitions, &mut out),
            Self::Uniform => fill(
                subscriptions,
                all_partitions(subscriptions, partitions),
                &mut out,
            ),
            Self::Sticky => sticky(subscriptions, partitions, current, &mut out),
        }
        out
    }
}

/// Every partition of every subscribed topic, in (partition, topic) order so that consecutive
/// picks spread one topic's partitions over members.
fn all_partitions(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partitions: &BTreeMap<String, u32>,
) -> Vec<Tp> {
    let topics: BTreeSet<&String> = subscriptions.values().flatten().collect();
    let mut all: Vec<Tp> = topics
        .into_iter()
        .filter_map(|t| partitions.get(t).map(|n| (t, *n)))
        .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
        .collect();
    all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    all
}

fn range(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partitions: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Assignment>,
) {
    for (topic, &count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let per = count / members.len() as u32;
        let extra = count % members.len() as u32;
        let mut next = 0;
        for (i, member) in members.into_iter().enumerate() {
            let take = per + u32::from((i as u32) < extra);
            let entry = out.entry(member.clone()).or_default();
            for p in next..next + take {
                entry.insert((topic.clone(), p));
            }
            next += take;
        }
    }
}

/// Gives each partition to the subscribed member holding the fewest (ties: member-id order).
fn fill(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    unassigned: Vec<Tp>,
    out: &mut BTreeMap<String, Assignment>,
) {
    for tp in unassigned {
        let least = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(&tp.0))
            .map(|(m, _)| m)
            .min_by_key(|m| (out.get(*m).map_or(0, BTreeSet::len), (*m).clone()));
        if let Some(member) = least {
            out.entry(member.clone()).or_default().insert(tp);
        }
    }
}

fn sticky(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    partitions: &BTreeMap<String, u32>,
    current: &BTreeMap<String, Assignment>,
    out: &mut BTreeMap<String, Assignment>,
) {
    let all = all_partitions(subscriptions, partitions);
    let exists: BTreeSet<Tp> = all.iter().cloned().collect();
    // Quota: no member holds more than ceil(all / members) while others could take some.
    let quota = all.len().div_ceil(subscriptions.len().max(1));
    let mut taken: BTreeSet<Tp> = BTreeSet::new();
    for (member, topics) in subscriptions {
        let Some(previous) = current.get(member) else {
            continue;
        };
        let entry = out.entry(member.clone()).or_default();
        for tp in previous {
            if entry.len() < quota
                && exists.contains(tp)
                && topics.contains(&tp.0)
                && taken.insert(tp.clone())
            {
                entry.insert(tp.clone());
            }
        }
    }
    let unassigned: Vec<Tp> = all.into_iter().filter(|tp| !taken.contains(tp)).collect();
    fill(subscriptions, unassigned, out);
    // With uneven subscriptions the quota can leave members more than one apart: move single
    // partitions from the fullest to an eligible emptier member until no move helps. Each move
    // lowers the sum of squared sizes, so this ends; the bound is a guard.
    for _ in 0..exists.len() {
        let mut moved = false;
        let sizes: Vec<(String, usize)> = out.iter().map(|(m, a)| (m.clone(), a.len())).collect();
        'search: for (from, from_len) in sizes.iter().rev() {
            let candidates: Vec<Tp> = out[from].iter().rev().cloned().collect();
            for tp in candidates {
                let target = subscriptions
                    .iter()
                    .filter(|(m, topics)| *m != from && topics.contains(&tp.0))
                    .map(|(m, _)| (out[m].len(), m.clone()))
                    .min();
                if let Some((to_len, to)) = target
                    && to_len + 1 < *from_len
                {
                    out.get_mut(from).map(|a| a.remove(&tp));
                    out.entry(to).or_default().insert(tp);
                    moved = true;
                    break 'search;
                }
            }
        }
        if !moved {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn topics(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn check_exact_cover(out: &BTreeMap<String, Assignment>, partitions: &BTreeMap<String, u32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for tp in a {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        let total: u32 = partitions.values().sum();
        assert_eq!(seen.len() as u32, total);
    }

    #[test]
    fn range_gives_contiguous_ranges_extra_to_the_first() {
        let out = Assignor::Range.assign(
            &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
            &topics(&[("t", 7)]),
            &BTreeMap::new(),
        );
        let ps = |m: &str| out[m].iter().map(|(_, p)| *p).collect::<Vec<_>>();
        assert_eq!(ps("a"), vec![0, 1, 2]);
        assert_eq!(ps("b"), vec![3, 4]);
        assert_eq!(ps("c"), vec![5, 6]);
    }

    #[test]
    fn more_members_than_partitions_leaves_extras_idle() {
        for assignor in [Assignor::Range, Assignor::Uniform, Assignor::Sticky] {
            let parts = topics(&[("t", 2)]);
            let out = assignor.assign(
                &subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
                &parts,
                &BTreeMap::new(),
            );
            check_exact_cover(&out, &parts);
            assert_eq!(
                out.values().filter(|a| a.is_empty()).count(),
                1,
                "{assignor:?}"
            );
        }
    }

    #[test]
    fn uniform_and_sticky_balance_over_topics() {
        let parts = topics(&[("x", 3), ("y", 3)]);
        for assignor in [Assignor::Uniform, Assignor::Sticky] {
            let out = assignor.assign(
                &subs(&[("a", &["x", "y"]), ("b", &["x", "y"]), ("c", &["x", "y"])]),
                &parts,
                &BTreeMap::new(),
            );
            check_exact_cover(&out, &parts);
            assert!(out.values().all(|a| a.len() == 2), "{assignor:?}: {out:?}");
        }
    }

    #[test]
    fn sticky_moves_only_what_balance_needs_when_a_member_joins() {
        let parts = topics(&[("t", 6)]);
        let two = subs(&[("a", &["t"]), ("b", &["t"])]);
        let before = Assignor::Sticky.assign(&two, &parts, &BTreeMap::new());
        let three = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let after = Assignor::Sticky.assign(&three, &parts, &before);
        check_exact_cover(&after, &parts);
        assert!(after.values().all(|a| a.len() == 2));
        // a and b each keep two of their three; only two partitions move, both to c.
        assert!(after["a"].is_subset(&before["a"]));
        assert!(after["b"].is_subset(&before["b"]));
    }

    #[test]
    fn sticky_keeps_survivors_when_a_member_leaves() {
        let parts = topics(&[("t", 6)]);
        let three = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let before = Assignor::Sticky.assign(&three, &parts, &BTreeMap::new());
        let two = subs(&[("a", &["t"]), ("c", &["t"])]);
        let after = Assignor::Sticky.assign(&two, &parts, &before);
        check_exact_cover(&after, &parts);
        assert!(before["a"].is_subset(&after["a"]));
        assert!(before["c"].is_subset(&after["c"]));
    }

    #[test]
    fn uneven_subscriptions_are_balanced_where_possible() {
        let parts = topics(&[("x", 4), ("y", 4)]);
        let s = subs(&[("a", &["x", "y"]), ("b", &["x"]), ("c", &["y"])]);
        for assignor in [Assignor::Uniform, Assignor::Sticky] {
            let out = assignor.assign(&s, &parts, &BTreeMap::new());
            check_exact_cover(&out, &parts);
            let max = out.values().map(BTreeSet::len).max().unwrap_or(0);
            let min = out.values().map(BTreeSet::len).min().unwrap_or(0);
            assert!(max - min <= 1, "{assignor:?}: {out:?}");
            assert!(out["b"].iter().all(|(t, _)| t == "x"));
            assert!(out["c"].iter().all(|(t, _)| t == "y"));
        }
    }
}
