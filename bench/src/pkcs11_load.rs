//! Closed-loop load through the PKCS#11 module: N threads, one session
//! each, signing back-to-back with per-call latency recording (the
//! counterpart of `load.rs` for a multi-threaded PKCS#11 application).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use crate::load::LoadResult;
use crate::pkcs11::Token;
use crate::Error;

/// What every thread signs, and with what.
pub struct Signing {
    /// Makes the mechanism (it hashes the input, as the JSON op's algorithm does).
    pub mechanism: fn() -> Mechanism<'static>,
    /// The private key.
    pub key: ObjectHandle,
    /// The data signed on every call.
    pub input: Vec<u8>,
}

/// Opens `threads` sessions and signs once on each (session set-up and the
/// module's first connections are not measured, as the TLS handshakes of
/// `load.rs` are not), then signs on all of them for `duration`.
pub fn run(token: &Token, signing: &Signing, threads: usize, duration: Duration) -> Result<LoadResult, Error> {
    let ready = Barrier::new(threads + 1);
    let (start, outcomes) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(|| worker(token, signing, &ready, duration))).collect();
        ready.wait();
        let start = Instant::now();
        let outcomes: Vec<_> = workers.into_iter().map(|w| w.join().expect("signing thread panicked")).collect();
        (start, outcomes)
    });
    let mut total = LoadResult { elapsed: start.elapsed(), ..LoadResult::default() };
    for outcome in outcomes {
        total.merge(outcome?);
    }
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// A session of its own with one signature made (the module's first
/// connection for this thread, if the pool has none idle).
fn session(token: &Token, signing: &Signing, mechanism: &Mechanism) -> Result<Session, String> {
    let session = token.context.open_ro_session(token.slot).map_err(|e| format!("C_OpenSession: {e}"))?;
    session.sign(mechanism, signing.key, &signing.input).map_err(|e| format!("first C_Sign: {e}"))?;
    Ok(session)
}

/// One thread: its session and a first signature, the start line shared
/// with the others, then signing until `duration` has passed.
fn worker(token: &Token, signing: &Signing, ready: &Barrier, duration: Duration) -> Result<LoadResult, Error> {
    let mechanism = (signing.mechanism)();
    let prepared = session(token, signing, &mechanism);
    // Every thread reaches the start line, ready or not, so that none waits forever.
    ready.wait();
    let session = prepared?;
    let deadline = Instant::now() + duration;
    let mut result = LoadResult::default();
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            return Ok(result);
        }
        match session.sign(&mechanism, signing.key, &signing.input) {
            Ok(signature) if !signature.is_empty() => {
                result.latencies_us.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                result.ok += 1;
            }
            Ok(_) => result.error(|| "C_Sign: empty signature".into()),
            Err(e) => result.error(|| format!("C_Sign: {e}")),
        }
    }
}
