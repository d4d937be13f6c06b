//! The PKCS#11 module as a client of the dev node: its configuration for
//! `--dir`/`--addr`, loading and initializing it through `cryptoki`, the
//! user login and the benchmark key's handle.

use std::ffi::CString;
use std::net::SocketAddr;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::ops::Op;
use crate::Error;

/// Name of the module configuration written into the data folder.
pub const CONFIG_FILE: &str = "bench-pkcs11.json";

/// The user PIN: `vssm dev`'s client key is not encrypted, so the module
/// accepts any PIN.
const PIN: &str = "bench";

/// The module's configuration (pkcs11/README.md) for the node at `addr`
/// with `vssm dev`'s files in `dir`.
pub fn config(dir: &Path, addr: SocketAddr) -> Result<serde_json::Value, Error> {
    let file = |name: &str| {
        let path = dir.join(name);
        path.to_str().map(str::to_string).ok_or_else(|| format!("{}: not UTF-8", path.display()))
    };
    Ok(serde_json::json!({
        "nodes": [addr.to_string()],
        "serverCertificate": file("rpc.crt")?,
        "clientCertificate": file("client.crt")?,
        "clientKey": file("client.key")?,
        "tokenLabel": "VSSM bench",
        "timeoutSeconds": 10,
    }))
}

/// Makes the PKCS#11 mechanism of an op's `algorithm`, for the ops the
/// module runs (a maker: a `Mechanism` may hold raw parameter pointers, is
/// not `Sync`, and so each thread makes its own).
pub fn mechanism(algorithm: &str) -> Option<fn() -> Mechanism<'static>> {
    match algorithm {
        "SHA256withECDSA" => Some(|| Mechanism::EcdsaSha256),
        _ => None,
    }
}

/// The initialized module, logged in as the user (the login holds as long
/// as a session of the application is open: the one kept here).
pub struct Token {
    /// The loaded module (finalized on drop).
    pub context: Pkcs11,
    /// The module's one slot.
    pub slot: Slot,
    /// The session the login was made on.
    _login: Mutex<Session>,
}

impl Token {
    /// Writes `DIR/bench-pkcs11.json` for the node at `addr`, loads
    /// `module`, initializes it with that file (the `pReserved` string, so
    /// `VSSM_PKCS11_CONFIG` is neither read nor needed) and logs in.
    pub fn open(module: &Path, dir: &Path, addr: SocketAddr) -> Result<Token, Error> {
        let path = dir.join(CONFIG_FILE);
        let text = serde_json::to_string_pretty(&config(dir, addr)?)?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        let context = Pkcs11::new(module).map_err(|e| format!("load {}: {e}", module.display()))?;
        let reserved = CString::new(path.as_os_str().as_encoded_bytes())?;
        let pointer = NonNull::new(reserved.as_ptr().cast_mut().cast()).expect("CString pointer");
        // SAFETY: the module reads pReserved as a NUL-terminated string
        // during C_Initialize only; `reserved` outlives that call.
        let args = unsafe { CInitializeArgs::new_with_reserved(CInitializeFlags::OS_LOCKING_OK, pointer) };
        context.initialize(args).map_err(|e| format!("C_Initialize ({}): {e}", path.display()))?;
        drop(reserved);
        let slot = *context
            .get_slots_with_token()?
            .first()
            .ok_or_else(|| format!("{}: no slot with a token", module.display()))?;
        let session = context.open_ro_session(slot)?;
        session.login(UserType::User, Some(&AuthPin::from(PIN))).map_err(|e| format!("C_Login: {e}"))?;
        Ok(Token { context, slot, _login: Mutex::new(session) })
    }

    /// The handle of `op`'s private key, found by its label (the key name).
    pub fn private_key(&self, op: &Op) -> Result<ObjectHandle, Error> {
        let session = self.context.open_ro_session(self.slot)?;
        let template = [Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(op.key.name.as_bytes().to_vec())];
        match session.find_objects(&template)?.as_slice() {
            [key] => Ok(*key),
            found => Err(format!("{} private keys labelled {} on the token", found.len(), op.key.name).into()),
        }
    }
}
