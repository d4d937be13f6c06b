//! The module's errors and their one mapping to `CK_RV`.

use cryptoki_sys::*;

/// Everything that can go wrong inside the module. [`Error::rv`] is the one
/// place that turns an error into a PKCS#11 return value. Messages never hold
/// key material, PINs or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PKCS#11 return value decided directly by the caller's arguments or state.
    #[error("PKCS#11 error 0x{0:x}")]
    Rv(CK_RV),
    /// The configuration could not be read or is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// No node answered (connection refused, TLS failure, timeout) on any node.
    #[error("no VSSM node reachable: {0}")]
    Unreachable(String),
    /// A node answered with an HTTP error status and message.
    #[error("VSSM node answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The node's `error` message.
        message: String,
    },
    /// A node answered 200 with a body that is not the expected JSON.
    #[error("unexpected answer from the node: {0}")]
    BadAnswer(String),
}

impl Error {
    /// The PKCS#11 return value for this error.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::Rv(rv) => *rv,
            Error::Config(_) => CKR_GENERAL_ERROR,
            Error::Unreachable(_) => CKR_DEVICE_ERROR,
            Error::Status { status, .. } => match status {
                401 => CKR_PIN_INCORRECT,
                403 => CKR_KEY_FUNCTION_NOT_PERMITTED,
                404 => CKR_KEY_HANDLE_INVALID,
                409 | 410 => CKR_KEY_FUNCTION_NOT_PERMITTED,
                413 => CKR_DATA_LEN_RANGE,
                429 => CKR_PIN_LOCKED,
                400 => CKR_FUNCTION_FAILED,
                _ => CKR_DEVICE_ERROR,
            },
            Error::BadAnswer(_) => CKR_DEVICE_ERROR,
        }
    }

    /// The HTTP status of a node's refusal, if this is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Maps a 400 from the node to `rv` (e.g. a failed decryption is
    /// `CKR_ENCRYPTED_DATA_INVALID`), leaving other errors as they are.
    pub fn on_400(self, rv: CK_RV) -> Error {
        match self {
            Error::Status { status: 400, .. } => Error::Rv(rv),
            other => other,
        }
    }
}

impl From<CK_RV> for Error {
    fn from(rv: CK_RV) -> Self {
        Error::Rv(rv)
    }
}

/// The module's result type.
pub type Result<T> = std::result::Result<T, Error>;
