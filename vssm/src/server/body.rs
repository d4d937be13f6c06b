//! Reading request bodies within limits: a size limit per request (413), a
//! stall timeout and a total deadline (408), and a memory budget (503). The
//! connection layer attaches a [`BodyPolicy`] to every request it serves:
//! authenticated clients share one large budget, while each unauthenticated
//! connection (health, join, the API before bootstrap) gets a small budget
//! of its own, so nothing an unauthenticated peer sends can take the memory
//! that authenticated traffic needs; admission caps bound how many such
//! connections there are.

use crate::error::{Classify, ErrorKind};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes that the request bodies of all authenticated client connections
/// may hold at once (buffer capacity, counted until the request has been
/// handled). Larger than the largest single body (a 64 MiB restore) with
/// room to spare.
pub const BODY_BUDGET_BYTES: usize = 96 << 20;

/// The budget shared by the bodies of authenticated clients.
static CLIENT_BODY_BUDGET: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(BODY_BUDGET_BYTES)));

/// A body that sends nothing for this long is abandoned with 408.
pub const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole body of an authenticated client must arrive within this time
/// (a 64 MiB restore at 1 MB/s takes about a minute).
pub const AUTHENTICATED_BODY_DEADLINE: Duration = Duration::from_secs(120);

/// The whole body of an unauthenticated peer must arrive within this time
/// (its bodies are at most 64 KiB).
pub const UNAUTHENTICATED_BODY_DEADLINE: Duration = Duration::from_secs(10);

/// How the request bodies of one connection are paid for and timed; the
/// connection layer chooses it once per connection.
#[derive(Clone, Debug)]
pub struct BodyPolicy {
    budget: Option<Arc<Semaphore>>,
    deadline: Duration,
}

impl BodyPolicy {
    /// Authenticated clients: the shared client budget.
    pub fn authenticated_client() -> Self {
        BodyPolicy { budget: Some(Arc::clone(&CLIENT_BODY_BUDGET)), deadline: AUTHENTICATED_BODY_DEADLINE }
    }

    /// An unauthenticated connection: a budget of `bytes` for itself alone
    /// (one body of the port's largest size; HTTP/2 streams share it).
    pub fn unauthenticated_connection(bytes: usize) -> Self {
        BodyPolicy { budget: Some(Arc::new(Semaphore::new(bytes))), deadline: UNAUTHENTICATED_BODY_DEADLINE }
    }

    /// Cluster peers holding the RPC key: no budget (one push may be larger
    /// than the client budget), the authenticated deadline.
    pub fn cluster_peer() -> Self {
        BodyPolicy { budget: None, deadline: AUTHENTICATED_BODY_DEADLINE }
    }
}

/// Reads the body under its connection's `policy`: more than `limit` bytes
/// is refused with 413, a spent budget with 503, a stalled or too slow body
/// with 408. The budget charge lasts as long as the returned bytes.
pub async fn read_body(request: Request<Incoming>, limit: usize, policy: &BodyPolicy) -> Result<Bytes, BodyError> {
    let declared =
        request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut body).await;
        return Err(Refusal::TooLarge.into_error(limit));
    }
    let mut collector = BodyCollector::new(limit, policy.budget.clone());
    let collected = tokio::time::timeout(policy.deadline, async {
        loop {
            let frame = match tokio::time::timeout(BODY_STALL_TIMEOUT, body.frame()).await {
                Err(_) => return Err(Refusal::Stalled.into_error(limit)),
                Ok(None) => return Ok(()),
                Ok(Some(Err(_))) => return Err(BodyError::Unreadable),
                Ok(Some(Ok(frame))) => frame,
            };
            if let Some(data) = frame.data_ref() {
                if let Err(refusal) = collector.push(data) {
                    // The client gets its 413 or 503 instead of a reset:
                    // the rest is read and dropped, never buffered.
                    drain(&mut body).await;
                    return Err(refusal.into_error(limit));
                }
            }
        }
    })
    .await;
    match collected {
        Err(_) => Err(BodyError::TooSlow { deadline: policy.deadline }),
        Ok(Err(error)) => Err(error),
        Ok(Ok(())) => Ok(collector.finish()),
    }
}

/// Reads and discards the rest of a refused body (bounded in bytes and
/// time), so the client gets its 413 or 503 instead of a reset stream
/// (HTTP/2) or a closed connection.
async fn drain(body: &mut Incoming) {
    const MAX_DRAIN: usize = 16 << 20;
    let mut drained = 0usize;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = body.frame().await {
            drained += frame.data_ref().map_or(0, |d| d.len());
            if drained > MAX_DRAIN {
                break;
            }
        }
    })
    .await;
}

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the endpoint's limit.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The endpoint's limit in bytes.
        limit: usize,
    },
    /// The memory budget of all bodies in flight is spent.
    #[error("server busy: too many request bytes in flight; retry later")]
    Busy,
    /// The client stopped sending.
    #[error("request body stalled for {} s", BODY_STALL_TIMEOUT.as_secs())]
    Stalled,
    /// The whole body did not arrive in time.
    #[error("request body not complete within {} s", deadline.as_secs())]
    TooSlow {
        /// The deadline of this connection's bodies.
        deadline: Duration,
    },
    /// The connection failed while the body was read.
    #[error("could not read the request body")]
    Unreadable,
}

impl Classify for BodyError {
    fn kind(&self) -> ErrorKind {
        match self {
            BodyError::TooLarge { .. } => ErrorKind::PayloadTooLarge,
            BodyError::Busy => ErrorKind::ServiceUnavailable,
            BodyError::Stalled | BodyError::TooSlow { .. } => ErrorKind::RequestTimeout,
            BodyError::Unreadable => ErrorKind::BadRequest,
        }
    }
}

/// Why the collector refused a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    TooLarge,
    BudgetExhausted,
    Stalled,
}

impl Refusal {
    fn into_error(self, limit: usize) -> BodyError {
        match self {
            Refusal::TooLarge => BodyError::TooLarge { limit },
            Refusal::BudgetExhausted => BodyError::Busy,
            Refusal::Stalled => BodyError::Stalled,
        }
    }
}

/// Collects a body and charges its buffer's capacity to the budget as the
/// buffer grows (doubling, capped at the limit), so what it holds is
/// always paid for. Bodies carry passwords, key bytes and plaintexts:
/// every buffer, including those outgrown, is wiped when freed by the
/// process's zeroing allocator (`main.rs`, SECURITY.md "Memory
/// disclosure"), which wipes with `memset`. A `Zeroizing` buffer wiped the
/// same bytes a second time, one volatile byte store at a time: 250
/// instructions per item of a batch of 64-byte encryptions (callgrind).
struct BodyCollector {
    data: Vec<u8>,
    limit: usize,
    budget: Option<Arc<Semaphore>>,
    charge: Option<OwnedSemaphorePermit>,
}

impl BodyCollector {
    fn new(limit: usize, budget: Option<Arc<Semaphore>>) -> Self {
        BodyCollector { data: Vec::new(), limit, budget, charge: None }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), Refusal> {
        let needed = self.data.len() + chunk.len();
        if needed > self.limit {
            return Err(Refusal::TooLarge);
        }
        if needed > self.data.capacity() {
            let capacity = needed.max(self.data.capacity() * 2).min(self.limit);
            self.pay(capacity - self.data.capacity())?;
            self.data.reserve_exact(capacity - self.data.len());
        }
        self.data.extend_from_slice(chunk);
        Ok(())
    }

    fn pay(&mut self, bytes: usize) -> Result<(), Refusal> {
        let Some(budget) = &self.budget else { return Ok(()) };
        let bytes = u32::try_from(bytes).map_err(|_| Refusal::BudgetExhausted)?;
        let permit = Arc::clone(budget).try_acquire_many_owned(bytes).map_err(|_| Refusal::BudgetExhausted)?;
        match &mut self.charge {
            Some(charge) => charge.merge(permit),
            None => self.charge = Some(permit),
        }
        Ok(())
    }

    /// The body, still charged to the budget until the last copy of the
    /// returned `Bytes` is dropped.
    fn finish(self) -> Bytes {
        Bytes::from_owner(BodyBuffer { data: self.data, _charge: self.charge })
    }
}

/// A body buffer together with its charge on the budget, if any.
struct BodyBuffer {
    data: Vec<u8>,
    _charge: Option<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for BodyBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(bytes))
    }

    #[test]
    fn capacity_is_charged_as_the_buffer_grows_and_returned_with_the_bytes() {
        let budget = budget(1000);
        let mut collector = BodyCollector::new(600, Some(Arc::clone(&budget)));
        collector.push(&[1; 100]).unwrap();
        assert_eq!(budget.available_permits(), 900);
        collector.push(&[2; 50]).unwrap(); // doubles to 200
        assert_eq!(budget.available_permits(), 800);
        collector.push(&[3; 300]).unwrap(); // needs 450 > 400: grows to 450
        assert_eq!(budget.available_permits(), 550);
        collector.push(&[4; 10]).unwrap(); // doubling is capped at the limit
        assert_eq!(budget.available_permits(), 400);
        let body = collector.finish();
        assert_eq!(body.len(), 460);
        assert_eq!(&body[..3], &[1, 1, 1]);
        assert_eq!(&body[455..], &[4; 5]);
        let copy = body.slice(10..20);
        drop(body);
        assert_eq!(budget.available_permits(), 400, "a live slice keeps the charge");
        drop(copy);
        assert_eq!(budget.available_permits(), 1000);
    }

    #[test]
    fn a_full_budget_refuses_and_a_refused_body_gives_back_its_charge() {
        let budget = budget(300);
        let mut first = BodyCollector::new(1000, Some(Arc::clone(&budget)));
        first.push(&[0; 200]).unwrap();
        let mut second = BodyCollector::new(1000, Some(Arc::clone(&budget)));
        second.push(&[0; 60]).unwrap();
        assert_eq!(second.push(&[0; 60]), Err(Refusal::BudgetExhausted));
        drop(second);
        assert_eq!(budget.available_permits(), 100);
        drop(first);
        assert_eq!(budget.available_permits(), 300);
    }

    #[test]
    fn over_the_limit_is_too_large_whatever_the_budget() {
        let mut collector = BodyCollector::new(10, Some(budget(1000)));
        collector.push(&[0; 10]).unwrap();
        assert_eq!(collector.push(&[0; 1]), Err(Refusal::TooLarge));
        let mut unbudgeted = BodyCollector::new(10, None);
        assert_eq!(unbudgeted.push(&[0; 11]), Err(Refusal::TooLarge));
        assert_eq!(unbudgeted.push(&[0; 10]), Ok(()));
        assert_eq!(unbudgeted.finish().len(), 10);
    }

    #[test]
    fn refusals_become_their_body_errors() {
        assert_eq!(Refusal::TooLarge.into_error(5), BodyError::TooLarge { limit: 5 });
        assert_eq!(Refusal::BudgetExhausted.into_error(5), BodyError::Busy);
        assert_eq!(Refusal::Stalled.into_error(5), BodyError::Stalled);
    }
}
