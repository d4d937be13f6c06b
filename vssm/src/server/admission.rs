//! Connection admission for one port: how many connections it holds, and
//! which one gives way when an unauthenticated peer tries to fill it.
//!
//! A connection is *unauthenticated* from accept until it proves who it is
//! (a verified client certificate on the API and sync ports); on ports
//! where nobody proves anything (health, join, the API before bootstrap) it
//! stays unauthenticated for its whole life. Only unauthenticated
//! connections are ever closed to make room:
//! - a source holding `unauthenticated_per_source` of them loses its
//!   oldest to its newest, so one source cannot touch anyone else's;
//! - a full port closes the oldest unauthenticated connection of the source
//!   that holds the most of them (fair share): a client with one or a few
//!   connections in progress — a joiner waiting for AWS, a health check —
//!   gives way only after every bigger holder has, so an attacker spread
//!   over many addresses must hold fewer connections per address than the
//!   client to reach it;
//! - a port full of authenticated connections refuses new ones.
//!
//! A source is an IPv4 address, or an IPv6 /64 (one host usually owns a
//! whole /64), as in the admin password throttle.

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
        let source = source_key(source);
        let mut state = self.lock();
        let from_source = state.unauthenticated_by_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.limits.unauthenticated_per_source {
            state.evict_oldest_of(source);
        }
        if state.open - state.evicted.len() >= self.limits.total {
            // The source holding the most (ties: any of them) gives way.
            let biggest = state.unauthenticated_by_source.iter().max_by_key(|(_, count)| **count).map(|(s, _)| *s)?;
            state.evict_oldest_of(biggest);
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

/// The source an address counts as: IPv4 as is, IPv6 by its /64 (one host
/// commonly holds a whole /64), IPv4-mapped IPv6 as its IPv4 address. The
/// admin password throttle counts sources the same way.
pub fn source_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

impl State {
    /// Evicts the oldest unauthenticated connection of `source`, if any.
    fn evict_oldest_of(&mut self, source: IpAddr) {
        let oldest = self.unauthenticated.iter().find(|(_, w)| w.source == source).map(|(id, _)| *id);
        if let Some(id) = oldest {
            self.evict(id);
        }
    }

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
    fn a_full_port_makes_room_by_closing_the_oldest_connection_of_the_biggest_source() {
        let admission = port(4, 10);
        let trusted = admission.admit(ip(1)).unwrap();
        trusted.authenticated();
        let joiner = admission.admit(ip(2)).unwrap(); // the oldest, alone at its address
        let flood_a = admission.admit(ip(3)).unwrap();
        let flood_b = admission.admit(ip(3)).unwrap();
        let newcomer = admission.admit(ip(4)).expect("room is made");
        assert!(was_evicted(&flood_a), "the biggest source's oldest gives way, not the older joiner");
        assert!(!was_evicted(&trusted) && !was_evicted(&joiner) && !was_evicted(&flood_b));
        // The evicted connection has not closed yet, and the next arrival
        // does not wait for it: with one each now, one of them gives way.
        let another = admission.admit(ip(5)).expect("room is made again");
        assert_eq!([&joiner, &flood_b, &newcomer].iter().filter(|s| was_evicted(s)).count(), 1);
        drop((flood_a, flood_b, joiner));
        assert_eq!(admission.open(), 3);
        drop((newcomer, another));
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source_and_mapped_ipv4_is_its_ipv4() {
        let admission = port(100, 2);
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let first = admission.admit(v6(1)).unwrap();
        let _second = admission.admit(v6(2)).unwrap();
        let _third = admission.admit(v6(3)).unwrap();
        assert!(was_evicted(&first), "other addresses of the /64 count together");
        let v4 = admission.admit(ip(9)).unwrap();
        let _mapped = admission.admit("::ffff:10.0.0.9".parse().unwrap()).unwrap();
        let _mapped_again = admission.admit("::ffff:10.0.0.9".parse().unwrap()).unwrap();
        assert!(was_evicted(&v4));
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
