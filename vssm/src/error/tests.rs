//! The table of every error that reaches a client: its status, and that
//! internal faults never show their detail. Each `index_*` function matches
//! its enum without a wildcard, so a new variant does not compile until it
//! is added to the table here.

use super::*;
use crate::admin::backup::BackupError;
use crate::admin::AdminRefusal;
use crate::authz::{AccessError, GrantError, Operation};
use crate::cloud::aws_identity::IdentityError;
use crate::cluster::aws::AwsError;
use crate::cluster::config_digest::ConfigDigest;
use crate::cluster::discovery::DiscoveryError;
use crate::cluster::join::challenge::ChallengeError;
use crate::cluster::join::policy::PolicyError;
use crate::cluster::join::seal::SealError;
use crate::cluster::join::server::JoinError;
use crate::cluster::sync::SyncError;
use crate::crypto::CryptoError;
use crate::keystore::{KeyType, NameError};
use crate::lifecycle::LifecycleError;
use crate::node::BootstrapError;
use crate::server::api::{ApiError, BatchError, KeyUseError, LifecycleChangeError};
use crate::server::body::BodyError;
use crate::server::json::JsonError;
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use std::time::Duration;

/// A detail only internal errors carry, to look for in client answers.
const SECRET_DETAIL: &str = "system random generator failed";

fn index_api(e: &ApiError) -> usize {
    match e {
        ApiError::Body(_) => 0,
        ApiError::Json(_) => 1,
        ApiError::Crypto(_) => 2,
        ApiError::Admin(_) => 3,
        ApiError::Bootstrap(_) => 4,
        ApiError::Backup(_) => 5,
        ApiError::Name(_) => 6,
        ApiError::UnknownEndpoint(_) => 7,
        ApiError::MethodNotAllowed => 8,
        ApiError::Bootstrapping => 9,
        ApiError::Synchronizing => 10,
        ApiError::Reconnect => 11,
        ApiError::KeyNameRequired => 12,
        ApiError::NoSuchKey { .. } => 13,
        ApiError::NoKeyWithName(_) => 14,
        ApiError::WrongMaterial => 15,
        ApiError::InputAndHashed => 16,
        ApiError::InvalidKeyType(_) => 17,
        ApiError::KeyTypeRequired => 18,
        ApiError::NegativeKeySize => 19,
        ApiError::InvalidKeySpec(_) => 20,
        ApiError::KeyTooLarge => 21,
        ApiError::NameTaken(_) => 22,
        ApiError::BackupRequired => 23,
        ApiError::GenerationInterrupted => 24,
        ApiError::SelfTestFailed(_) => 25,
        ApiError::Access(_) => 26,
        ApiError::Grant(_) => 27,
        ApiError::InvalidDataKeySpec(_) => 28,
        ApiError::KeyUse(_) => 29,
        ApiError::TooManyVersions => 30,
        ApiError::LifecycleChange(_) => 31,
        ApiError::NameDestroyed(_) => 32,
        ApiError::Batch(_) => 33,
        ApiError::IvNotAccepted => 34,
        ApiError::ObjectIdTooLong => 35,
    }
}

fn index_body(e: &BodyError) -> usize {
    match e {
        BodyError::TooLarge { .. } => 0,
        BodyError::Busy => 1,
        BodyError::Stalled => 2,
        BodyError::Unreadable => 3,
        BodyError::TooSlow { .. } => 4,
    }
}

fn index_json(e: &JsonError) -> usize {
    match e {
        JsonError::Invalid(_) => 0,
        JsonError::Encode => 1,
    }
}

fn index_crypto(e: &CryptoError) -> usize {
    match e {
        CryptoError::UnsupportedAlgorithm(_) => 0,
        CryptoError::InvalidInput(_) => 1,
        CryptoError::DecryptionFailed => 2,
        CryptoError::InvalidKey(_) => 3,
        CryptoError::Internal(_) => 4,
    }
}

fn index_admin(e: &AdminRefusal) -> usize {
    match e {
        AdminRefusal::Throttled(_) => 0,
        AdminRefusal::WrongPassword => 1,
    }
}

fn index_bootstrap(e: &BootstrapError) -> usize {
    match e {
        BootstrapError::AlreadyBootstrapped => 0,
        BootstrapError::KeyTooLarge => 1,
        BootstrapError::NotPkcs8 => 2,
        BootstrapError::WrongKey => 3,
        BootstrapError::Tls(_) => 4,
    }
}

fn index_backup(e: &BackupError) -> usize {
    match e {
        BackupError::Invalid(_) => 0,
        BackupError::NeedsRsa => 1,
        BackupError::Internal(_) => 2,
    }
}

fn index_name(e: &NameError) -> usize {
    match e {
        NameError::Empty => 0,
        NameError::TooLong => 1,
        NameError::Forbidden => 2,
    }
}

fn index_access(e: &AccessError) -> usize {
    match e {
        AccessError::Use { .. } => 0,
        AccessError::Manage { .. } => 1,
        AccessError::ClusterWide(_) => 2,
        AccessError::PasswordAdminOff => 3,
        AccessError::NotConfirmed(_) => 4,
        AccessError::Limit(_) => 5,
    }
}

fn access_table() -> Vec<(AccessError, u16)> {
    vec![
        (AccessError::denied(Operation::Encrypt, "k"), 403),
        (AccessError::denied(Operation::Generate, "k"), 403),
        (AccessError::denied(Operation::Backup, "*"), 403),
        (AccessError::PasswordAdminOff, 403),
        (AccessError::NotConfirmed(6), 503),
        (AccessError::Limit("the cluster holds 100000 of at most 100000 grant records".into()), 409),
    ]
}

fn grant_error() -> GrantError {
    GrantError { field: "grants[0].operations[1]".into(), reason: "unknown operation \"encryp\"".into() }
}

fn index_sync(e: &SyncError) -> usize {
    match e {
        SyncError::MethodNotAllowed => 0,
        SyncError::Body(_) => 1,
        SyncError::Json(_) => 2,
        SyncError::Records(_) => 3,
        SyncError::UnknownEndpoint => 4,
        SyncError::SelfTestFailed(_) => 5,
        SyncError::NotMember(_) => 6,
        SyncError::MembershipUnknown(_) => 7,
        SyncError::Authorization(_) => 8,
        SyncError::Lifecycle(_) => 9,
    }
}

fn index_join(e: &JoinError) -> usize {
    match e {
        JoinError::MethodNotAllowed => 0,
        JoinError::Body(_) => 1,
        JoinError::Json(_) => 2,
        JoinError::Bootstrapping => 3,
        JoinError::Challenge(_) => 4,
        JoinError::ChallengeRefused(_) => 5,
        JoinError::PolicyRefused(_) => 6,
        JoinError::Seal(_) => 7,
        JoinError::UnknownEndpoint => 8,
        JoinError::SelfTestFailed(_) => 9,
    }
}

fn index_challenge(e: &ChallengeError) -> usize {
    match e {
        ChallengeError::NoRandomness => 0,
        ChallengeError::WrongLength => 1,
        ChallengeError::Unknown => 2,
        ChallengeError::Expired => 3,
        ChallengeError::WrongAddress { .. } => 4,
    }
}

fn index_policy(e: &PolicyError) -> usize {
    match e {
        PolicyError::Identity(_) => 0,
        PolicyError::Account(_) => 1,
        PolicyError::Region(_) => 2,
        PolicyError::Image(_) => 3,
        PolicyError::SourceAddress { .. } => 4,
        PolicyError::EphemeralKey => 5,
        PolicyError::NotMember(_) => 6,
        PolicyError::Membership(_) => 7,
        PolicyError::NoStsRequest => 8,
        PolicyError::Sts(_) => 9,
        PolicyError::NoConfigDigest => 10,
        PolicyError::ConfigMismatch { .. } => 11,
    }
}

fn index_seal(e: &SealError) -> usize {
    match e {
        SealError::NoRandomness => 0,
        SealError::KeyAgreement => 1,
        SealError::InvalidRequesterKey => 2,
        SealError::Encryption => 3,
        SealError::InvalidPeerKey => 4,
        SealError::TooShort => 5,
        SealError::DoesNotDecrypt => 6,
    }
}

/// Every variant of every inner error, each with the status it must get.
fn body_table() -> Vec<(BodyError, u16)> {
    vec![
        (BodyError::TooLarge { limit: 10 }, 413),
        (BodyError::Busy, 503),
        (BodyError::Stalled, 408),
        (BodyError::Unreadable, 400),
        (BodyError::TooSlow { deadline: std::time::Duration::from_secs(10) }, 408),
    ]
}

fn json_table() -> Vec<(JsonError, u16)> {
    vec![(JsonError::Invalid("missing field `keyName`".into()), 400), (JsonError::Encode, 500)]
}

fn crypto_table() -> Vec<(CryptoError, u16)> {
    vec![
        (CryptoError::UnsupportedAlgorithm("\"X\"".into()), 400),
        (CryptoError::InvalidInput("input is not block aligned".into()), 400),
        (CryptoError::DecryptionFailed, 400),
        (CryptoError::InvalidKey("wrong length".into()), 400),
        (CryptoError::Internal(SECRET_DETAIL), 500),
    ]
}

fn challenge_table() -> Vec<(ChallengeError, u16)> {
    // As refusals; NoRandomness is only ever an issuing failure (500).
    let ip = "10.0.0.1".parse().unwrap();
    vec![
        (ChallengeError::NoRandomness, 403),
        (ChallengeError::WrongLength, 403),
        (ChallengeError::Unknown, 403),
        (ChallengeError::Expired, 403),
        (ChallengeError::WrongAddress { issued_to: ip, presented_by: ip }, 403),
    ]
}

fn policy_table() -> Vec<(PolicyError, u16)> {
    let ip = "10.0.0.1".parse().unwrap();
    vec![
        (PolicyError::Identity(IdentityError::NotSignedData), 403),
        (PolicyError::Account("1".into()), 403),
        (PolicyError::Region("r".into()), 403),
        (PolicyError::Image("ami-1".into()), 403),
        (PolicyError::SourceAddress { source_ip: ip, private_ip: ip }, 403),
        (PolicyError::EphemeralKey, 403),
        (PolicyError::NotMember("i-1".into()), 403),
        (PolicyError::Membership(DiscoveryError::NoIdentity), 403),
        (PolicyError::NoStsRequest, 403),
        (PolicyError::Sts(AwsError::Stale), 403),
        (PolicyError::NoConfigDigest, 403),
        (PolicyError::ConfigMismatch { instance_id: "i-1".into(), digest: ConfigDigest([7; 32]) }, 403),
    ]
}

fn seal_table() -> Vec<(SealError, u16)> {
    vec![
        (SealError::NoRandomness, 500),
        (SealError::KeyAgreement, 500),
        (SealError::InvalidRequesterKey, 400),
        (SealError::Encryption, 500),
        (SealError::InvalidPeerKey, 500),
        (SealError::TooShort, 500),
        (SealError::DoesNotDecrypt, 500),
    ]
}

fn api_table() -> Vec<(ApiError, u16)> {
    let tls = crate::tls::TlsError::certificate("rpcCertificate", SECRET_DETAIL);
    let mut table: Vec<(ApiError, u16)> = Vec::new();
    table.extend(body_table().into_iter().map(|(e, s)| (ApiError::from(e), s)));
    table.extend(json_table().into_iter().map(|(e, s)| (ApiError::from(e), s)));
    table.extend(crypto_table().into_iter().map(|(e, s)| (ApiError::from(e), s)));
    table.extend([
        (ApiError::from(AdminRefusal::Throttled(Duration::from_secs(3))), 429),
        (ApiError::from(AdminRefusal::WrongPassword), 401),
        (ApiError::from(BootstrapError::AlreadyBootstrapped), 409),
        (ApiError::from(BootstrapError::KeyTooLarge), 400),
        (ApiError::from(BootstrapError::NotPkcs8), 400),
        (ApiError::from(BootstrapError::WrongKey), 400),
        (ApiError::from(BootstrapError::Tls(tls)), 500),
        (ApiError::from(BackupError::Invalid("backup macKey[0]: invalid key".into())), 400),
        (ApiError::from(BackupError::NeedsRsa), 503),
        (ApiError::from(BackupError::Internal(SECRET_DETAIL)), 500),
        (ApiError::from(NameError::Empty), 400),
        (ApiError::from(NameError::TooLong), 400),
        (ApiError::from(NameError::Forbidden), 400),
        (ApiError::UnknownEndpoint("/x".into()), 404),
        (ApiError::MethodNotAllowed, 405),
        (ApiError::SelfTestFailed("crypto self-test failed: sha known-answer test"), 503),
        (ApiError::Bootstrapping, 503),
        (ApiError::Synchronizing, 503),
        (ApiError::Reconnect, 503),
        (ApiError::KeyNameRequired, 400),
        (ApiError::NoSuchKey { key_type: KeyType::Mac, name: "k".into() }, 404),
        (ApiError::NoKeyWithName(KeyType::Symmetric), 404),
        (ApiError::WrongMaterial, 500),
        (ApiError::InputAndHashed, 400),
        (ApiError::InvalidKeyType("X".into()), 400),
        (ApiError::KeyTypeRequired, 400),
        (ApiError::NegativeKeySize, 400),
        (ApiError::InvalidKeySpec("DSA".into()), 400),
        (ApiError::InvalidDataKeySpec("AES_512".into()), 400),
        (ApiError::KeyTooLarge, 400),
        (ApiError::NameTaken(KeyType::Asymmetric), 409),
        (ApiError::BackupRequired, 400),
        (ApiError::GenerationInterrupted, 500),
        (ApiError::from(grant_error()), 400),
        (ApiError::TooManyVersions, 409),
        (ApiError::NameDestroyed(KeyType::Mac), 409),
        (ApiError::IvNotAccepted, 400),
        (ApiError::ObjectIdTooLong, 400),
        (ApiError::from(LifecycleChangeError::RotationPeriod { minimum: 1, maximum: 2, got: 3 }), 400),
        (ApiError::from(LifecycleChangeError::PendingWindow { minimum: 1, maximum: 2, got: 3 }), 400),
        (ApiError::from(LifecycleChangeError::WindowTwice), 400),
        (
            ApiError::from(LifecycleChangeError::VersionBound {
                field: "minAvailableVersion",
                name: "k".into(),
                lowest: 1,
                highest: 2,
                got: 3,
            }),
            400,
        ),
        (ApiError::from(LifecycleChangeError::WrongState { name: "k".into(), state: "DISABLED", what: "x" }), 409),
        (ApiError::from(BatchError::TooManyItems(1001)), 400),
        (ApiError::from(BatchError::NotAnObject(3)), 400),
        (ApiError::from(BatchError::InvalidReference), 400),
    ]);
    table.extend(key_use_table().into_iter().map(|(e, s)| (ApiError::from(e), s)));
    table.extend(access_table().into_iter().map(|(e, s)| (ApiError::from(e), s)));
    table
}

fn index_key_use(e: &KeyUseError) -> usize {
    match e {
        KeyUseError::VersionRequired { .. } => 0,
        KeyUseError::NoSuchVersion { .. } => 1,
        KeyUseError::NotVersioned { .. } => 2,
        KeyUseError::VersionMismatch { .. } => 3,
        KeyUseError::VerifyNeedsVersion => 4,
        KeyUseError::VersionRetired { .. } => 5,
        KeyUseError::VersionDestroyed { .. } => 6,
        KeyUseError::Disabled { .. } => 7,
        KeyUseError::PendingDeletion { .. } => 8,
        KeyUseError::Destroyed { .. } => 9,
    }
}

fn key_use_table() -> Vec<(KeyUseError, u16)> {
    vec![
        (KeyUseError::VersionRequired { name: "k".into(), newest: 2 }, 400),
        (KeyUseError::NoSuchVersion { name: "k".into(), version: 9 }, 400),
        (KeyUseError::NotVersioned { name: "k".into() }, 400),
        (KeyUseError::VersionMismatch { requested: 1, found: 2 }, 400),
        (KeyUseError::VerifyNeedsVersion, 400),
        (KeyUseError::VersionRetired { name: "k".into(), version: 1, minimum: 2 }, 400),
        (KeyUseError::VersionDestroyed { name: "k".into(), version: 1 }, 410),
        (KeyUseError::Disabled { name: "k".into() }, 409),
        (KeyUseError::PendingDeletion { name: "k".into(), delete_at_ms: 5 }, 409),
        (KeyUseError::Destroyed { name: "k".into() }, 410),
    ]
}

fn sync_table() -> Vec<(SyncError, u16)> {
    let mut table: Vec<(SyncError, u16)> = vec![
        (SyncError::MethodNotAllowed, 405),
        (SyncError::Records(BackupError::Invalid("backup symmetricKey[1]: x".into())), 400),
        (SyncError::UnknownEndpoint, 404),
        (SyncError::SelfTestFailed("crypto self-test failed: x"), 503),
        (SyncError::NotMember("10.0.0.1".parse().unwrap()), 403),
        (SyncError::MembershipUnknown(DiscoveryError::NoIdentity), 503),
        (SyncError::Authorization(grant_error()), 400),
        (SyncError::Lifecycle(LifecycleError::UnknownStatus { field: "lifecycle[0]".into(), value: "X".into() }), 400),
    ];
    table.extend(body_table().into_iter().map(|(e, s)| (SyncError::from(e), s)));
    table.extend(json_table().into_iter().map(|(e, s)| (SyncError::from(e), s)));
    table
}

fn join_table() -> Vec<(JoinError, u16)> {
    let mut table: Vec<(JoinError, u16)> = vec![
        (JoinError::MethodNotAllowed, 405),
        (JoinError::Bootstrapping, 503),
        (JoinError::Challenge(ChallengeError::NoRandomness), 500),
        (JoinError::UnknownEndpoint, 404),
        (JoinError::SelfTestFailed("crypto self-test failed: x"), 503),
    ];
    table.extend(body_table().into_iter().map(|(e, s)| (JoinError::from(e), s)));
    table.extend(json_table().into_iter().map(|(e, s)| (JoinError::from(e), s)));
    table.extend(challenge_table().into_iter().map(|(e, s)| (JoinError::ChallengeRefused(e), s)));
    table.extend(policy_table().into_iter().map(|(e, s)| (JoinError::PolicyRefused(e), s)));
    table.extend(seal_table().into_iter().map(|(e, s)| (JoinError::Seal(e), s)));
    table
}

/// Asserts that `table` holds every index in `0..count` (every variant).
fn assert_complete<E>(what: &str, table: &[E], index: impl Fn(&E) -> usize, count: usize) {
    let seen: BTreeSet<usize> = table.iter().map(index).collect();
    let all: BTreeSet<usize> = (0..count).collect();
    assert_eq!(seen, all, "{what}: the table misses variants");
}

#[test]
fn every_variant_of_every_error_is_in_the_table() {
    assert_complete("BodyError", &body_table(), |(e, _)| index_body(e), 5);
    assert_complete("JsonError", &json_table(), |(e, _)| index_json(e), 2);
    assert_complete("CryptoError", &crypto_table(), |(e, _)| index_crypto(e), 5);
    assert_complete("ChallengeError", &challenge_table(), |(e, _)| index_challenge(e), 5);
    assert_complete("PolicyError", &policy_table(), |(e, _)| index_policy(e), 12);
    assert_complete("SealError", &seal_table(), |(e, _)| index_seal(e), 7);
    let api = api_table();
    assert_complete("ApiError", &api, |(e, _)| index_api(e), 36);
    assert_complete("KeyUseError", &key_use_table(), |(e, _)| index_key_use(e), 10);
    assert_complete("AccessError", &access_table(), |(e, _)| index_access(e), 6);
    let inner = |f: &dyn Fn(&ApiError) -> Option<usize>| api.iter().filter_map(|(e, _)| f(e)).collect::<Vec<_>>();
    let admin = inner(&|e| if let ApiError::Admin(a) = e { Some(index_admin(a)) } else { None });
    assert_complete("AdminRefusal", &admin, |i| *i, 2);
    let bootstrap = inner(&|e| if let ApiError::Bootstrap(b) = e { Some(index_bootstrap(b)) } else { None });
    assert_complete("BootstrapError", &bootstrap, |i| *i, 5);
    let backup = inner(&|e| if let ApiError::Backup(b) = e { Some(index_backup(b)) } else { None });
    assert_complete("BackupError", &backup, |i| *i, 3);
    let name = inner(&|e| if let ApiError::Name(n) = e { Some(index_name(n)) } else { None });
    assert_complete("NameError", &name, |i| *i, 3);
    assert_complete("SyncError", &sync_table(), |(e, _)| index_sync(e), 10);
    assert_complete("JoinError", &join_table(), |(e, _)| index_join(e), 10);
}

/// Checks one error's reply: its status, and that an internal fault shows
/// the client nothing but the generic message while the detail keeps it.
fn check<E: Classify + std::fmt::Debug>(error: &E, status: u16) {
    let reply = reply(error);
    assert_eq!(reply.status.as_u16(), status, "{error:?}");
    assert_eq!(reply.detail, error.to_string());
    if status == 500 {
        assert_eq!(reply.message, INTERNAL_MESSAGE, "{error:?}");
        assert!(!reply.detail.is_empty());
    } else {
        assert_eq!(reply.message, error.to_string(), "client faults keep their message: {error:?}");
        assert!(!reply.message.contains(SECRET_DETAIL), "{error:?}");
    }
}

#[test]
fn every_error_gets_its_status_and_internal_ones_no_detail() {
    for (error, status) in api_table() {
        check(&error, status);
    }
    for (error, status) in sync_table() {
        check(&error, status);
    }
    for (error, status) in join_table() {
        check(&error, status);
    }
}

#[test]
fn the_wire_messages_of_client_faults_are_unchanged() {
    // Messages the integration tests and docs/API.md name.
    let cases: [(&dyn Classify, &str); 8] = [
        (&ApiError::MethodNotAllowed, "use POST"),
        (&ApiError::Bootstrapping, "node is bootstrapping"),
        (&ApiError::Reconnect, "node is bootstrapped: reconnect with a client certificate"),
        (&ApiError::NoSuchKey { key_type: KeyType::Symmetric, name: "k".into() }, "no SYMMETRIC key named \"k\""),
        (&ApiError::NameTaken(KeyType::Mac), "a MAC key with this name exists"),
        (&AdminRefusal::Throttled(Duration::from_millis(1500)), "too many failed admin attempts; retry in 2 s"),
        (&BodyError::TooLarge { limit: 1024 }, "request body larger than 1024 bytes"),
        (&JoinError::ChallengeRefused(ChallengeError::Expired), "join refused: expired challenge"),
    ];
    for (error, message) in cases {
        assert_eq!(reply(error).message, message);
    }
}

#[test]
fn kinds_map_to_statuses_and_outcomes() {
    let statuses: BTreeSet<u16> = ErrorKind::ALL.iter().map(|k| k.status().as_u16()).collect();
    assert_eq!(statuses.len(), ErrorKind::ALL.len(), "one status per kind");
    for kind in ErrorKind::ALL {
        let refused = matches!(kind, ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::TooManyRequests);
        assert_eq!(kind.outcome() == Outcome::Refused, refused, "{kind:?}");
        assert_ne!(kind.outcome(), Outcome::Ok, "{kind:?}");
        assert!(kind.status().is_client_error() || kind.status().is_server_error(), "{kind:?}");
    }
    assert_eq!(ErrorKind::Internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn an_internal_error_response_is_generic_json() {
    let response = error_response(&ApiError::Crypto(CryptoError::Internal(SECRET_DETAIL)));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"error":"internal error"}"#);

    let response = error_response(&ApiError::NameTaken(KeyType::Symmetric));
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"error":"a SYMMETRIC key with this name exists"}"#);
}
