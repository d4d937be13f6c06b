//! `--grants N`: puts the node under per-identity authorization (issue 9)
//! with N grants for other identities loaded, so every benchmarked request
//! goes through the policy check of a realistically sized grant set.
//!
//! The grants this module makes carry a comment starting with
//! [`COMMENT_PREFIX`]; a run reconciles the node's active grants with the
//! wanted set by that comment (keeps the equal ones, revokes stale ones,
//! creates the missing ones), so re-running, or running with another N or
//! another `--ops`, neither duplicates grants nor leaves extra ones behind.
//! Grants without that comment are left alone (and counted in the report).

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_json::{json, Value};

use crate::client::Client;
use crate::ops::Op;
use crate::Error;

/// Path of the endpoint that tells the caller its identity.
const WHOAMI: &str = "/REST/v1/authz/whoami";
/// Path of the endpoint listing the active grants and the mode.
const LISTGRANTS: &str = "/REST/v1/admin/listgrants";
/// Path of the endpoint adding grants.
const CREATEGRANTS: &str = "/REST/v1/admin/creategrants";
/// Path of the endpoint revoking grants by id.
const REVOKEGRANTS: &str = "/REST/v1/admin/revokegrants";
/// Path of the endpoint switching enforcement on or off.
const SETPOLICY: &str = "/REST/v1/admin/setpolicy";

/// Most grants (or ids) the server takes in one request.
const BATCH: usize = 1000;

/// Start of the comment of every grant this benchmark makes.
const COMMENT_PREFIX: &str = "vssm-bench ";

/// Key-name prefix of the benchmark keys ([`crate::ops::OPS`]); the bench
/// client's grant covers `bench-*`.
const BENCH_KEYS: &str = "bench-*";

/// The node's authorization mode, as reported in the table header.
#[derive(Debug, Clone, Copy)]
pub struct PolicyState {
    /// True when everything not granted is denied.
    pub enforced: bool,
    /// Active grants on the node (the benchmark's and any others).
    pub active_grants: usize,
}

impl fmt::Display for PolicyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.enforced { "enforced" } else { "compatibility (policy not enforced)" };
        write!(f, "{mode}, {} active grants", self.active_grants)
    }
}

/// The operation name (issue 9) a use endpoint is authorized as.
fn use_operation(path: &str) -> Result<&'static str, Error> {
    let mut parts = path.rsplit('/');
    Ok(match (parts.next(), parts.next()) {
        (Some("encrypt"), Some("symmetric" | "asymmetric")) => "encrypt",
        (Some("decrypt"), Some("symmetric" | "asymmetric")) => "decrypt",
        (Some("sign"), Some("asymmetric")) => "sign",
        (Some("verify"), Some("asymmetric")) => "verify",
        (Some("create"), Some("hmac")) => "mac-create",
        (Some("verify"), Some("hmac")) => "mac-verify",
        _ => return Err(format!("{path}: no use operation known for this endpoint").into()),
    })
}

/// The use operations the benchmark needs on its keys: each op's endpoint
/// and, for a decryption, the encryption that makes its ciphertext at setup.
fn bench_operations(ops: &[&Op]) -> Result<BTreeSet<&'static str>, Error> {
    let mut wanted = BTreeSet::new();
    for op in ops {
        wanted.insert(use_operation(op.path)?);
        if let Some((path, _)) = op.encrypt_first {
            wanted.insert(use_operation(path)?);
        }
    }
    Ok(wanted)
}

/// The grant of the bench client itself: its public key (`spki:`, from
/// `whoami`), the benchmark keys, and exactly the use operations of `ops`.
fn own_grant(spki_sha256: &str, ops: &[&Op]) -> Result<Value, Error> {
    let operations: Vec<_> = bench_operations(ops)?.into_iter().collect();
    Ok(json!({
        "identity": format!("spki:{}", spki_sha256.to_ascii_lowercase()),
        "keys": BENCH_KEYS,
        "operations": operations,
        "comment": format!("{COMMENT_PREFIX}client"),
    }))
}

/// Grant number `i` of the filler set: identity `bench-other-{i}` under a
/// mix of selector kinds (per ten grants: 3 `spki:`, 2 `subject:`, 2 exact
/// `cn:`, 1 `cn:` pattern, 1 exact `dns:`, 1 `dns:` pattern), mostly on the
/// key prefix `other-{i}/*`, with use-operation sets of a few shapes and an
/// occasional management grant. None of them matches the bench client
/// (`CN=vssm-dev-client`, no SAN, its own key) or names a benchmark key.
pub fn other_grant(i: usize) -> Value {
    let name = format!("bench-other-{i}");
    let identity = match i % 10 {
        0..=2 => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            format!("spki:{hex}")
        }
        3 | 4 => format!("subject:CN={name}, O=VSSM bench"),
        5 | 6 => format!("cn:{name}"),
        7 => format!("cn:{name}-*"),
        8 => format!("dns:other-{i}.bench.example"),
        _ => format!("dns:*.other-{i}.bench.example"),
    };
    let (keys, operations): (String, &[&str]) = if i % 500 == 499 {
        // An officer: cluster-wide management needs `keys: "*"`.
        ("*".into(), &["backup", "getlogs", "list"])
    } else if i % 50 == 49 {
        (format!("other-{i}/*"), &["generate", "list", "encrypt", "decrypt"])
    } else {
        let keys = if i % 5 == 4 { format!("other-{i}/signing") } else { format!("other-{i}/*") };
        let operations: &[&str] = match i % 4 {
            0 => &["encrypt", "decrypt"],
            1 => &["sign", "verify"],
            2 => &["mac-create", "mac-verify"],
            _ => &["encrypt", "decrypt", "sign", "verify", "mac-create", "mac-verify"],
        };
        (keys, operations)
    };
    json!({
        "identity": identity,
        "keys": keys,
        "operations": operations,
        "comment": format!("{COMMENT_PREFIX}other {i}"),
    })
}

/// The fields that make two grants the same for this benchmark (the id and
/// creation fields differ; the node may store the operations in its own order).
fn content(grant: &Value) -> (Option<&str>, Option<&str>, BTreeSet<&str>) {
    let field = |name| grant.get(name).and_then(Value::as_str);
    let operations =
        grant.get("operations").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    (field("identity"), field("keys"), operations)
}

/// What `admin/listgrants` says: the mode and the active grants.
struct Listing {
    /// `policyEnforced`.
    enforced: bool,
    /// `grants`.
    grants: Vec<Value>,
}

/// Reads the mode and the active grants (`admin/listgrants`, password
/// authentication); `None` if the server has no such endpoint (it predates
/// issue 9).
async fn list(client: &mut Client, password: &str) -> Result<Option<Listing>, Error> {
    let (status, body) = client.call(LISTGRANTS, &json!({ "adminPassword": password })).await?;
    if status.as_u16() == 404 {
        return Ok(None);
    }
    let answer = crate::client::json_answer(LISTGRANTS, status, &body)?;
    let enforced = answer.get("policyEnforced").and_then(Value::as_bool).unwrap_or(false);
    let grants = match answer.get("grants") {
        Some(Value::Array(grants)) => grants.clone(),
        _ => return Err(format!("{LISTGRANTS}: no grants list in {answer}").into()),
    };
    Ok(Some(Listing { enforced, grants }))
}

/// The node's mode, without changing anything; `None` if the server
/// predates authorization.
pub async fn state(client: &mut Client, password: &str) -> Result<Option<PolicyState>, Error> {
    Ok(list(client, password).await?.map(|l| PolicyState { enforced: l.enforced, active_grants: l.grants.len() }))
}

/// Makes the node hold exactly `others` filler grants ([`other_grant`]
/// 0..others) and the bench client's own grant among the grants this
/// benchmark manages, then turns enforcement on. Returns progress lines and
/// the resulting state.
pub async fn load(
    client: &mut Client,
    password: &str,
    others: usize,
    ops: &[&Op],
) -> Result<(Vec<String>, PolicyState), Error> {
    let whoami = client.call_json(WHOAMI, &json!({})).await?;
    let spki = whoami
        .pointer("/identity/spkiSha256")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{WHOAMI}: no identity.spkiSha256 in {whoami}"))?
        .to_string();
    let listing = list(client, password)
        .await?
        .ok_or_else(|| format!("{LISTGRANTS}: 404, the server predates authorization (issue 9)"))?;

    // Wanted grants by comment; an active grant of ours is kept if it is
    // wanted with the same content (once), revoked otherwise.
    let mut wanted: HashMap<String, Value> = (0..others).map(other_grant).map(|g| (comment(&g), g)).collect();
    let own = own_grant(&spki, ops)?;
    wanted.insert(comment(&own), own);
    let mut stale = Vec::new();
    let mut kept = 0;
    let mut foreign = 0;
    for grant in &listing.grants {
        let text = comment(grant);
        if !text.starts_with(COMMENT_PREFIX) {
            foreign += 1;
        } else if wanted.get(&text).is_some_and(|w| content(w) == content(grant)) {
            wanted.remove(&text);
            kept += 1;
        } else {
            let id =
                grant.get("id").and_then(Value::as_str).ok_or_else(|| format!("{LISTGRANTS}: grant without id"))?;
            stale.push(id.to_string());
        }
    }
    for ids in stale.chunks(BATCH) {
        client.call_json(REVOKEGRANTS, &json!({ "adminPassword": password, "ids": ids })).await?;
    }
    let mut missing: Vec<Value> = wanted.into_values().collect();
    missing.sort_by_key(comment);
    for batch in missing.chunks(BATCH) {
        client.call_json(CREATEGRANTS, &json!({ "adminPassword": password, "grants": batch })).await?;
    }
    let answer = client.call_json(SETPOLICY, &json!({ "adminPassword": password, "enforce": true })).await?;
    let enforced = answer.get("policyEnforced").and_then(Value::as_bool) == Some(true);
    if !enforced {
        return Err(format!("{SETPOLICY}: enforcement did not turn on: {answer}").into());
    }

    let state = PolicyState { enforced, active_grants: foreign + kept + missing.len() };
    let lines = vec![
        format!(
            "grants: {others} for other identities + 1 for this client (spki:{spki}): \
             {} created, {kept} kept, {} revoked; {foreign} other grants on the node",
            missing.len(),
            stale.len()
        ),
        format!("policy: {state}"),
    ];
    Ok((lines, state))
}

/// A grant's comment ("" if none).
fn comment(grant: &Value) -> String {
    grant.get("comment").and_then(Value::as_str).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;

    #[test]
    fn operations_follow_the_endpoint_table() {
        let all: Vec<&Op> = ops::OPS.iter().collect();
        let got: Vec<_> = bench_operations(&all).unwrap().into_iter().collect();
        assert_eq!(got, ["decrypt", "encrypt", "mac-create", "sign"]);
        let hmac = [ops::find("hmac").unwrap()];
        assert_eq!(bench_operations(&hmac).unwrap().into_iter().collect::<Vec<_>>(), ["mac-create"]);
        assert_eq!(use_operation("/REST/v1/hmac/verify").unwrap(), "mac-verify");
        assert_eq!(use_operation("/REST/v1/asymmetric/verify").unwrap(), "verify");
        assert!(use_operation("/REST/v1/admin/generatekey").is_err());
    }

    #[test]
    fn filler_grants_mix_selectors_and_never_cover_the_bench_client() {
        let mut kinds = HashMap::new();
        for i in 0..10_000 {
            let grant = other_grant(i);
            let (identity, keys, operations) = content(&grant);
            let (identity, keys) = (identity.unwrap(), keys.unwrap());
            let kind = identity.split_once(':').unwrap().0;
            *kinds.entry(if identity.contains('*') { format!("{kind}*") } else { kind.to_string() }).or_insert(0) += 1;
            assert!(identity.contains(&format!("other-{i}")) || kind == "spki", "{identity}");
            let pattern = identity.split_once(':').unwrap().1;
            if kind == "cn" {
                let (head, tail) = pattern.split_once('*').unwrap_or((pattern, ""));
                let client = "vssm-dev-client";
                assert!(!(client.starts_with(head) && client[head.len()..].ends_with(tail)), "{identity}");
            }
            assert!(identity.len() <= 1024 && !operations.is_empty() && operations.len() <= 16);
            assert!(keys == "*" || keys.starts_with(&format!("other-{i}/")), "{keys}");
            assert_eq!(comment(&grant), format!("vssm-bench other {i}"));
        }
        let want = [("spki", 3000), ("subject", 2000), ("cn", 2000), ("cn*", 1000), ("dns", 1000), ("dns*", 1000)];
        assert_eq!(kinds, want.iter().map(|(k, n)| (k.to_string(), *n)).collect());
    }

    #[test]
    fn own_grant_is_the_client_key_on_the_bench_keys() {
        let grant = own_grant("AB".repeat(32).as_str(), &[ops::find("aes").unwrap()]).unwrap();
        assert_eq!(
            grant,
            json!({"identity": format!("spki:{}", "ab".repeat(32)), "keys": "bench-*",
                   "operations": ["encrypt"], "comment": "vssm-bench client"})
        );
        assert!(ops::OPS.iter().all(|op| op.key.name.starts_with(BENCH_KEYS.trim_end_matches('*'))));
    }
}
