//! The module's state between `C_Initialize` and `C_Finalize`: the
//! configuration, the login state (per application), the sessions with
//! their operations, the object table and the client of the nodes.
//!
//! Locks are held only briefly, never across a network call, except a
//! session's own lock (a session belongs to one thread at a time, as
//! PKCS#11 says), so many sessions sign in parallel.

use crate::api::{self, SignInput};
use crate::client::Client;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::mechanisms::{cipher_plan, sign_plan, CipherPlan, Mechanism, Mode, SignPlan};
use crate::objects::{resolve_clashes, Attr, KeyEntry, Object, Table, VssmType};
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use zeroize::Zeroizing;

/// Most data one multi-part operation buffers.
pub const MAX_DATA: usize = 16 << 20;

/// Locks a mutex, also when a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Who is logged in (for the whole application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Nobody.
    Public,
    /// CKU_USER.
    User,
    /// CKU_SO.
    So,
}

/// The four operation slots of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// C_Sign*.
    Sign = 0,
    /// C_Verify*.
    Verify = 1,
    /// C_Encrypt*.
    Encrypt = 2,
    /// C_Decrypt*.
    Decrypt = 3,
}

enum Plan {
    Sign(SignPlan),
    Cipher(CipherPlan),
}

/// An active operation: its plan, key, buffered data and a result kept for
/// a retry after `CKR_BUFFER_TOO_SMALL`.
pub struct Operation {
    plan: Plan,
    object: Arc<Object>,
    data: Zeroizing<Vec<u8>>,
    result: Option<Zeroizing<Vec<u8>>>,
}

/// A session.
pub struct Session {
    /// CKF_RW_SESSION | CKF_SERIAL_SESSION.
    pub flags: CK_FLAGS,
    find: Option<Vec<CK_OBJECT_HANDLE>>,
    ops: [Option<Operation>; 4],
}

/// What an output-producing step answers.
pub enum Output {
    /// Only the length: a size query, or `CKR_BUFFER_TOO_SMALL` when the caller gave a buffer.
    Length(usize),
    /// The bytes: copy them out; the operation is over.
    Bytes(Zeroizing<Vec<u8>>),
}

/// A session with its flags readable without its lock.
type SessionEntry = (CK_FLAGS, Arc<Mutex<Session>>);

/// The initialized module.
pub struct Module {
    /// The process that initialized it (fork detection).
    pub pid: u32,
    /// The configuration.
    pub config: Config,
    identity: Identity,
    admin_password_file: Option<Zeroizing<String>>,
    client: RwLock<Option<Arc<Client>>>,
    login: Mutex<(Login, Option<Zeroizing<String>>)>,
    sessions: RwLock<HashMap<CK_SESSION_HANDLE, SessionEntry>>,
    next_session: AtomicU64,
    objects: Mutex<Table>,
}

impl Module {
    /// Reads the configuration and the identity files (no network).
    pub fn new(reserved: Option<&str>) -> Result<Module> {
        let config = Config::load(reserved)?;
        let identity = Identity::load(&config)?;
        let admin_password_file = match &config.admin_password_file {
            Some(path) => {
                let text = Zeroizing::new(
                    std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {path}: {e}")))?,
                );
                Some(Zeroizing::new(text.lines().next().unwrap_or_default().to_string()))
            }
            None => None,
        };
        Ok(Module {
            pid: std::process::id(),
            config,
            identity,
            admin_password_file,
            client: RwLock::new(None),
            login: Mutex::new((Login::Public, None)),
            sessions: RwLock::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            objects: Mutex::new(Table::default()),
        })
    }

    /// The client: built on first use with an unencrypted key; with an
    /// encrypted one it exists only after a login.
    fn client(&self) -> Result<Arc<Client>> {
        if let Some(c) = self.client.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Ok(Arc::clone(c));
        }
        if self.identity.encrypted {
            return Err(Error::Rv(CKR_USER_NOT_LOGGED_IN));
        }
        let tls = self.identity.tls(b"")?;
        let mut slot = self.client.write().unwrap_or_else(|p| p.into_inner());
        let client = slot.get_or_insert_with(|| Arc::new(Client::new(tls, &self.config.nodes, self.config.timeout())));
        Ok(Arc::clone(client))
    }

    /// The current login.
    pub fn login_state(&self) -> Login {
        lock(&self.login).0
    }

    fn require_login(&self) -> Result<()> {
        if self.login_state() == Login::Public {
            return Err(Error::Rv(CKR_USER_NOT_LOGGED_IN));
        }
        Ok(())
    }

    /// C_Login. With an encrypted client key the user PIN is its passphrase
    /// (checked here, without network); the SO PIN is the admin password
    /// (with an encrypted key: `passphrase:adminpassword`).
    pub fn login(&self, user: CK_USER_TYPE, pin: &[u8]) -> Result<()> {
        // Never hold the login lock while waiting for a session (lock order:
        // a session's lock, then the login lock).
        let read_only_exists = self
            .sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|(flags, _)| flags & CKF_RW_SESSION == 0);
        let mut login = lock(&self.login);
        match (login.0, user) {
            (Login::User, CKU_USER) | (Login::So, CKU_SO) => return Err(Error::Rv(CKR_USER_ALREADY_LOGGED_IN)),
            (Login::User, CKU_SO) | (Login::So, CKU_USER) => return Err(Error::Rv(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)),
            (_, CKU_USER | CKU_SO) => {}
            (_, CKU_CONTEXT_SPECIFIC) => return Err(Error::Rv(CKR_OPERATION_NOT_INITIALIZED)),
            _ => return Err(Error::Rv(CKR_USER_TYPE_INVALID)),
        }
        if user == CKU_SO && read_only_exists {
            return Err(Error::Rv(CKR_SESSION_READ_ONLY_EXISTS));
        }
        let pin = std::str::from_utf8(pin).map_err(|_| Error::Rv(CKR_PIN_INCORRECT))?;
        let (passphrase, password) = match (user, self.identity.encrypted) {
            (CKU_USER, _) => (pin, None),
            (_, true) => {
                let (pass, pw) = pin.split_once(':').ok_or(Error::Rv(CKR_PIN_INCORRECT))?;
                (pass, Some(pw))
            }
            (_, false) => ("", Some(pin)),
        };
        if password.is_some_and(str::is_empty) {
            return Err(Error::Rv(CKR_PIN_INCORRECT));
        }
        if self.identity.encrypted {
            let tls = self.identity.tls(passphrase.as_bytes())?;
            *self.client.write().unwrap_or_else(|p| p.into_inner()) =
                Some(Arc::new(Client::new(tls, &self.config.nodes, self.config.timeout())));
        }
        *login = (if user == CKU_SO { Login::So } else { Login::User }, password.map(|p| Zeroizing::new(p.into())));
        Ok(())
    }

    /// C_Logout: ends every operation and search, drops the client of an encrypted key.
    pub fn logout(&self) -> Result<()> {
        let mut login = lock(&self.login);
        if login.0 == Login::Public {
            return Err(Error::Rv(CKR_USER_NOT_LOGGED_IN));
        }
        *login = (Login::Public, None);
        drop(login);
        let sessions: Vec<_> =
            self.sessions.read().unwrap_or_else(|p| p.into_inner()).values().map(|(_, s)| Arc::clone(s)).collect();
        for session in sessions {
            let mut s = lock(&session);
            s.find = None;
            s.ops = Default::default();
        }
        if self.identity.encrypted {
            *self.client.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
        Ok(())
    }

    /// C_OpenSession.
    pub fn open_session(&self, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            return Err(Error::Rv(CKR_SESSION_PARALLEL_NOT_SUPPORTED));
        }
        if flags & CKF_RW_SESSION == 0 && self.login_state() == Login::So {
            return Err(Error::Rv(CKR_SESSION_READ_WRITE_SO_EXISTS));
        }
        let handle = self.next_session.fetch_add(1, Ordering::Relaxed) as CK_SESSION_HANDLE;
        let session = Session { flags, find: None, ops: Default::default() };
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).insert(handle, (flags, Arc::new(Mutex::new(session))));
        Ok(handle)
    }

    /// C_CloseSession.
    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.remove(&handle).ok_or(Error::Rv(CKR_SESSION_HANDLE_INVALID))?;
        if sessions.is_empty() {
            drop(sessions);
            self.logout_silently();
        }
        Ok(())
    }

    /// C_CloseAllSessions.
    pub fn close_all(&self) {
        self.sessions.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.logout_silently();
    }

    /// Closing the last session logs the application out (PKCS#11 §5.6).
    fn logout_silently(&self) {
        let _ = self.logout();
    }

    /// The session of `handle`.
    pub fn session(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<Mutex<Session>>> {
        self.sessions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&handle)
            .map(|(_, s)| Arc::clone(s))
            .ok_or(Error::Rv(CKR_SESSION_HANDLE_INVALID))
    }

    /// The session state for C_GetSessionInfo.
    pub fn session_state(&self, session: &Session) -> CK_STATE {
        let rw = session.flags & CKF_RW_SESSION != 0;
        match (self.login_state(), rw) {
            (Login::Public, false) => CKS_RO_PUBLIC_SESSION,
            (Login::Public, true) => CKS_RW_PUBLIC_SESSION,
            (Login::User, false) => CKS_RO_USER_FUNCTIONS,
            (Login::User, true) => CKS_RW_USER_FUNCTIONS,
            (Login::So, _) => CKS_RW_SO_FUNCTIONS,
        }
    }

    fn visible(&self, key: &KeyEntry) -> bool {
        let kind = match key.vssm_type {
            VssmType::Asymmetric => key.spec.as_str(),
            other => other.api(),
        };
        !self.config.hidden(kind)
    }

    /// C_FindObjectsInit: one keys/list call, the matches kept for C_FindObjects.
    pub fn find_init(&self, session: &mut Session, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Result<()> {
        if session.find.is_some() {
            return Err(Error::Rv(CKR_OPERATION_ACTIVE));
        }
        let keys = match self.client() {
            Ok(client) => api::list_keys(&client)?,
            // Encrypted key, not logged in: no connection, nothing to show.
            Err(Error::Rv(CKR_USER_NOT_LOGGED_IN)) => Vec::new(),
            Err(e) => return Err(e),
        };
        let logged_in = self.login_state() != Login::Public;
        let mut table = lock(&self.objects);
        let mut found = Vec::new();
        for key in keys.into_iter().filter(|k| self.visible(k)) {
            for object in table.upsert(key) {
                let private = object.class != CKO_PUBLIC_KEY;
                if (logged_in || !private) && object.matches(template) {
                    found.push(object);
                }
            }
        }
        drop(table);
        let found = resolve_clashes(found, template);
        session.find = Some(found.iter().map(|o| o.handle).rev().collect());
        Ok(())
    }

    /// C_FindObjects: up to `max` handles.
    pub fn find(&self, session: &mut Session, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let pending = session.find.as_mut().ok_or(Error::Rv(CKR_OPERATION_NOT_INITIALIZED))?;
        let mut out = Vec::new();
        while out.len() < max {
            match pending.pop() {
                Some(h) => out.push(h),
                None => break,
            }
        }
        Ok(out)
    }

    /// C_FindObjectsFinal.
    pub fn find_final(&self, session: &mut Session) -> Result<()> {
        session.find.take().map(|_| ()).ok_or(Error::Rv(CKR_OPERATION_NOT_INITIALIZED))
    }

    /// The object of `handle` (private objects only after login).
    pub fn object(&self, handle: CK_OBJECT_HANDLE) -> Result<Arc<Object>> {
        let object = lock(&self.objects).get(handle).ok_or(Error::Rv(CKR_OBJECT_HANDLE_INVALID))?;
        if object.class != CKO_PUBLIC_KEY && self.login_state() == Login::Public {
            return Err(Error::Rv(CKR_OBJECT_HANDLE_INVALID));
        }
        Ok(object)
    }

    /// C_*Init of a crypto operation.
    pub fn op_init(
        &self,
        session: &mut Session,
        kind: OpKind,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        if session.ops[kind as usize].is_some() {
            return Err(Error::Rv(CKR_OPERATION_ACTIVE));
        }
        let object = lock(&self.objects).get(key).ok_or(Error::Rv(CKR_KEY_HANDLE_INVALID))?;
        let private = object.class != CKO_PUBLIC_KEY;
        if private && self.login_state() == Login::Public {
            return Err(Error::Rv(CKR_USER_NOT_LOGGED_IN));
        }
        let allowed = match kind {
            OpKind::Sign => CKA_SIGN,
            OpKind::Verify => CKA_VERIFY,
            OpKind::Encrypt => CKA_ENCRYPT,
            OpKind::Decrypt => CKA_DECRYPT,
        };
        if !matches!(object.attribute(allowed), Attr::Value(v) if v == [CK_TRUE]) {
            return Err(Error::Rv(CKR_KEY_FUNCTION_NOT_PERMITTED));
        }
        let plan = match kind {
            OpKind::Sign | OpKind::Verify => Plan::Sign(sign_plan(mechanism, &object)?),
            OpKind::Encrypt | OpKind::Decrypt => Plan::Cipher(cipher_plan(mechanism, &object)?),
        };
        session.ops[kind as usize] = Some(Operation { plan, object, data: Zeroizing::new(Vec::new()), result: None });
        Ok(())
    }

    /// Whether an operation of `kind` is active.
    pub fn op_active(session: &Session, kind: OpKind) -> Result<()> {
        session.ops[kind as usize].as_ref().map(|_| ()).ok_or(Error::Rv(CKR_OPERATION_NOT_INITIALIZED))
    }

    /// Ends an operation of `kind` (after a bad argument).
    pub fn end(session: &mut Session, kind: OpKind) -> Result<()> {
        session.ops[kind as usize] = None;
        Ok(())
    }

    /// C_*Update: buffers `data`.
    pub fn update(&self, session: &mut Session, kind: OpKind, data: &[u8]) -> Result<()> {
        let op = session.ops[kind as usize].as_mut().ok_or(Error::Rv(CKR_OPERATION_NOT_INITIALIZED))?;
        if op.data.len() + data.len() > MAX_DATA {
            session.ops[kind as usize] = None;
            return Err(Error::Rv(CKR_DATA_LEN_RANGE));
        }
        op.data.extend_from_slice(data);
        Ok(())
    }

    /// C_Sign/C_Encrypt/C_Decrypt (`data` given) or their Final (`None`):
    /// `capacity` None is a size query. The operation ends on success and on
    /// any error but a size query or a too small buffer.
    pub fn output(
        &self,
        session: &mut Session,
        kind: OpKind,
        data: Option<&[u8]>,
        capacity: Option<usize>,
    ) -> Result<Output> {
        let slot = &mut session.ops[kind as usize];
        let op = slot.as_mut().ok_or(Error::Rv(CKR_OPERATION_NOT_INITIALIZED))?;
        let result = self.output_step(op, kind, data, capacity);
        match &result {
            Ok(Output::Length(_)) => {}
            _ => *slot = None,
        }
        result
    }

    fn output_step(
        &self,
        op: &mut Operation,
        kind: OpKind,
        data: Option<&[u8]>,
        capacity: Option<usize>,
    ) -> Result<Output> {
        if op.result.is_none() {
            if let Some(data) = data {
                if data.len() > MAX_DATA {
                    return Err(Error::Rv(CKR_DATA_LEN_RANGE));
                }
                op.data = Zeroizing::new(data.to_vec());
            }
        }
        let (len, exact) = match (&op.result, &op.plan) {
            (Some(r), _) => (r.len(), true),
            (None, Plan::Sign(plan)) => (plan.signature_len(&op.object), true),
            (None, Plan::Cipher(plan)) => {
                let encrypt = kind == OpKind::Encrypt;
                (plan.output_len(encrypt, op.data.len(), &op.object)?, plan.exact(encrypt))
            }
        };
        let Some(capacity) = capacity else {
            return Ok(Output::Length(len));
        };
        if exact && capacity < len {
            return Ok(Output::Length(len));
        }
        if op.result.is_none() {
            op.result = Some(Zeroizing::new(self.run(op, kind)?));
        }
        let result = op.result.take().unwrap_or_default();
        if capacity < result.len() {
            let len = result.len();
            op.result = Some(result);
            return Ok(Output::Length(len));
        }
        Ok(Output::Bytes(result))
    }

    /// The one network call of an operation.
    fn run(&self, op: &Operation, kind: OpKind) -> Result<Vec<u8>> {
        let client = self.client()?;
        let name = op.object.key.name.as_str();
        match (&op.plan, kind) {
            (Plan::Sign(SignPlan::Hmac { algorithm, .. }), _) => api::hmac(&client, name, algorithm, &op.data),
            (Plan::Sign(plan @ SignPlan::Asymmetric { hashed, ecdsa_field, .. }), _) => {
                let (algorithm, data) = plan.resolve_digest(&op.data)?;
                let input = if *hashed { SignInput::Hashed(data) } else { SignInput::Input(data) };
                let signature = api::sign(&client, name, &algorithm, input).map_err(|e| e.on_400(CKR_DATA_INVALID))?;
                match ecdsa_field {
                    Some(field) => crate::der::ecdsa_der_to_raw(&signature, *field)
                        .ok_or_else(|| Error::BadAnswer("ECDSA signature".into())),
                    None => Ok(signature),
                }
            }
            (Plan::Cipher(plan), OpKind::Encrypt) => {
                let endpoint = format!("{}/encrypt", plan.family);
                let iv = plan.iv.as_deref();
                let out = api::cipher(&client, &endpoint, name, &plan.algorithm, &op.data, iv, &plan.aad)
                    .map_err(|e| e.on_400(CKR_DATA_INVALID))?;
                if plan.mode == Mode::Rsa {
                    Ok(out)
                } else {
                    plan.encrypt_output(out)
                }
            }
            (Plan::Cipher(plan), _) => {
                let endpoint = format!("{}/decrypt", plan.family);
                let input = if plan.mode == Mode::Rsa { op.data.to_vec() } else { plan.decrypt_input(&op.data) };
                let input = Zeroizing::new(input);
                api::cipher(&client, &endpoint, name, &plan.algorithm, &input, None, &plan.aad)
                    .map_err(|e| e.on_400(CKR_ENCRYPTED_DATA_INVALID))
            }
        }
    }

    /// C_Verify (`data` given) or C_VerifyFinal: the one network call.
    pub fn verify(&self, session: &mut Session, data: Option<&[u8]>, signature: &[u8]) -> Result<()> {
        let op = session.ops[OpKind::Verify as usize].take().ok_or(Error::Rv(CKR_OPERATION_NOT_INITIALIZED))?;
        let data: &[u8] = match data {
            Some(d) => d,
            None => &op.data,
        };
        let Plan::Sign(plan) = &op.plan else {
            return Err(Error::Rv(CKR_GENERAL_ERROR));
        };
        let client = self.client()?;
        let name = op.object.key.name.as_str();
        let valid = match plan {
            SignPlan::Hmac { algorithm, len } => {
                if signature.len() != *len {
                    return Err(Error::Rv(CKR_SIGNATURE_LEN_RANGE));
                }
                api::hmac_verify(&client, name, algorithm, data, signature)
            }
            SignPlan::Asymmetric { hashed, ecdsa_field, .. } => {
                let (algorithm, data) = plan.resolve_digest(data)?;
                let der_sig;
                let signature = match ecdsa_field {
                    Some(field) => {
                        if signature.len() != 2 * field {
                            return Err(Error::Rv(CKR_SIGNATURE_LEN_RANGE));
                        }
                        der_sig = crate::der::ecdsa_raw_to_der(signature).ok_or(Error::Rv(CKR_SIGNATURE_INVALID))?;
                        &der_sig[..]
                    }
                    None => {
                        if signature.len() != op.object.key.signature_len() {
                            return Err(Error::Rv(CKR_SIGNATURE_LEN_RANGE));
                        }
                        signature
                    }
                };
                let input = if *hashed { SignInput::Hashed(data) } else { SignInput::Input(data) };
                api::verify(&client, name, &algorithm, input, signature)
            }
        }
        .map_err(|e| e.on_400(CKR_SIGNATURE_INVALID))?;
        if valid {
            Ok(())
        } else {
            Err(Error::Rv(CKR_SIGNATURE_INVALID))
        }
    }

    fn admin_password(&self) -> Option<Zeroizing<String>> {
        let login = lock(&self.login);
        match &login.1 {
            Some(pw) => Some(pw.clone()),
            None => self.admin_password_file.clone(),
        }
    }

    fn require_rw(&self, session: &Session) -> Result<()> {
        self.require_login()?;
        if session.flags & CKF_RW_SESSION == 0 {
            return Err(Error::Rv(CKR_SESSION_READ_ONLY));
        }
        Ok(())
    }

    /// Creates a key: refuses a name a key of another type holds, then admin/generatekey.
    fn create(
        &self,
        name: &str,
        vssm_type: VssmType,
        spec: Option<&str>,
        size: u64,
        id: Option<Vec<u8>>,
    ) -> Result<Vec<Arc<Object>>> {
        let client = self.client()?;
        let existing = api::list_keys(&client)?;
        if existing.iter().any(|k| k.name == name) {
            return Err(Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID));
        }
        let password = self.admin_password();
        let password = password.as_deref().map(|s| s.as_str());
        api::generate_key(&client, password, name, vssm_type, spec, size, id.as_deref())
            .map_err(|e| e.on_400(CKR_TEMPLATE_INCONSISTENT))?;
        let entry = match vssm_type {
            VssmType::Asymmetric => api::public_key(&client, name)?,
            _ => KeyEntry {
                name: name.to_string(),
                vssm_type,
                spec: String::new(),
                key_length: size,
                key_bits: 0,
                spki: Vec::new(),
                public: Default::default(),
                operations: None,
                object_id: id,
            },
        };
        Ok(lock(&self.objects).upsert(entry))
    }

    /// C_GenerateKey (AES or generic secret).
    pub fn generate_key(
        &self,
        session: &Session,
        mechanism: &Mechanism,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<CK_OBJECT_HANDLE> {
        self.require_rw(session)?;
        let (vssm_type, key_type) = match mechanism.kind {
            CKM_AES_KEY_GEN => (VssmType::Symmetric, CKK_AES),
            CKM_GENERIC_SECRET_KEY_GEN => (VssmType::Mac, CKK_GENERIC_SECRET),
            _ => return Err(Error::Rv(CKR_MECHANISM_INVALID)),
        };
        let t = Template(template);
        t.check_class_and_type(CKO_SECRET_KEY, key_type)?;
        let size = u64::from(t.ulong(CKA_VALUE_LEN)?.ok_or(Error::Rv(CKR_TEMPLATE_INCOMPLETE))?);
        let valid = match vssm_type {
            VssmType::Symmetric => [16, 24, 32].contains(&size),
            _ => (16..=128).contains(&size),
        };
        if !valid {
            return Err(Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID));
        }
        let (name, id) = t.name_and_id(None)?;
        let objects = self.create(&name, vssm_type, None, size, id)?;
        objects.first().map(|o| o.handle).ok_or(Error::Rv(CKR_GENERAL_ERROR))
    }

    /// C_GenerateKeyPair (RSA, EC, Ed25519) → (public, private).
    pub fn generate_key_pair(
        &self,
        session: &Session,
        mechanism: &Mechanism,
        public: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
        private: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        self.require_rw(session)?;
        let (pub_t, priv_t) = (Template(public), Template(private));
        let (spec, size, key_type) = match mechanism.kind {
            CKM_RSA_PKCS_KEY_PAIR_GEN => {
                let bits = pub_t.ulong(CKA_MODULUS_BITS)?.ok_or(Error::Rv(CKR_TEMPLATE_INCOMPLETE))?;
                if ![2048, 3072, 4096].contains(&bits) {
                    return Err(Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID));
                }
                if let Some(e) = pub_t.get(CKA_PUBLIC_EXPONENT) {
                    let start = e.iter().position(|&b| b != 0).unwrap_or(e.len());
                    if e[start..] != [1, 0, 1] {
                        return Err(Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID));
                    }
                }
                ("RSA", u64::from(bits), CKK_RSA)
            }
            CKM_EC_KEY_PAIR_GEN => {
                let params = pub_t.get(CKA_EC_PARAMS).ok_or(Error::Rv(CKR_TEMPLATE_INCOMPLETE))?;
                match crate::der::curve_of_params(params) {
                    Some((oid, bits)) if oid != crate::der::ED25519 => ("EC", bits as u64, CKK_EC),
                    _ => return Err(Error::Rv(CKR_CURVE_NOT_SUPPORTED)),
                }
            }
            CKM_EC_EDWARDS_KEY_PAIR_GEN => {
                if let Some(params) = pub_t.get(CKA_EC_PARAMS) {
                    if crate::der::curve_of_params(params).is_none_or(|(oid, _)| oid != crate::der::ED25519) {
                        return Err(Error::Rv(CKR_CURVE_NOT_SUPPORTED));
                    }
                }
                ("ED25519", 256, CKK_EC_EDWARDS)
            }
            _ => return Err(Error::Rv(CKR_MECHANISM_INVALID)),
        };
        pub_t.check_class_and_type(CKO_PUBLIC_KEY, key_type)?;
        priv_t.check_class_and_type(CKO_PRIVATE_KEY, key_type)?;
        let (name, id) = priv_t.name_and_id(Some(&pub_t))?;
        let objects = self.create(&name, VssmType::Asymmetric, Some(spec), size, id)?;
        let find = |class| objects.iter().find(|o| o.class == class).map(|o| o.handle);
        match (find(CKO_PUBLIC_KEY), find(CKO_PRIVATE_KEY)) {
            (Some(p), Some(k)) => Ok((p, k)),
            _ => Err(Error::Rv(CKR_GENERAL_ERROR)),
        }
    }

    /// C_DestroyObject: schedules the key's deletion with the node's minimum window.
    pub fn destroy(&self, session: &Session, handle: CK_OBJECT_HANDLE) -> Result<()> {
        self.require_rw(session)?;
        let object = self.object(handle)?;
        let client = self.client()?;
        let password = self.admin_password();
        let password = password.as_deref().map(|s| s.as_str());
        let key = &object.key;
        api::schedule_deletion(&client, password, &key.name, key.vssm_type)?;
        lock(&self.objects).remove(key);
        Ok(())
    }
}

/// A caller's template.
struct Template<'a>(&'a [(CK_ATTRIBUTE_TYPE, Vec<u8>)]);

impl Template<'_> {
    fn get(&self, t: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0.iter().find(|(a, _)| *a == t).map(|(_, v)| v.as_slice())
    }

    fn ulong(&self, t: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
        match self.get(t) {
            None => Ok(None),
            Some(v) => {
                Ok(Some(CK_ULONG::from_ne_bytes(v.try_into().map_err(|_| Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID))?)))
            }
        }
    }

    fn check_class_and_type(&self, class: CK_OBJECT_CLASS, key_type: CK_KEY_TYPE) -> Result<()> {
        if self.ulong(CKA_CLASS)?.is_some_and(|c| c != class) {
            return Err(Error::Rv(CKR_TEMPLATE_INCONSISTENT));
        }
        if self.ulong(CKA_KEY_TYPE)?.is_some_and(|k| k != key_type) {
            return Err(Error::Rv(CKR_TEMPLATE_INCONSISTENT));
        }
        if self.get(CKA_TOKEN).is_some_and(|v| v == [CK_FALSE]) {
            // Every VSSM key is a token object.
            return Err(Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID));
        }
        Ok(())
    }

    /// The key name: CKA_LABEL (of this template, else `other`), else the
    /// UTF-8 CKA_ID, else a random name; and the CKA_ID to keep when given.
    fn name_and_id(&self, other: Option<&Template<'_>>) -> Result<(String, Option<Vec<u8>>)> {
        let pick = |t| self.get(t).or_else(|| other.and_then(|o| o.get(t)));
        let id = pick(CKA_ID).map(<[u8]>::to_vec);
        let name = match pick(CKA_LABEL) {
            Some(label) => std::str::from_utf8(label).map_err(|_| Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID))?.to_string(),
            None => match id.as_deref().map(std::str::from_utf8) {
                Some(Ok(text)) if !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic()) => text.to_string(),
                _ => {
                    let mut random = [0u8; 8];
                    crate::random(&mut random)?;
                    format!("p11-{}", random.iter().map(|b| format!("{b:02x}")).collect::<String>())
                }
            },
        };
        if name.is_empty() {
            return Err(Error::Rv(CKR_ATTRIBUTE_VALUE_INVALID));
        }
        let id = id.filter(|id| id.as_slice() != name.as_bytes());
        Ok((name, id))
    }
}
