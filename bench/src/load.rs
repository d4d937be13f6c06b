//! Closed-loop load: N keep-alive connections, each sending the same request
//! back-to-back in its own task, with per-request latency recording.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use crate::client::{Client, Target};
use crate::Error;

/// What one load phase measured.
#[derive(Debug, Default)]
pub struct LoadResult {
    /// Requests answered with 200 and an `output` field (in every result,
    /// for a batch).
    pub ok: u64,
    /// Failed requests: wrong status, missing `output`, or transport error.
    pub errors: u64,
    /// First error seen, for the report.
    pub first_error: Option<String>,
    /// Wall time from the first request until the last worker stopped.
    pub elapsed: Duration,
    /// Latency of every answered request in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency quantile `q` (0..=1) in milliseconds, nearest rank.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
        self.latencies_us.get(rank).map(|&us| us as f64 / 1000.0)
    }

    /// Counts an error and keeps the first message.
    pub fn error(&mut self, msg: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(msg());
        }
    }

    /// Folds a worker's result into the total (latencies sorted later).
    pub fn merge(&mut self, other: LoadResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

/// Fixed parameters of one load phase, shared by its workers.
#[derive(Clone)]
pub struct Phase {
    /// Server address.
    pub addr: SocketAddr,
    /// TLS connector (also used to reconnect after a transport error).
    pub connector: TlsConnector,
    /// Endpoint.
    pub target: Target,
    /// Request body, identical for every request.
    pub body: Bytes,
    /// Items in the body (1: a single request).
    pub batch: usize,
}

/// Opens `connections` connections (handshakes are not measured), then runs
/// the closed loop on all of them for `duration`.
pub async fn run(phase: &Phase, connections: usize, duration: Duration) -> Result<LoadResult, Error> {
    let mut connecting = JoinSet::new();
    for _ in 0..connections {
        let phase = phase.clone();
        connecting.spawn(async move { Client::connect(phase.addr, &phase.connector).await });
    }
    let mut clients = Vec::with_capacity(connections);
    while let Some(joined) = connecting.join_next().await {
        clients.push(joined??);
    }

    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for client in clients {
        workers.spawn(worker(client, phase.clone(), deadline));
    }
    let mut total = LoadResult::default();
    while let Some(joined) = workers.join_next().await {
        total.merge(joined?);
    }
    total.elapsed = start.elapsed();
    total.latencies_us.sort_unstable();
    Ok(total)
}

/// One connection's closed loop until `deadline`. A transport error is
/// counted and the connection re-established; if that fails the worker stops.
async fn worker(mut client: Client, phase: Phase, deadline: Instant) -> LoadResult {
    let mut result = LoadResult::default();
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            return result;
        }
        match client.post(&phase.target, phase.body.clone()).await {
            Ok((status, body)) => {
                let us = sent.elapsed().as_micros().min(u32::MAX as u128) as u32;
                result.latencies_us.push(us);
                if status.as_u16() == 200 && answered(&body, phase.batch) {
                    result.ok += 1;
                } else {
                    result.error(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
                }
            }
            Err(e) => {
                result.error(|| format!("transport: {e}"));
                match Client::connect(phase.addr, &phase.connector).await {
                    Ok(c) => client = c,
                    Err(e) => {
                        result.error(|| format!("reconnect: {e}"));
                        return result;
                    }
                }
            }
        }
    }
}

/// True if `body` answers every item: for a single request an `output`,
/// for a batch `batch` results with an `output` and none with an `error`
/// (counted in the text: parsing 100 results would load the client core).
fn answered(body: &[u8], batch: usize) -> bool {
    if batch == 1 {
        return has_output(body);
    }
    let count = |needle: &[u8]| body.windows(needle.len()).filter(|w| *w == needle).count();
    body.starts_with(b"{\"results\":[") && count(b"\"output\":\"") == batch && count(b"\"error\":") == 0
}

/// True if `body` is a JSON object with a non-empty string field `output`.
fn has_output(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("output")?.as_str().map(|s| !s.is_empty()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::answered;

    #[test]
    fn a_batch_is_answered_when_every_item_has_an_output() {
        assert!(answered(br#"{"output":"AQ=="}"#, 1));
        assert!(!answered(br#"{"error":"x"}"#, 1));
        let two = br#"{"results":[{"reference":"0","output":"AQ=="},{"reference":"1","output":"AQ=="}]}"#;
        assert!(answered(two, 2));
        assert!(!answered(two, 3));
        assert!(!answered(br#"{"results":[{"output":"AQ=="},{"error":"no","status":404}]}"#, 2));
    }
}
