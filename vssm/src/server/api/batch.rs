//! Batches: every crypto endpoint also takes `{"items": [ ... ]}`, each item
//! the body of one single request plus an optional `reference` that the
//! answer echoes. Each item goes through [`crypto_ops::run`] exactly as a
//! single request would (the same `deny_unknown_fields` parse, the same
//! per-key authorization, the same error classification), and the answer
//! is always 200 `{"results": [...]}` in item order: the single response's
//! fields, or `error` and `status` where the single request would have
//! failed. Only a body that is not a batch of at most [`MAX_BATCH_ITEMS`]
//! objects fails as a whole (400).
//!
//! A body is a batch when it is a JSON object with an `items` key; no
//! single request has that field, so every body that was valid before is
//! answered as before, byte for byte.
//!
//! Parsing: a batch is first parsed in one pass as `{"items": [R…]}` with
//! the endpoint's request type `R` (strings borrowed from the body, its
//! UTF-8 checked once): [`Typed`], by the [`plain_json`] reader when the
//! body is plain JSON (no escapes, no floats), else by `serde_json`. Only
//! when that fails anywhere does the batch go [`item_by_item`]: split into
//! [`RawValue`] slices, each parsed on its own, so each bad item gets its
//! own error. All read a valid item with the same derived parser, and no
//! item runs before the whole body has parsed. Keys are looked up once per
//! batch ([`Lookups`]). Measured (callgrind, `scripts/bench-callgrind.sh`),
//! an AES-256-GCM item of 64 bytes went from 19,800 instructions (items
//! split into slices, every item parsed twice) to 8,000 with `serde_json`,
//! and to 6,900 with the plain reader. Reading and running one item at a
//! time saved 500 more (the allocator's slow path for a hundred input
//! buffers alive at once), but ran the items of a body that turned out,
//! later in it, not to be a valid batch (answered 400 as a whole).
//!
//! Memory: the typed pass holds every item's decoded request at once (at
//! most [`MAX_BATCH_ITEMS`], and no more bytes than the body); the
//! item-by-item pass keeps the items as slices of the body, rebuilding
//! only an item with a `reference`, in one buffer reused by every item; an
//! `items` array longer than the limit is counted, not stored. The results
//! are written into one buffer as they are made. `test_batch.py` sends ten
//! 1 MiB batches of 1000 AES-GCM encryptions of 700 bytes and ten of 1000
//! empty items, and holds the node under 8 MiB above its RSS before them.
//!
//! Where the work runs: on the connection's I/O thread, like a single
//! request, giving the thread back to its other connections after every
//! [`SLICE`] of crypto ([`tokio::task::yield_now`]). Measured on a node
//! pinned to one core (one I/O thread) with a 1000-item RSA-4096 signing
//! batch (3 to 4 s of crypto) and single AES-GCM requests sent one after
//! another on a second connection meanwhile: without yielding, those
//! requests waited for the whole batch (4.1 s, twice); with it they were
//! answered throughout, p50 3 ms, p99 9 to 10 ms, at most 27 ms.
//! Handing the batch to the runtime's blocking pool would bound that wait
//! too, but costs a thread hand-off and an owned copy of the request per
//! batch, and lets two large batches of one I/O thread (its two blocking
//! threads) compete with every other thread's connections for the cores;
//! cooperative slices keep a batch on the core and in the queue of its own
//! connection's thread, at the cost of one clock read per item.

use super::crypto_ops::{self, Answer, Endpoint};
use super::key_use::Lookups;
use super::Caller;
use super::{ApiError, ApiResult};
use crate::error::{Classify, ErrorKind};
use crate::server::json::JsonError;
use memchr::memmem::Finder;
use serde::de::value::{CowStrDeserializer, MapAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Most items in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

/// Longest `reference`, in bytes (UTF-8, after JSON unescaping).
pub const MAX_REFERENCE_BYTES: usize = 256;

/// Crypto time a batch may take on its I/O thread before it lets the
/// thread's other connections run.
pub const SLICE: Duration = Duration::from_millis(2);

/// Why a batch request failed as a whole, or why one item's `reference`
/// was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// More items than [`MAX_BATCH_ITEMS`] (how many there were).
    #[error("a batch holds at most {MAX_BATCH_ITEMS} items, not {0}")]
    TooManyItems(usize),
    /// An item that is not a JSON object (its index).
    #[error("items[{0}] is not a JSON object")]
    NotAnObject(usize),
    /// An item's `reference` is neither null nor a string of at most
    /// [`MAX_REFERENCE_BYTES`].
    #[error("reference must be a string of at most {MAX_REFERENCE_BYTES} bytes")]
    InvalidReference,
}

impl Classify for BatchError {
    fn kind(&self) -> ErrorKind {
        match self {
            BatchError::TooManyItems(_) | BatchError::NotAnObject(_) | BatchError::InvalidReference => {
                ErrorKind::BadRequest
            }
        }
    }
}

/// True when `body` is a JSON object with an `items` key (a batch), as far
/// as it could be read up to that key. Bodies without the text `items` (nor
/// a `\u` escape that could spell it) are single requests without being
/// parsed here.
pub fn is_batch(body: &[u8]) -> bool {
    if !mentions(body, &ITEMS) {
        return false;
    }
    let found = Cell::new(false);
    let _ = serde_json::Deserializer::from_slice(body).deserialize_map(FindItemsKey(&found));
    found.get()
}

/// Finds `items` in a body (built once: a finder costs more to build than
/// to run on an item).
static ITEMS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("items"));
/// Finds `reference` in an item.
static REFERENCE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("reference"));
/// Finds the start of a `\u` escape, which may spell either name.
static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\\u"));

/// Whether `text` may hold the JSON key `name`: the text itself or an escape.
fn mentions(text: &[u8], name: &Finder) -> bool {
    name.find(text).is_some() || ESCAPE.find(text).is_some()
}

/// Runs the batch `body` on `endpoint`: 200 with one result per item, or
/// 400 when the body is not a batch of at most [`MAX_BATCH_ITEMS`] objects.
pub async fn run(caller: Caller<'_>, endpoint: Endpoint, body: &[u8]) -> ApiResult {
    // The whole body's UTF-8 checked once, not each string of it.
    let Ok(text) = std::str::from_utf8(body) else { return item_by_item(caller, endpoint, body).await };
    match crypto_ops::visit_endpoint(endpoint, Typed { caller, text }) {
        Some(parsed) => parsed.await,
        None => item_by_item(caller, endpoint, body).await,
    }
}

/// The batch parsed in one pass as the endpoint's request type, then run:
/// by the [`plain_json`] reader when the body is plain JSON (no escapes,
/// no floats: what programs send), else by `serde_json`. None when that
/// parse fails anywhere (a malformed or unknown field, a bad `reference`,
/// too many items, …): then [`item_by_item`] runs the batch and tells
/// which items were wrong. Nothing runs before the whole body has parsed,
/// so a body answered 400 as a whole runs no item. Every valid item reads
/// the same either way: the same derived parser sees the same members.
struct Typed<'a> {
    caller: Caller<'a>,
    text: &'a str,
}

impl<'a> crypto_ops::EndpointVisitor<'a> for Typed<'a> {
    type Output = Option<Pin<Box<dyn Future<Output = ApiResult> + Send + 'a>>>;
    fn visit<R: Deserialize<'a> + Send + 'a>(self, call: fn(Caller, R) -> Answer) -> Self::Output {
        let batch: TypedBatch<'a, R> = match plain_json::from_str(self.text) {
            Ok(batch) => batch,
            Err(plain_json::NotPlain) => serde_json::from_str(self.text).ok()?,
        };
        Some(Box::pin(async move {
            let lookups = Lookups::default();
            let caller = Caller { lookups: Some(&lookups), ..self.caller };
            let mut results = Results::new(self.text.len());
            for TypedItem { reference, request } in batch.items {
                results.push(reference.as_deref(), call(caller, request)).await?;
            }
            Ok(results.finish())
        }))
    }
}

/// Splits the batch into items ([`RawValue`] slices of the body) and runs
/// each as a single request, so each item that is not a valid request gets
/// its own error.
async fn item_by_item(caller: Caller<'_>, endpoint: Endpoint, body: &[u8]) -> ApiResult {
    let request: BatchRequest = super::parse_json(body)?;
    let Items { items, count } = request.items;
    if count > MAX_BATCH_ITEMS {
        return Err(BatchError::TooManyItems(count).into());
    }
    if let Some(index) = items.iter().position(|item| !item.get().starts_with('{')) {
        return Err(BatchError::NotAnObject(index).into());
    }
    let lookups = Lookups::default();
    let caller = Caller { lookups: Some(&lookups), ..caller };
    let mut results = Results::new(body.len());
    let mut scratch = Vec::new();
    for item in items {
        match split(item.get(), &mut scratch) {
            Ok(Item { reference, request }) => {
                let answer = crypto_ops::run(caller, endpoint, request);
                results.push(reference.as_deref(), answer).await?
            }
            Err(error) => results.push(None, Err(error)).await?,
        }
    }
    Ok(results.finish())
}

/// The answer of a batch, written as its items are run; gives the I/O
/// thread back after every [`SLICE`] of work.
struct Results {
    out: Vec<u8>,
    count: usize,
    /// When the current slice ends (compared, not subtracted: an
    /// `elapsed()` per item cost 80 instructions more).
    slice_end: Instant,
}

impl Results {
    /// An empty answer for a body of `body_len` bytes (the answer of a batch
    /// of encryptions is about the body's size).
    fn new(body_len: usize) -> Results {
        let mut out = Vec::with_capacity(body_len + 64);
        out.extend_from_slice(b"{\"results\":[");
        Results { out, count: 0, slice_end: Instant::now() + SLICE }
    }

    /// Appends the next item's result.
    async fn push(&mut self, reference: Option<&str>, answer: Answer) -> Result<(), ApiError> {
        if self.count > 0 {
            self.out.push(b',');
        }
        self.count += 1;
        write_result(&mut self.out, reference, answer)?;
        // Every item: a batch may mix cheap items with private-key operations.
        if Instant::now() >= self.slice_end {
            tokio::task::yield_now().await;
            self.slice_end = Instant::now() + SLICE;
        }
        Ok(())
    }

    /// The 200 response.
    fn finish(mut self) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
        self.out.extend_from_slice(b"]}");
        crate::server::json::json_bytes_response(self.out)
    }
}

/// Appends the result of one item to `out`.
fn write_result(out: &mut Vec<u8>, reference: Option<&str>, answer: Answer) -> Result<(), ApiError> {
    let written = match answer {
        Ok(answer) => return Ok(answer.write_json(out, reference)?),
        Err(error) => {
            let reply = crate::error::logged_reply(&error);
            let message = without_position(&reply.message);
            let failure = Failure { reference, error: message, status: reply.status.as_u16() };
            serde_json::to_writer(&mut *out, &failure)
        }
    };
    written.map_err(|_| JsonError::Encode.into())
}

/// `message` without the ` at line L column C` that serde_json puts after an
/// unknown or missing field: within a batch it would count in the item as
/// rebuilt without its `reference`, not in the body the client sent.
fn without_position(message: &str) -> &str {
    let Some(at) = message.rfind(" at line ") else { return message };
    let position = &message[at + " at line ".len()..];
    let is_number = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match position.split_once(" column ") {
        Some((line, column)) if is_number(line) && is_number(column) => &message[..at],
        _ => message,
    }
}

/// A failed item: its reference, the single request's error message and status.
#[derive(Serialize)]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
    error: &'a str,
    status: u16,
}

/// One item: its reference and the single request it holds.
struct Item<'i> {
    reference: Option<Cow<'i, str>>,
    request: &'i [u8],
}

/// Splits `item` (a JSON object) into its `reference` and the request
/// without it: the item itself when it has no `reference`, else the item
/// rebuilt in `scratch` without that field (keys and other values copied
/// as they are).
fn split<'i>(item: &'i str, scratch: &'i mut Vec<u8>) -> Result<Item<'i>, ApiError> {
    if !mentions(item.as_bytes(), &REFERENCE) {
        return Ok(Item { reference: None, request: item.as_bytes() });
    }
    scratch.clear();
    let mut deserializer = serde_json::Deserializer::from_str(item);
    // The item is an object of valid JSON: the only error is a second `reference`.
    let reference = deserializer
        .deserialize_map(Strip { out: scratch })
        .map_err(|_| JsonError::Invalid("duplicate field `reference`".into()))?;
    // null is the default, as for every field in the proto3 JSON mapping.
    let reference = match reference.filter(|raw| raw.get() != "null") {
        None => None,
        Some(raw) => match serde_json::from_str::<Text>(raw.get()) {
            Ok(Text(text)) if text.len() <= MAX_REFERENCE_BYTES => Some(text),
            _ => return Err(BatchError::InvalidReference.into()),
        },
    };
    Ok(Item { reference, request: scratch })
}

/// `{"items": [...]}`, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRequest<'a> {
    #[serde(borrow)]
    items: Items<'a>,
}

/// The items as slices of the body: at most [`MAX_BATCH_ITEMS`] kept, all counted.
struct Items<'a> {
    items: Vec<&'a RawValue>,
    count: usize,
}

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ItemsVisitor<'a> {
            type Value = Items<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'a>, A::Error> {
                let mut items = Vec::new();
                while items.len() < MAX_BATCH_ITEMS {
                    match seq.next_element::<&'a RawValue>()? {
                        Some(item) => items.push(item),
                        None => return Ok(Items { count: items.len(), items }),
                    }
                }
                let mut count = items.len();
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                Ok(Items { items, count })
            }
        }
        deserializer.deserialize_seq(ItemsVisitor(std::marker::PhantomData))
    }
}

/// `{"items": [...]}` with every item parsed as the request `R`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "R: Deserialize<'de>, 'de: 'body")]
struct TypedBatch<'body, R> {
    #[serde(borrow, deserialize_with = "at_most_max_items")]
    items: Vec<TypedItem<'body, R>>,
}

/// The items, failing at item [`MAX_BATCH_ITEMS`] + 1 rather than storing it.
fn at_most_max_items<'de, D: Deserializer<'de>, R: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<TypedItem<'de, R>>, D::Error> {
    struct Bounded<R>(PhantomData<R>);
    impl<'de, R: Deserialize<'de>> Visitor<'de> for Bounded<R> {
        type Value = Vec<TypedItem<'de, R>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of items")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == MAX_BATCH_ITEMS {
                    return Err(de::Error::custom("too many items"));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_seq(Bounded(PhantomData))
}

/// One item: its `reference` and the request made of its other members.
struct TypedItem<'de, R> {
    reference: Option<Cow<'de, str>>,
    request: R,
}

impl<'de, R: Deserialize<'de>> Deserialize<'de> for TypedItem<'de, R> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor<R>(PhantomData<R>);
        impl<'de, R: Deserialize<'de>> Visitor<'de> for ItemVisitor<R> {
            type Value = TypedItem<'de, R>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TypedItem<'de, R>, A::Error> {
                let mut reference = Reference::Absent;
                let members = WithoutReference { map, reference: &mut reference };
                let request = R::deserialize(MapAccessDeserializer::new(members))?;
                Ok(TypedItem { reference: reference.into_value(), request })
            }
        }
        deserializer.deserialize_map(ItemVisitor(PhantomData))
    }
}

/// What an item said about its `reference`.
enum Reference<'de> {
    Absent,
    Null,
    Text(Cow<'de, str>),
}

impl<'de> Reference<'de> {
    fn into_value(self) -> Option<Cow<'de, str>> {
        match self {
            Reference::Text(text) => Some(text),
            Reference::Absent | Reference::Null => None,
        }
    }
}

/// An item's members without `reference`, which is taken aside (a string
/// of at most [`MAX_REFERENCE_BYTES`] or null; anything else fails the
/// typed parse, and [`item_by_item`] reports it).
struct WithoutReference<'r, 'de, A> {
    map: A,
    reference: &'r mut Reference<'de>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutReference<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(Text(key)) = self.map.next_key::<Text>()? else { return Ok(None) };
            if key != "reference" {
                return seed.deserialize(CowStrDeserializer::new(key)).map(Some);
            }
            if !matches!(self.reference, Reference::Absent) {
                return Err(de::Error::duplicate_field("reference"));
            }
            *self.reference = match self.map.next_value::<Option<Text>>()? {
                None => Reference::Null,
                Some(Text(text)) if text.len() <= MAX_REFERENCE_BYTES => Reference::Text(text),
                Some(_) => return Err(de::Error::custom("reference too long")),
            };
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// Looks for an `items` key among the members of a JSON object, up to the
/// first one, and stops there (so a batch whose JSON breaks later is still
/// answered as a malformed batch).
struct FindItemsKey<'c>(&'c Cell<bool>);

impl<'de> Visitor<'de> for FindItemsKey<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key::<Text>()? {
            if key == "items" {
                self.0.set(true);
                // Stops the parse: the rest is the batch parser's.
                return Err(de::Error::custom("found"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

/// Copies an object's members except `reference` into `out` as an object,
/// and returns the raw value of `reference`.
struct Strip<'s> {
    out: &'s mut Vec<u8>,
}

impl<'de> Visitor<'de> for Strip<'_> {
    type Value = Option<&'de RawValue>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut reference = None;
        self.out.push(b'{');
        while let Some(Text(key)) = map.next_key::<Text>()? {
            let value: &'de RawValue = map.next_value()?;
            if key == "reference" {
                if reference.replace(value).is_some() {
                    return Err(de::Error::duplicate_field("reference"));
                }
                continue;
            }
            if self.out.len() > 1 {
                self.out.push(b',');
            }
            serde_json::to_writer(&mut *self.out, &*key).map_err(de::Error::custom)?;
            self.out.push(b':');
            self.out.extend_from_slice(value.get().as_bytes());
        }
        self.out.push(b'}');
        Ok(reference)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

mod plain_json;

#[cfg(test)]
mod tests;
