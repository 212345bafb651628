//! One consumer group's membership and assignment: the KIP-848 reconciliation, pure.
//!
//! The group epoch moves whenever what the assignment depends on changes (a member joins or
//! leaves, a subscription or a subscribed topic's partition count changes); the target
//! assignment is recomputed for the new epoch. Each member then converges on its target in
//! steps: partitions it must give up are revoked first (it keeps the rest and goes on
//! consuming), and a partition is granted only once no other member holds or is still giving
//! it up. So no partition ever has two consumers, and nobody stops for anybody else.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::assign::{Assignment, Assignor, Tp};
use crate::error::CoordinatorError;

/// What a member subscribes to.
#[derive(Debug, Clone)]
pub enum Subscription {
    Topics(BTreeSet<String>),
    Pattern(String, regex_lite::Regex),
}

impl Subscription {
    /// Parses a pattern subscription; the whole topic name must match.
    pub fn pattern(pattern: &str) -> Result<Self, CoordinatorError> {
        let anchored = format!("^(?:{pattern})$");
        regex_lite::Regex::new(&anchored)
            .map(|re| Self::Pattern(pattern.to_string(), re))
            .map_err(|e| CoordinatorError::InvalidRequest(format!("invalid topic pattern: {e}")))
    }

    /// The existing topics this subscription selects.
    pub fn resolve(&self, topics: &BTreeMap<String, u32>) -> BTreeSet<String> {
        match self {
            Self::Topics(names) => names
                .iter()
                .filter(|t| topics.contains_key(*t))
                .cloned()
                .collect(),
            // Internal topics are never matched by a pattern, as in Kafka.
            Self::Pattern(_, re) => topics
                .keys()
                .filter(|t| !t.starts_with("__") && re.is_match(t))
                .cloned()
                .collect(),
        }
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Topics(a), Self::Topics(b)) => a == b,
            (Self::Pattern(a, _), Self::Pattern(b, _)) => a == b,
            _ => false,
        }
    }
}

/// Who drives a member: a client heartbeating, or this coordinator for a REST instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    Client,
    RestInstance,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub kind: MemberKind,
    pub epoch: i32,
    /// The epoch before the last bump: commits still in flight under it are accepted for
    /// partitions the member holds.
    pub previous_epoch: i32,
    pub subscription: Subscription,
    /// Partitions the member may consume now.
    pub assigned: Assignment,
    /// Partitions the member was told to give up and has not confirmed yet.
    pub revoking: Assignment,
    pub revoking_since: Option<Instant>,
    pub last_seen: Instant,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub client_id: String,
}

/// A heartbeat's request, decoded.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub member_id: Option<String>,
    /// 0 joins, -1 leaves, otherwise the member's current epoch.
    pub member_epoch: i32,
    pub subscription: Option<Subscription>,
    /// What the member says it owns; `None` when unchanged since its last heartbeat.
    pub owned: Option<Assignment>,
    /// `None`: keep the member's (a joining member gets `defaults`).
    pub session_timeout: Option<Duration>,
    pub rebalance_timeout: Option<Duration>,
    /// Session and rebalance timeouts of a member that never named its own.
    pub defaults: (Duration, Duration),
    pub client_id: String,
}

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    pub member_id: String,
    pub member_epoch: i32,
    pub assignment: Assignment,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub assignor: Assignor,
    pub epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub target_epoch: i32,
    pub target: BTreeMap<String, Assignment>,
    pub members: BTreeMap<String, Member>,
    /// The subscribed topics' partition counts the target was computed from.
    pub topics_seen: BTreeMap<String, u32>,
}

impl Group {
    pub fn new(id: &str, assignor: Assignor) -> Self {
        Self {
            id: id.to_string(),
            assignor,
            epoch: 0,
            target_epoch: 0,
            target: BTreeMap::new(),
            members: BTreeMap::new(),
            topics_seen: BTreeMap::new(),
        }
    }

    /// Kafka's group states, derived: `Empty`, `Assigning` (target behind the group epoch),
    /// `Reconciling` (some member not yet at its target) or `Stable`.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.target_epoch < self.epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.epoch != self.target_epoch
                || !m.revoking.is_empty()
                || self.target.get(&m.id).is_some_and(|t| *t != m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Handles a heartbeat at `now` against the current topic catalog (topic → partitions).
    pub fn heartbeat(
        &mut self,
        request: Heartbeat,
        topics: &BTreeMap<String, u32>,
        now: Instant,
    ) -> Result<MemberState, CoordinatorError> {
        let id = match (request.member_epoch, request.member_id) {
            (0, id) => {
                let subscription = request.subscription.ok_or_else(|| {
                    CoordinatorError::InvalidRequest(
                        "joining (member_epoch 0) needs subscribed_topic_names or subscribed_topic_regex".into(),
                    )
                })?;
                let id = id.unwrap_or_else(runnel_common::meta::store::random_id);
                if self
                    .members
                    .get(&id)
                    .is_some_and(|m| m.kind == MemberKind::RestInstance)
                {
                    return Err(CoordinatorError::InvalidRequest(format!(
                        "member id {id:?} is a REST consumer instance of this group"
                    )));
                }
                // A rejoin under a known id starts over: what it held is released first.
                self.members.remove(&id);
                self.members.insert(
                    id.clone(),
                    Member::new(
                        &id,
                        MemberKind::Client,
                        subscription,
                        request.session_timeout.unwrap_or(request.defaults.0),
                        request.rebalance_timeout.unwrap_or(request.defaults.1),
                        request.client_id,
                        now,
                    ),
                );
                self.epoch += 1;
                id
            }
            (-1, Some(id)) => {
                if self.members.remove(&id).is_some() {
                    self.epoch += 1;
                }
                return Ok(MemberState {
                    member_id: id,
                    member_epoch: -1,
                    assignment: Assignment::new(),
                });
            }
            (_, None) => {
                return Err(CoordinatorError::InvalidRequest(
                    "member_id is required unless member_epoch is 0".into(),
                ));
            }
            (epoch, Some(id)) => {
                let member =
                    self.members
                        .get_mut(&id)
                        .ok_or_else(|| CoordinatorError::UnknownMember {
                            group: self.id.clone(),
                            member: id.clone(),
                        })?;
                if epoch != member.epoch {
                    let current = member.epoch;
                    // Fenced: whatever it holds may already be someone else's.
                    self.members.remove(&id);
                    self.epoch += 1;
                    return Err(CoordinatorError::StaleMemberEpoch {
                        group: self.id.clone(),
                        member: id,
                        given: epoch,
                        current,
                    });
                }
                member.last_seen = now;
                if let Some(timeout) = request.session_timeout {
                    member.session_timeout = timeout;
                }
                if let Some(timeout) = request.rebalance_timeout {
                    member.rebalance_timeout = timeout;
                }
                if let Some(subscription) = request.subscription
                    && !subscription.same(&member.subscription)
                {
                    member.subscription = subscription;
                    self.epoch += 1;
                }
                id
            }
        };
        self.refresh_target(topics);
        Ok(self.reconcile(&id, request.owned.as_ref(), now))
    }

    /// Adds or updates a REST instance's membership (the coordinator drives it).
    pub fn upsert_rest_member(
        &mut self,
        name: &str,
        subscription: Subscription,
        session_timeout: Duration,
        now: Instant,
    ) {
        match self.members.get_mut(name) {
            Some(member) => {
                if !subscription.same(&member.subscription) {
                    member.subscription = subscription;
                    self.epoch += 1;
                }
                member.last_seen = now;
            }
            None => {
                self.members.insert(
                    name.to_string(),
                    Member::new(
                        name,
                        MemberKind::RestInstance,
                        subscription,
                        session_timeout,
                        session_timeout,
                        name.to_string(),
                        now,
                    ),
                );
                self.epoch += 1;
            }
        }
    }

    /// Removes a member (it left, expired or its REST instance was deleted).
    pub fn remove_member(&mut self, id: &str) -> Option<Member> {
        let removed = self.members.remove(id);
        if removed.is_some() {
            self.epoch += 1;
            self.target.remove(id);
        }
        removed
    }

    /// Recomputes the target when the group epoch moved or a subscribed topic changed shape.
    pub fn refresh_target(&mut self, topics: &BTreeMap<String, u32>) {
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.subscription.resolve(topics)))
            .collect();
        let seen: BTreeMap<String, u32> = subscriptions
            .values()
            .flatten()
            .filter_map(|t| topics.get(t).map(|n| (t.clone(), *n)))
            .collect();
        if seen != self.topics_seen {
            self.topics_seen = seen;
            self.epoch += 1;
        }
        if self.target_epoch == self.epoch {
            return;
        }
        self.target = self
            .assignor
            .assign(&subscriptions, &self.topics_seen, &self.target);
        self.target_epoch = self.epoch;
    }

    /// Moves member `id` one step towards its target. `owned` is what the member reported;
    /// a REST instance is driven here, so it passes its own assignment.
    pub fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) -> MemberState {
        let held_by_others: BTreeSet<Tp> = self
            .members
            .iter()
            .filter(|(other, _)| other.as_str() != id)
            .flat_map(|(_, m)| m.assigned.iter().chain(m.revoking.iter()).cloned())
            .collect();
        let target = self.target.get(id).cloned().unwrap_or_default();
        let target_epoch = self.target_epoch;
        let Some(member) = self.members.get_mut(id) else {
            return MemberState {
                member_id: id.to_string(),
                member_epoch: -1,
                assignment: Assignment::new(),
            };
        };
        if !member.revoking.is_empty() {
            let confirmed = owned.is_some_and(|o| o.is_disjoint(&member.revoking));
            if !confirmed {
                return member.state();
            }
            member.revoking.clear();
            member.revoking_since = None;
        }
        let to_revoke: Assignment = member.assigned.difference(&target).cloned().collect();
        if !to_revoke.is_empty() {
            member.assigned.retain(|tp| !to_revoke.contains(tp));
            member.revoking = to_revoke;
            member.revoking_since = Some(now);
            return member.state();
        }
        for tp in target.difference(&member.assigned.clone()) {
            if !held_by_others.contains(tp) {
                member.assigned.insert(tp.clone());
            }
        }
        if member.epoch != target_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = target_epoch;
        }
        member.state()
    }

    /// Members whose session (or revocation) ran out at `now`; they are removed and their
    /// partitions become free.
    pub fn expire(&mut self, now: Instant) -> Vec<Member> {
        let dead: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now.duration_since(m.last_seen) > m.session_timeout
                    || m.revoking_since
                        .is_some_and(|since| now.duration_since(since) > m.rebalance_timeout)
            })
            .map(|m| m.id.clone())
            .collect();
        dead.iter()
            .filter_map(|id| self.remove_member(id))
            .collect()
    }

    /// Checks that a commit by member `id` at `epoch` may cover `partitions`.
    pub fn check_commit<'a>(
        &self,
        id: &str,
        epoch: i32,
        partitions: impl IntoIterator<Item = &'a Tp>,
    ) -> Result<(), CoordinatorError> {
        let member = self
            .members
            .get(id)
            .ok_or_else(|| CoordinatorError::UnknownMember {
                group: self.id.clone(),
                member: id.to_string(),
            })?;
        if epoch != member.epoch && epoch != member.previous_epoch {
            return Err(CoordinatorError::StaleMemberEpoch {
                group: self.id.clone(),
                member: id.to_string(),
                given: epoch,
                current: member.epoch,
            });
        }
        for tp in partitions {
            if !member.assigned.contains(tp) && !member.revoking.contains(tp) {
                return Err(CoordinatorError::PartitionNotAssigned {
                    consumer: id.to_string(),
                    topic: tp.0.clone(),
                    partition: tp.1,
                });
            }
        }
        Ok(())
    }
}

impl Member {
    fn new(
        id: &str,
        kind: MemberKind,
        subscription: Subscription,
        session_timeout: Duration,
        rebalance_timeout: Duration,
        client_id: String,
        now: Instant,
    ) -> Self {
        Self {
            id: id.to_string(),
            kind,
            epoch: 0,
            previous_epoch: 0,
            subscription,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            revoking_since: None,
            last_seen: now,
            session_timeout,
            rebalance_timeout,
            client_id,
        }
    }

    fn state(&self) -> MemberState {
        MemberState {
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            assignment: self.assigned.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: Duration = Duration::from_secs(10);

    fn join(
        group: &mut Group,
        id: &str,
        topics: &BTreeMap<String, u32>,
        now: Instant,
    ) -> MemberState {
        group
            .heartbeat(
                Heartbeat {
                    member_id: Some(id.into()),
                    member_epoch: 0,
                    subscription: Some(Subscription::Topics(["t".to_string()].into())),
                    owned: Some(Assignment::new()),
                    session_timeout: Some(SESSION),
                    rebalance_timeout: Some(SESSION),
                    defaults: (SESSION, SESSION),
                    client_id: id.into(),
                },
                topics,
                now,
            )
            .expect("join")
    }

    fn beat(
        group: &mut Group,
        state: &MemberState,
        owned: &Assignment,
        topics: &BTreeMap<String, u32>,
        now: Instant,
    ) -> Result<MemberState, CoordinatorError> {
        group.heartbeat(
            Heartbeat {
                member_id: Some(state.member_id.clone()),
                member_epoch: state.member_epoch,
                subscription: None,
                owned: Some(owned.clone()),
                session_timeout: None,
                rebalance_timeout: None,
                defaults: (SESSION, SESSION),
                client_id: String::new(),
            },
            topics,
            now,
        )
    }

    fn catalog() -> BTreeMap<String, u32> {
        [("t".to_string(), 4)].into()
    }

    #[test]
    fn a_joining_member_gets_partitions_only_after_the_owner_revokes_them() {
        let topics = catalog();
        let now = Instant::now();
        let mut group = Group::new("g", Assignor::Sticky);
        let a = join(&mut group, "a", &topics, now);
        assert_eq!(a.assignment.len(), 4);
        assert_eq!(group.state(), "Stable");

        let b = join(&mut group, "b", &topics, now);
        // a still holds everything: b gets nothing yet.
        assert!(b.assignment.is_empty());
        // a's heartbeat revokes two of its four; it keeps consuming the other two.
        let a2 = beat(&mut group, &a, &a.assignment, &topics, now).expect("a");
        assert_eq!(a2.assignment.len(), 2);
        assert_eq!(group.state(), "Reconciling");
        // b asks again before a confirmed: still nothing.
        let b2 = beat(&mut group, &b, &b.assignment, &topics, now).expect("b");
        assert!(b2.assignment.is_empty());
        // a confirms by reporting only what it kept; then b gets the freed two.
        let a3 = beat(&mut group, &a2, &a2.assignment, &topics, now).expect("a");
        let b3 = beat(&mut group, &b2, &b2.assignment, &topics, now).expect("b");
        assert_eq!(b3.assignment.len(), 2);
        assert!(a3.assignment.is_disjoint(&b3.assignment));
        assert_eq!(a3.member_epoch, b3.member_epoch);
        assert_eq!(group.state(), "Stable");
    }

    #[test]
    fn an_expired_member_frees_its_partitions() {
        let topics = catalog();
        let now = Instant::now();
        let mut group = Group::new("g", Assignor::Sticky);
        let a = join(&mut group, "a", &topics, now);
        let b = join(&mut group, "b", &topics, now);
        let a = beat(&mut group, &a, &a.assignment, &topics, now).expect("a");
        let a = beat(&mut group, &a, &a.assignment, &topics, now).expect("a");
        let b = beat(&mut group, &b, &b.assignment, &topics, now).expect("b");
        assert_eq!(b.assignment.len(), 2);
        // b keeps heartbeating; a goes silent past its session.
        let later = now + SESSION + Duration::from_millis(1);
        let b = beat(&mut group, &b, &b.assignment, &topics, later).expect("b");
        let expired = group.expire(later);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, a.member_id);
        let b = beat(&mut group, &b, &b.assignment, &topics, later).expect("b");
        assert_eq!(b.assignment.len(), 4);
    }

    #[test]
    fn a_stale_epoch_is_fenced_and_commits_are_checked() {
        let topics = catalog();
        let now = Instant::now();
        let mut group = Group::new("g", Assignor::Sticky);
        let a = join(&mut group, "a", &topics, now);
        let tp = ("t".to_string(), 0);
        assert!(group.check_commit("a", a.member_epoch, [&tp]).is_ok());
        let other = ("t".to_string(), 9);
        assert!(matches!(
            group.check_commit("a", a.member_epoch, [&other]),
            Err(CoordinatorError::PartitionNotAssigned { .. })
        ));
        assert!(matches!(
            group.check_commit("a", a.member_epoch + 5, [&tp]),
            Err(CoordinatorError::StaleMemberEpoch { .. })
        ));
        assert!(matches!(
            group.check_commit("zz", a.member_epoch, [&tp]),
            Err(CoordinatorError::UnknownMember { .. })
        ));
        let stale = MemberState {
            member_epoch: a.member_epoch + 3,
            ..a
        };
        assert!(matches!(
            beat(&mut group, &stale, &stale.assignment, &topics, now),
            Err(CoordinatorError::StaleMemberEpoch { .. })
        ));
        assert!(group.members.is_empty());
    }

    #[test]
    fn a_new_partition_bumps_the_epoch_and_is_assigned() {
        let mut topics = catalog();
        let now = Instant::now();
        let mut group = Group::new("g", Assignor::Range);
        let a = join(&mut group, "a", &topics, now);
        let epoch = a.member_epoch;
        topics.insert("t".into(), 6);
        let a = beat(&mut group, &a, &a.assignment, &topics, now).expect("a");
        assert!(a.member_epoch > epoch);
        assert_eq!(a.assignment.len(), 6);
    }

    #[test]
    fn a_pattern_subscription_follows_matching_topics() {
        let topics: BTreeMap<String, u32> = [
            ("orders-eu".to_string(), 2),
            ("orders-us".to_string(), 1),
            ("other".to_string(), 5),
            ("__consumer_offsets".to_string(), 3),
        ]
        .into();
        let s = Subscription::pattern("orders-.*").expect("pattern");
        assert_eq!(
            s.resolve(&topics),
            ["orders-eu".to_string(), "orders-us".to_string()].into()
        );
        assert!(Subscription::pattern("(").is_err());
    }
}
