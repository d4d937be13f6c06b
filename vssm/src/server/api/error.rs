//! Errors of the client API (port 8080): routing, key lookup, the admin
//! endpoints' own checks, and the domain errors they pass through. Each
//! says its [`ErrorKind`]; [`crate::error`] turns that into the answer.

use crate::admin::backup::BackupError;
use crate::admin::AdminRefusal;
use crate::crypto::CryptoError;
use crate::error::{Classify, ErrorKind};
use crate::keystore::{KeyType, NameError};
use crate::node::BootstrapError;
use crate::server::body::BodyError;
use crate::server::json::JsonError;

/// Why an API request failed. Strings a client chose are bounded and
/// escaped before they get here (see `printable` and `crypto::quote`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body could not be read within its limits.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not the expected JSON.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The crypto operation refused the request or failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The admin password check refused the caller.
    #[error(transparent)]
    Admin(#[from] AdminRefusal),
    /// admin/bootstrap failed.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// A backup could not be made or restored.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The authorization layer refused the request.
    #[error(transparent)]
    Access(#[from] crate::authz::AccessError),
    /// A grant in the request is not acceptable.
    #[error(transparent)]
    Grant(#[from] crate::authz::GrantError),
    /// The key cannot serve the request as asked (versions).
    #[error(transparent)]
    KeyUse(#[from] super::key_use::KeyUseError),
    /// A lifecycle change that is not acceptable.
    #[error(transparent)]
    LifecycleChange(#[from] super::lifecycle_ops::LifecycleChangeError),
    /// A new key under the name of a destroyed key.
    #[error("a {} key of this name was destroyed: names of destroyed keys are not reused", .0.as_str())]
    NameDestroyed(KeyType),
    /// A rotation of a key that has the most versions a key may have.
    #[error("the key has {} versions, the most a key may have", crate::keystore::MAX_VERSIONS)]
    TooManyVersions,
    /// The key name is not acceptable.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A batch that is not `{"items": [...]}` of at most 1000 objects, or
    /// an item's `reference` that is not acceptable.
    #[error(transparent)]
    Batch(#[from] super::BatchError),
    /// No endpoint at this path (the path, bounded and printable).
    #[error("unknown endpoint {0}")]
    UnknownEndpoint(String),
    /// Every endpoint is POST.
    #[error("use POST")]
    MethodNotAllowed,
    /// The start-up crypto self-tests failed ("crypto self-test failed: …"):
    /// the node refuses every request.
    #[error("{0}")]
    SelfTestFailed(&'static str),
    /// The node has no RPC key yet.
    #[error("node is bootstrapping")]
    Bootstrapping,
    /// The node joined a cluster and has not synchronized yet.
    #[error("node is synchronizing keys with its peers")]
    Synchronizing,
    /// The connection was opened before bootstrap, without a client certificate.
    #[error("node is bootstrapped: reconnect with a client certificate")]
    Reconnect,
    /// A crypto request without a key name.
    #[error("keyName is required")]
    KeyNameRequired,
    /// No key of this type and name (the name, bounded and printable).
    #[error("no {} key named {:?}", .key_type.as_str(), .name)]
    NoSuchKey {
        /// The type looked in.
        key_type: KeyType,
        /// The name asked for, bounded and printable.
        name: String,
    },
    /// listkeys with a name that no key of this type has.
    #[error("no {} key with this name", .0.as_str())]
    NoKeyWithName(KeyType),
    /// A key record holds material of another type than its index says (a
    /// fault of this node).
    #[error("key record holds material of another type")]
    WrongMaterial,
    /// sign/verify with both `input` and `hashed`.
    #[error("give either input or hashed, not both")]
    InputAndHashed,
    /// `objectId` longer than [`crate::keystore::MAX_OBJECT_ID_BYTES`].
    #[error("objectId must be at most {} bytes", crate::keystore::MAX_OBJECT_ID_BYTES)]
    ObjectIdTooLong,
    /// `iv` on a request that does not encrypt (a ciphertext carries its iv).
    #[error("iv is only accepted by symmetric/encrypt: a ciphertext carries its own iv")]
    IvNotAccepted,
    /// keyType is not one of the three (the value, bounded and printable).
    #[error("keyType must be SYMMETRIC, ASYMMETRIC or MAC, not {0:?}")]
    InvalidKeyType(String),
    /// listkeys with keyName but no keyType.
    #[error("keyType is required with keyName")]
    KeyTypeRequired,
    /// keySize below zero.
    #[error("keySize must not be negative")]
    NegativeKeySize,
    /// keySpec is neither RSA nor EC (the value, bounded and printable).
    #[error("keySpec must be RSA or EC, not {0:?}")]
    InvalidKeySpec(String),
    /// generatedatakey with a keySpec other than AES_256 or AES_128.
    #[error("keySpec must be AES_256 or AES_128, not {0:?}")]
    InvalidDataKeySpec(String),
    /// An injected key larger than any supported key.
    #[error("key is larger than {} bytes", crate::node::MAX_KEY_DER_BYTES)]
    KeyTooLarge,
    /// A key of this type has this name already.
    #[error("a {} key with this name exists", .0.as_str())]
    NameTaken(KeyType),
    /// restorebackup without a backup.
    #[error("backup is required")]
    BackupRequired,
    /// The blocking task generating a key did not finish (a fault of this node).
    #[error("key generation was interrupted")]
    GenerationInterrupted,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Body(e) => e.kind(),
            ApiError::Json(e) => e.kind(),
            ApiError::Crypto(e) => e.kind(),
            ApiError::Admin(e) => e.kind(),
            ApiError::Bootstrap(e) => e.kind(),
            ApiError::Backup(e) => e.kind(),
            ApiError::Name(e) => e.kind(),
            ApiError::KeyUse(e) => e.kind(),
            ApiError::LifecycleChange(e) => e.kind(),
            ApiError::Access(e) => e.kind(),
            ApiError::Grant(e) => e.kind(),
            ApiError::Batch(e) => e.kind(),
            ApiError::UnknownEndpoint(_) | ApiError::NoSuchKey { .. } | ApiError::NoKeyWithName(_) => {
                ErrorKind::NotFound
            }
            ApiError::MethodNotAllowed => ErrorKind::MethodNotAllowed,
            ApiError::SelfTestFailed(_) | ApiError::Bootstrapping | ApiError::Synchronizing | ApiError::Reconnect => {
                ErrorKind::ServiceUnavailable
            }
            ApiError::KeyNameRequired
            | ApiError::InputAndHashed
            | ApiError::IvNotAccepted
            | ApiError::ObjectIdTooLong
            | ApiError::InvalidKeyType(_)
            | ApiError::KeyTypeRequired
            | ApiError::NegativeKeySize
            | ApiError::InvalidKeySpec(_)
            | ApiError::InvalidDataKeySpec(_)
            | ApiError::KeyTooLarge
            | ApiError::BackupRequired => ErrorKind::BadRequest,
            ApiError::NameTaken(_) | ApiError::NameDestroyed(_) | ApiError::TooManyVersions => ErrorKind::Conflict,
            ApiError::WrongMaterial | ApiError::GenerationInterrupted => ErrorKind::Internal,
        }
    }
}

/// Crypto errors reach clients through the API only, so their
/// classification lives here rather than in the crypto module.
impl Classify for CryptoError {
    fn kind(&self) -> ErrorKind {
        match self {
            CryptoError::UnsupportedAlgorithm(_)
            | CryptoError::InvalidInput(_)
            | CryptoError::DecryptionFailed
            | CryptoError::InvalidKey(_) => ErrorKind::BadRequest,
            CryptoError::Internal(_) => ErrorKind::Internal,
        }
    }
}
