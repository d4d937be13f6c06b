//! Whether this node's authorization state is recent enough to decide on.
//!
//! A node that was stopped or cut off from its peers may hold a grant that
//! was revoked meanwhile. Under enforcement a cluster node therefore decides
//! only while it has completed an anti-entropy round with some peer (or
//! found itself alone in the cluster) within a bound; past it, a request
//! asks for rounds at once and waits briefly for one, and is refused (503)
//! if none completes: revocations are applied before the node serves again.
//!
//! A node that was paused (SIGSTOP, a frozen VM, a suspended host) may have
//! missed any change, including the cluster's first key destruction, so
//! after a pause it confirms before serving in every mode: a heartbeat
//! ([`Freshness::beat`], every [`HEARTBEAT`]) that finds itself, or a
//! request that finds it, more than [`PAUSE`] late marks the pause, and
//! only a round that started after it clears the mark.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// The shortest staleness bound, whatever the sync interval.
pub const MIN_BOUND: Duration = Duration::from_secs(2);
/// How long a request waits for a confirming round.
pub const CONFIRM_WAIT: Duration = Duration::from_secs(2);
/// How often the heartbeat beats.
pub const HEARTBEAT: Duration = Duration::from_millis(250);
/// A heartbeat this late means the node was paused.
pub const PAUSE: Duration = Duration::from_millis(1500);

/// When a round started (see [`Freshness::mark_confirmed`]).
#[derive(Debug, Clone, Copy)]
pub struct RoundStart(u64);

/// Time of the last confirmation, and the signals between requests and the
/// cluster's links.
#[derive(Debug)]
pub struct Freshness {
    start: Instant,
    /// One plus the milliseconds after `start` of the last confirmation;
    /// 0 until the first (a node has confirmed nothing when it starts).
    confirmed_ms: AtomicU64,
    /// One plus the milliseconds after `start` of the last heartbeat (0: none yet).
    heartbeat_ms: AtomicU64,
    /// When the last pause was noticed (0: never): until a round that
    /// started later confirms, the node is stale.
    paused_ms: AtomicU64,
    /// None outside a cluster: a single node is always current.
    bound: Option<Duration>,
    confirmed: Notify,
    /// Bumped when a request wants a round; each link watches it (a watch
    /// remembers a bump that came while the link was busy).
    round_wanted: watch::Sender<u64>,
}

impl Freshness {
    /// Freshness of a node whose peers sync every `sync_interval` (None for
    /// a node without a cluster). The bound is three intervals, at least
    /// [`MIN_BOUND`]: a round may fail or come late once without effect.
    pub fn new(sync_interval: Option<Duration>) -> Freshness {
        Freshness {
            start: Instant::now(),
            confirmed_ms: AtomicU64::new(0),
            heartbeat_ms: AtomicU64::new(0),
            paused_ms: AtomicU64::new(0),
            bound: sync_interval.map(|i| (i * 3).max(MIN_BOUND)),
            confirmed: Notify::new(),
            round_wanted: watch::Sender::new(0),
        }
    }

    /// The staleness bound, if any.
    pub fn bound(&self) -> Option<Duration> {
        self.bound
    }

    /// One plus the milliseconds since `start` (0 stands for never).
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// True when the state was confirmed within the bound and after the
    /// last pause (a few atomic loads and a clock read).
    pub fn is_fresh(&self) -> bool {
        match self.bound {
            None => true,
            Some(bound) => {
                let now = self.now_ms();
                let confirmed = self.confirmed_ms.load(Ordering::Acquire);
                confirmed != 0
                    && now - confirmed.min(now) <= bound.as_millis() as u64
                    && confirmed >= self.paused_ms.load(Ordering::Acquire)
                    && !self.late(now)
            }
        }
    }

    /// True when a cluster node was paused and has not confirmed its state
    /// since (see the module doc); notes a pause that only now shows.
    pub fn was_paused(&self) -> bool {
        if self.bound.is_none() {
            return false;
        }
        let now = self.now_ms();
        if self.late(now) {
            self.paused_ms.fetch_max(now, Ordering::AcqRel);
            return true;
        }
        self.confirmed_ms.load(Ordering::Acquire) < self.paused_ms.load(Ordering::Acquire)
    }

    /// The heartbeat is more than [`PAUSE`] late.
    fn late(&self, now: u64) -> bool {
        let beat = self.heartbeat_ms.load(Ordering::Acquire);
        beat != 0 && now.saturating_sub(beat) > PAUSE.as_millis() as u64
    }

    /// One heartbeat (every [`HEARTBEAT`]): a late one marks a pause and asks
    /// the links for a round.
    pub fn beat(&self) {
        let now = self.now_ms();
        if self.late(now) {
            self.paused_ms.fetch_max(now, Ordering::AcqRel);
            self.round_wanted.send_modify(|n| *n = n.wrapping_add(1));
        }
        self.heartbeat_ms.store(now, Ordering::Release);
    }

    /// A mark of the present, to take when a round starts.
    pub fn round_start(&self) -> RoundStart {
        RoundStart(self.now_ms())
    }

    /// A round that started at `start` completed: the state is as current
    /// as the peer's was then. The start counts, not the end: a round that
    /// was under way while this node (or the peer) was stopped may end with
    /// an answer that predates revocations made meanwhile.
    pub fn mark_confirmed(&self, start: RoundStart) {
        self.confirmed_ms.fetch_max(start.0, Ordering::AcqRel);
        self.confirmed.notify_waiters();
    }

    /// A receiver that changes when some request wants a round now (each
    /// link holds one).
    pub fn round_wanted(&self) -> watch::Receiver<u64> {
        self.round_wanted.subscribe()
    }

    /// Asks the links for a round and waits up to [`CONFIRM_WAIT`] for a
    /// confirmation; true when the state is fresh afterwards.
    pub async fn confirm(&self) -> bool {
        if self.is_fresh() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
        loop {
            let confirmed = self.confirmed.notified();
            tokio::pin!(confirmed);
            confirmed.as_mut().enable();
            self.round_wanted.send_modify(|n| *n = n.wrapping_add(1));
            if tokio::time::timeout_at(deadline, confirmed).await.is_err() {
                return self.is_fresh();
            }
            if self.is_fresh() {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_node_is_fresh_again_only_after_a_confirmation() {
        let single = Freshness::new(None);
        assert!(single.is_fresh() && single.confirm().await);
        let mut cluster = Freshness::new(Some(Duration::from_millis(10)));
        cluster.bound = Some(Duration::from_millis(20));
        assert!(!cluster.is_fresh(), "a cluster node starts unconfirmed");
        cluster.mark_confirmed(cluster.round_start());
        assert!(cluster.is_fresh());
        std::thread::sleep(Duration::from_millis(30));
        assert!(!cluster.is_fresh());
        let cluster = std::sync::Arc::new(cluster);
        let links = std::sync::Arc::clone(&cluster);
        let mut wanted = links.round_wanted();
        let held_up = cluster.round_start();
        std::thread::sleep(Duration::from_millis(30));
        cluster.mark_confirmed(held_up);
        assert!(!cluster.is_fresh(), "a round that started before the bound confirms nothing now");
        let link = tokio::spawn(async move {
            wanted.changed().await.unwrap();
            links.mark_confirmed(links.round_start());
        });
        assert!(cluster.confirm().await, "a round that completes confirms");
        link.await.unwrap();
        assert!(cluster.is_fresh());
    }

    #[test]
    fn a_late_heartbeat_makes_a_node_stale_until_a_later_round_confirms() {
        let node = Freshness::new(Some(Duration::from_secs(60)));
        node.beat();
        node.mark_confirmed(node.round_start());
        assert!(node.is_fresh() && !node.was_paused());
        let before_the_pause = node.round_start();
        std::thread::sleep(PAUSE + Duration::from_millis(100));
        assert!(node.was_paused(), "a request notices the pause before the heartbeat does");
        assert!(!node.is_fresh());
        node.beat();
        node.mark_confirmed(before_the_pause);
        assert!(node.was_paused() && !node.is_fresh(), "a round from before the pause confirms nothing");
        node.mark_confirmed(node.round_start());
        assert!(!node.was_paused() && node.is_fresh());
        let single = Freshness::new(None);
        std::thread::sleep(Duration::from_millis(1));
        assert!(!single.was_paused(), "a single node has nobody to ask");
    }
}
