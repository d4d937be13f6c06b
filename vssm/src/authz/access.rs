//! Refusals of the authorization layer, as API errors.

use super::Operation;
use crate::error::{Classify, ErrorKind};

/// Why a request was refused or could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No grant allows this use of this key. The text is the same whether
    /// or not the key exists.
    #[error("no grant allows {op} with key {key}")]
    Use {
        /// The operation asked for.
        op: Operation,
        /// The key name, quoted and bounded.
        key: String,
    },
    /// No grant allows this management action on this key.
    #[error("no grant allows {op} of key {key}")]
    Manage {
        /// The operation asked for.
        op: Operation,
        /// The key name, quoted and bounded.
        key: String,
    },
    /// No grant allows this cluster-wide action.
    #[error("no grant allows {0}")]
    ClusterWide(Operation),
    /// The configuration turned password administration off.
    #[error("password administration is turned off by the configuration; use a certificate with a grant")]
    PasswordAdminOff,
    /// A cluster node could not confirm its authorization state with any
    /// peer within its bound (it may miss revocations).
    #[error(
        "authorization state not confirmed with the cluster within {0} s (revocations and key lifecycle changes may be missing here); retry"
    )]
    NotConfirmed(u64),
    /// A grant limit would be exceeded.
    #[error("{0}")]
    Limit(String),
}

impl AccessError {
    /// The refusal for `op` on `key` (a use or a management action).
    pub fn denied(op: Operation, key: &str) -> AccessError {
        let key = crate::crypto::quote(key);
        if op.is_cluster_wide() {
            AccessError::ClusterWide(op)
        } else if op.is_use() {
            AccessError::Use { op, key }
        } else {
            AccessError::Manage { op, key }
        }
    }
}

impl Classify for AccessError {
    fn kind(&self) -> ErrorKind {
        match self {
            AccessError::Use { .. }
            | AccessError::Manage { .. }
            | AccessError::ClusterWide(_)
            | AccessError::PasswordAdminOff => ErrorKind::Forbidden,
            AccessError::NotConfirmed(_) => ErrorKind::ServiceUnavailable,
            AccessError::Limit(_) => ErrorKind::Conflict,
        }
    }
}
