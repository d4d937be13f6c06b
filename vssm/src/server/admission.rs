//! Connection admission for one port: how many connections it holds, and
//! which one gives way when an unauthenticated peer tries to fill it.
//!
//! A connection is *unauthenticated* from accept until it proves who it is
//! (a verified client certificate on the API and sync ports); on ports
//! where nobody proves anything (health, join, the API before bootstrap) it
//! stays unauthenticated for its whole life. Only unauthenticated
//! connections are ever closed to make room:
//! - a source address holding `unauthenticated_per_source` of them loses its
//!   oldest to its newest, so one address cannot touch anyone else's;
//! - a full port closes its oldest unauthenticated connection for a new one,
//!   so an attacker spread over many addresses must open connections faster
//!   than a legitimate client completes its handshake to keep it out;
//! - a port full of authenticated connections refuses new ones.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// The limits of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Most connections open at once, authenticated or not.
    pub total: usize,
    /// Most unauthenticated connections from one source address.
    pub unauthenticated_per_source: usize,
}

/// The connections of one port (shared by the threads that accept on it).
pub struct Admission {
    limits: AdmissionLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Connections open, evicted ones included until they have closed.
    open: usize,
    next_id: u64,
    /// Unauthenticated connections by age (ids grow with time).
    unauthenticated: BTreeMap<u64, Waiting>,
    unauthenticated_by_source: HashMap<IpAddr, usize>,
    /// Told to close, not closed yet: they no longer count against the cap.
    evicted: HashSet<u64>,
}

struct Waiting {
    source: IpAddr,
    evict: Arc<Notify>,
}

impl Admission {
    /// A port with these limits.
    pub fn new(limits: AdmissionLimits) -> Arc<Self> {
        Arc::new(Admission { limits, state: Mutex::new(State::default()) })
    }

    /// Admits a new unauthenticated connection from `source`, closing older
    /// unauthenticated ones if a limit requires; None when the port is full
    /// of authenticated connections.
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Option<Slot> {
        let mut state = self.lock();
        let from_source = state.unauthenticated_by_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.limits.unauthenticated_per_source {
            let oldest = state.unauthenticated.iter().find(|(_, w)| w.source == source).map(|(id, _)| *id);
            if let Some(id) = oldest {
                state.evict(id);
            }
        }
        if state.open - state.evicted.len() >= self.limits.total {
            let oldest = state.unauthenticated.keys().next().copied()?;
            state.evict(oldest);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open += 1;
        let evict = Arc::new(Notify::new());
        state.unauthenticated.insert(id, Waiting { source, evict: Arc::clone(&evict) });
        *state.unauthenticated_by_source.entry(source).or_insert(0) += 1;
        Some(Slot { admission: Arc::clone(self), id, evict })
    }

    /// Connections open now (evicted ones until they have closed).
    pub fn open(&self) -> usize {
        self.lock().open
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Stops counting `id` as unauthenticated and tells it to close.
    fn evict(&mut self, id: u64) {
        if let Some(waiting) = self.forget_unauthenticated(id) {
            self.evicted.insert(id);
            // notify_one keeps a permit if the task is not waiting yet.
            waiting.evict.notify_one();
        }
    }

    fn forget_unauthenticated(&mut self, id: u64) -> Option<Waiting> {
        let waiting = self.unauthenticated.remove(&id)?;
        if let Some(count) = self.unauthenticated_by_source.get_mut(&waiting.source) {
            *count -= 1;
            if *count == 0 {
                self.unauthenticated_by_source.remove(&waiting.source);
            }
        }
        Some(waiting)
    }
}

/// One admitted connection's place; dropping it frees the place.
pub struct Slot {
    admission: Arc<Admission>,
    id: u64,
    evict: Arc<Notify>,
}

impl Slot {
    /// The peer proved who it is: this connection is never evicted.
    pub fn authenticated(&self) {
        self.admission.lock().forget_unauthenticated(self.id);
    }

    /// Completes when this connection must close to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        state.open -= 1;
        state.forget_unauthenticated(self.id);
        state.evicted.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn was_evicted(slot: &Slot) -> bool {
        let future = std::pin::pin!(slot.evicted());
        matches!(future.poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(()))
    }

    fn port(total: usize, per_source: usize) -> Arc<Admission> {
        Admission::new(AdmissionLimits { total, unauthenticated_per_source: per_source })
    }

    #[test]
    fn one_source_at_its_cap_loses_its_own_oldest_and_nobody_elses() {
        let admission = port(100, 2);
        let other = admission.admit(ip(2)).unwrap();
        let first = admission.admit(ip(1)).unwrap();
        let second = admission.admit(ip(1)).unwrap();
        let third = admission.admit(ip(1)).unwrap();
        assert!(was_evicted(&first));
        assert!(!was_evicted(&second) && !was_evicted(&third) && !was_evicted(&other));
        assert_eq!(admission.open(), 4, "the evicted one counts until it has closed");
        drop(first);
        assert_eq!(admission.open(), 3);
    }

    #[test]
    fn a_full_port_makes_room_by_closing_the_oldest_unauthenticated_connection() {
        let admission = port(3, 10);
        let trusted = admission.admit(ip(1)).unwrap();
        trusted.authenticated();
        let idle_a = admission.admit(ip(2)).unwrap();
        let idle_b = admission.admit(ip(3)).unwrap();
        let newcomer = admission.admit(ip(4)).expect("room is made");
        assert!(was_evicted(&idle_a), "the oldest unauthenticated one gives way");
        assert!(!was_evicted(&trusted) && !was_evicted(&idle_b) && !was_evicted(&newcomer));
        // The evicted connection has not closed yet, and the next arrival
        // does not wait for it: it evicts the next oldest.
        let another = admission.admit(ip(5)).expect("room is made again");
        assert!(was_evicted(&idle_b));
        drop((idle_a, idle_b));
        assert_eq!(admission.open(), 3);
        drop((newcomer, another));
    }

    #[test]
    fn authenticated_connections_are_never_evicted_and_a_full_port_of_them_refuses() {
        let admission = port(2, 1);
        let a = admission.admit(ip(1)).unwrap();
        a.authenticated();
        let b = admission.admit(ip(1)).unwrap();
        b.authenticated();
        assert!(admission.admit(ip(3)).is_none());
        assert!(!was_evicted(&a) && !was_evicted(&b));
        drop(a);
        let c = admission.admit(ip(3)).expect("a place was freed");
        // An authenticated connection does not count against its source's cap.
        let d = admission.admit(ip(1));
        assert!(d.is_some() && was_evicted(&c), "the port is full: the unauthenticated one gives way");
    }

    #[test]
    fn counts_return_to_zero_whatever_the_order_of_events() {
        let admission = port(2, 1);
        let slots: Vec<Slot> = (0..10).filter_map(|i| admission.admit(ip(i % 3))).collect();
        for slot in &slots[..3] {
            slot.authenticated();
        }
        drop(slots);
        let state = admission.lock();
        assert_eq!(state.open, 0);
        assert!(state.unauthenticated.is_empty() && state.unauthenticated_by_source.is_empty());
        assert!(state.evicted.is_empty());
    }
}
