//! The `extern "C"` PKCS#11 v2.40 functions and `C_GetFunctionList`.
//!
//! Every function runs inside [`guard`] (`catch_unwind` → `CKR_GENERAL_ERROR`)
//! and turns raw pointers into Rust values before calling [`Module`]. The
//! module state lives in one global slot, replaced at `C_Initialize` and
//! emptied at `C_Finalize`; a changed process id (a `fork`) makes the state
//! count as not initialized.

#![allow(non_snake_case)]

use crate::error::{Error, Result};
use crate::mechanisms::{self, Mechanism, Param};
use crate::module::{lock, Module, OpKind, Output, Session};
use crate::objects::Attr;
use cryptoki_sys::*;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

static STATE: RwLock<Option<Arc<Module>>> = RwLock::new(None);

/// The slot's only id.
const SLOT: CK_SLOT_ID = 0;

/// Runs `f`, mapping its error (or a panic) to a `CK_RV`.
fn guard(f: impl FnOnce() -> Result<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => e.rv(),
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// The initialized module of this process.
fn module() -> Result<Arc<Module>> {
    match STATE.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(m) if m.pid == std::process::id() => Ok(Arc::clone(m)),
        _ => Err(Error::Rv(CKR_CRYPTOKI_NOT_INITIALIZED)),
    }
}

fn check_slot(slot: CK_SLOT_ID) -> Result<()> {
    if slot == SLOT {
        Ok(())
    } else {
        Err(Error::Rv(CKR_SLOT_ID_INVALID))
    }
}

/// Runs `f` on the session `h` (locked for the call).
fn with_session<T>(h: CK_SESSION_HANDLE, f: impl FnOnce(&Module, &mut Session) -> Result<T>) -> Result<T> {
    let m = module()?;
    let session = m.session(h)?;
    let mut s = lock(&session);
    f(&m, &mut s)
}

/// Writes `value` through `p` after checking it is not NULL.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
unsafe fn put<T>(p: *mut T, value: T) -> Result<()> {
    if p.is_null() {
        return Err(Error::Rv(CKR_ARGUMENTS_BAD));
    }
    // SAFETY: not NULL, and valid for writes by the caller's contract.
    unsafe { p.write(value) };
    Ok(())
}

/// The bytes at `p` (`len` of them); NULL is only allowed with `len` 0.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
unsafe fn bytes<'a>(p: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    if p.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(Error::Rv(CKR_ARGUMENTS_BAD)) };
    }
    // SAFETY: not NULL, and valid for `len` bytes by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len as usize) })
}

/// A copy of a template.
///
/// # Safety
/// `p` is NULL or points to `n` attributes whose values are valid.
unsafe fn template(p: *const CK_ATTRIBUTE, n: CK_ULONG) -> Result<Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::Rv(CKR_ARGUMENTS_BAD));
    }
    // SAFETY: not NULL, `n` attributes by the caller's contract.
    let attrs = unsafe { std::slice::from_raw_parts(p, n as usize) };
    attrs
        .iter()
        .map(|a| {
            // SAFETY: each attribute's value is valid for ulValueLen bytes.
            let v = unsafe { bytes(a.pValue as *const u8, a.ulValueLen) }?;
            Ok((a.type_, v.to_vec()))
        })
        .collect()
}

/// Reads a parameter struct of type `T` when the length matches.
///
/// # Safety
/// `m.pParameter` is valid for `m.ulParameterLen` bytes.
unsafe fn param_struct<T: Copy>(m: &CK_MECHANISM) -> Option<T> {
    if m.pParameter.is_null() || m.ulParameterLen as usize != std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the caller gave a parameter of exactly size_of::<T>() bytes; read unaligned.
    Some(unsafe { std::ptr::read_unaligned(m.pParameter as *const T) })
}

/// Decodes a `CK_MECHANISM` and its parameter.
///
/// # Safety
/// `p` is NULL or a valid mechanism whose parameter is valid.
unsafe fn mechanism(p: *const CK_MECHANISM) -> Result<Mechanism> {
    if p.is_null() {
        return Err(Error::Rv(CKR_ARGUMENTS_BAD));
    }
    // SAFETY: not NULL, valid by the caller's contract.
    let m = unsafe { &*p };
    let raw = || -> Result<Vec<u8>> {
        // SAFETY: the parameter is valid for its length.
        Ok(unsafe { bytes(m.pParameter as *const u8, m.ulParameterLen) }?.to_vec())
    };
    let param = match m.mechanism {
        CKM_AES_CBC | CKM_AES_CBC_PAD => Param::Iv(raw()?),
        CKM_AES_CTR => {
            // SAFETY: as above.
            match unsafe { param_struct::<CK_AES_CTR_PARAMS>(m) } {
                Some(p) if p.ulCounterBits >= 1 && p.ulCounterBits <= 128 => Param::Iv(p.cb.to_vec()),
                _ => Param::Bad,
            }
        }
        CKM_AES_GCM => {
            // SAFETY: as above.
            match unsafe { param_struct::<CK_GCM_PARAMS>(m) } {
                Some(p) => {
                    // SAFETY: the IV and AAD pointers of the parameter are valid for their lengths.
                    let iv = unsafe { bytes(p.pIv, p.ulIvLen) }?.to_vec();
                    // SAFETY: as above.
                    let aad = unsafe { bytes(p.pAAD, p.ulAADLen) }?.to_vec();
                    Param::Gcm { iv, aad, tag_bits: p.ulTagBits }
                }
                None => Param::Bad,
            }
        }
        CKM_RSA_PKCS_OAEP => {
            // SAFETY: as above.
            match unsafe { param_struct::<CK_RSA_PKCS_OAEP_PARAMS>(m) } {
                Some(p) => Param::Oaep {
                    hash: p.hashAlg,
                    mgf: p.mgf,
                    source: p.source,
                    label_len: if p.pSourceData.is_null() { 0 } else { p.ulSourceDataLen },
                },
                None => Param::Bad,
            }
        }
        CKM_RSA_PKCS_PSS | CKM_SHA256_RSA_PKCS_PSS | CKM_SHA384_RSA_PKCS_PSS | CKM_SHA512_RSA_PKCS_PSS => {
            // SAFETY: as above.
            match unsafe { param_struct::<CK_RSA_PKCS_PSS_PARAMS>(m) } {
                Some(p) => Param::Pss { hash: p.hashAlg, mgf: p.mgf, salt: p.sLen },
                None => Param::Bad,
            }
        }
        _ => Param::None,
    };
    Ok(Mechanism { kind: m.mechanism, param })
}

/// Writes an operation's output per the size-query convention.
///
/// # Safety
/// `out` is NULL or valid for `*out_len` bytes; `out_len` is valid.
unsafe fn write_output(out: *mut u8, out_len: *mut CK_ULONG, output: Output) -> Result<()> {
    match output {
        Output::Length(len) => {
            // SAFETY: per the contract.
            unsafe { put(out_len, len as CK_ULONG) }?;
            if out.is_null() {
                Ok(())
            } else {
                Err(Error::Rv(CKR_BUFFER_TOO_SMALL))
            }
        }
        Output::Bytes(b) => {
            // SAFETY: the module checked the capacity `*out_len` before answering bytes.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), out, b.len()) };
            // SAFETY: per the contract.
            unsafe { put(out_len, b.len() as CK_ULONG) }
        }
    }
}

/// The caller's output capacity: None for a size query (NULL buffer).
///
/// # Safety
/// `out_len` is NULL or valid.
unsafe fn capacity(out: *mut u8, out_len: *mut CK_ULONG) -> Result<Option<usize>> {
    if out_len.is_null() {
        return Err(Error::Rv(CKR_ARGUMENTS_BAD));
    }
    // SAFETY: not NULL, valid by the contract.
    let len = unsafe { *out_len };
    Ok((!out.is_null()).then_some(len as usize))
}

/// Space-padded fixed-size text field.
fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let mut end = text.len().min(N);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out[..end].copy_from_slice(&text.as_bytes()[..end]);
    out
}

/// Keeps this library loaded for the life of the process: AWS-LC and Rust
/// register per-thread destructors that would run in unmapped code after a
/// `dlclose` (the caller's threads outlive the module). OpenSSL pins itself
/// the same way.
fn pin_library() {
    static PINNED: std::sync::Once = std::sync::Once::new();
    PINNED.call_once(|| {
        let mut info: libc::Dl_info = libc::Dl_info {
            dli_fname: std::ptr::null(),
            dli_fbase: std::ptr::null_mut(),
            dli_sname: std::ptr::null(),
            dli_saddr: std::ptr::null_mut(),
        };
        // SAFETY: dladdr on the address of a function of this library with a valid out struct.
        let found = unsafe { libc::dladdr(C_GetFunctionList as *const c_void, &mut info) };
        if found != 0 && !info.dli_fname.is_null() {
            // SAFETY: dli_fname is the NUL-terminated path of this library; the
            // handle is kept for ever on purpose.
            unsafe { libc::dlopen(info.dli_fname, libc::RTLD_NOW | libc::RTLD_NODELETE) };
        }
    });
}

const VERSION: CK_VERSION = CK_VERSION { major: 2, minor: 40 };
const LIB_VERSION: CK_VERSION = CK_VERSION { major: 0, minor: 1 };

/// Initializes the module: reads the configuration (the `pReserved`
/// string of the init args, else `VSSM_PKCS11_CONFIG`) and the identity files.
///
/// # Safety
/// `args` is NULL or a valid `CK_C_INITIALIZE_ARGS`.
#[no_mangle]
pub unsafe extern "C" fn C_Initialize(args: *mut c_void) -> CK_RV {
    guard(|| {
        pin_library();
        let mut reserved = None;
        if !args.is_null() {
            // SAFETY: not NULL, a CK_C_INITIALIZE_ARGS by the contract.
            let a = unsafe { &*(args as *const CK_C_INITIALIZE_ARGS) };
            let callbacks =
                [a.CreateMutex.is_some(), a.DestroyMutex.is_some(), a.LockMutex.is_some(), a.UnlockMutex.is_some()];
            if callbacks.iter().any(|&c| c) && !callbacks.iter().all(|&c| c) {
                return Err(Error::Rv(CKR_ARGUMENTS_BAD));
            }
            if !a.pReserved.is_null() {
                // SAFETY: libp11 and pkcs11-provider pass a NUL-terminated string here.
                let text = unsafe { std::ffi::CStr::from_ptr(a.pReserved as *const std::ffi::c_char) };
                reserved = Some(text.to_string_lossy().into_owned());
            }
        }
        let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = state.take() {
            if old.pid == std::process::id() {
                *state = Some(old);
                return Err(Error::Rv(CKR_CRYPTOKI_ALREADY_INITIALIZED));
            }
            // A forked child: the parent's connections and sessions are not
            // ours; leak them rather than touch state other threads held.
            std::mem::forget(old);
        }
        match Module::new(reserved.as_deref()) {
            Ok(m) => {
                *state = Some(Arc::new(m));
                Ok(())
            }
            Err(e) => {
                eprintln!("vssm-pkcs11: {e}");
                Err(e)
            }
        }
    })
}

/// Ends the module. Never waits for the network: operations still running
/// in other threads finish on their own copy of the state.
///
/// # Safety
/// `reserved` must be NULL.
#[no_mangle]
pub unsafe extern "C" fn C_Finalize(reserved: *mut c_void) -> CK_RV {
    guard(|| {
        if !reserved.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
        match state.take() {
            Some(m) if m.pid == std::process::id() => Ok(()),
            Some(m) => {
                std::mem::forget(m);
                Err(Error::Rv(CKR_CRYPTOKI_NOT_INITIALIZED))
            }
            None => Err(Error::Rv(CKR_CRYPTOKI_NOT_INITIALIZED)),
        }
    })
}

/// Library information.
///
/// # Safety
/// `info` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(info: *mut CK_INFO) -> CK_RV {
    guard(|| {
        module()?;
        let value = CK_INFO {
            cryptokiVersion: VERSION,
            manufacturerID: padded("VSSM"),
            flags: 0,
            libraryDescription: padded("VSSM PKCS#11 module"),
            libraryVersion: LIB_VERSION,
        };
        // SAFETY: per the contract.
        unsafe { put(info, value) }
    })
}

/// The function list.
///
/// # Safety
/// `list` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    // SAFETY: per the contract; the list is static and never written through.
    guard(|| unsafe { put(list, &FUNCTION_LIST as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST) })
}

/// The one slot (id 0), which always holds the token.
///
/// # Safety
/// `count` valid; `list` NULL or valid for `*count` ids.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(_present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) -> CK_RV {
    guard(|| {
        module()?;
        if count.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        if !list.is_null() {
            // SAFETY: not NULL, valid by the contract.
            if unsafe { *count } < 1 {
                // SAFETY: as above.
                unsafe { put(count, 1) }?;
                return Err(Error::Rv(CKR_BUFFER_TOO_SMALL));
            }
            // SAFETY: valid for at least one id.
            unsafe { put(list, SLOT) }?;
        }
        // SAFETY: as above.
        unsafe { put(count, 1) }
    })
}

/// Slot information (no network).
///
/// # Safety
/// `info` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slot: CK_SLOT_ID, info: *mut CK_SLOT_INFO) -> CK_RV {
    guard(|| {
        module()?;
        check_slot(slot)?;
        let value = CK_SLOT_INFO {
            slotDescription: padded("VSSM"),
            manufacturerID: padded("VSSM"),
            flags: CKF_TOKEN_PRESENT | CKF_HW_SLOT,
            hardwareVersion: LIB_VERSION,
            firmwareVersion: LIB_VERSION,
        };
        // SAFETY: per the contract.
        unsafe { put(info, value) }
    })
}

/// Token information (no network).
///
/// # Safety
/// `info` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    guard(|| {
        let m = module()?;
        check_slot(slot)?;
        let value = CK_TOKEN_INFO {
            label: padded(&m.config.token_label),
            manufacturerID: padded("VSSM"),
            model: padded("VSSM"),
            serialNumber: padded("0"),
            flags: CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_RNG,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: CK_UNAVAILABLE_INFORMATION,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: CK_UNAVAILABLE_INFORMATION,
            ulMaxPinLen: 1024,
            ulMinPinLen: 0,
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: LIB_VERSION,
            firmwareVersion: LIB_VERSION,
            utcTime: padded(""),
        };
        // SAFETY: per the contract.
        unsafe { put(info, value) }
    })
}

/// The mechanism list.
///
/// # Safety
/// `count` valid; `list` NULL or valid for `*count` entries.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        module()?;
        check_slot(slot)?;
        let all = mechanisms::MECHANISMS;
        if count.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        if !list.is_null() {
            // SAFETY: valid by the contract.
            let cap = unsafe { *count } as usize;
            if cap < all.len() {
                // SAFETY: as above.
                unsafe { put(count, all.len() as CK_ULONG) }?;
                return Err(Error::Rv(CKR_BUFFER_TOO_SMALL));
            }
            for (i, m) in all.iter().enumerate() {
                // SAFETY: `list` holds at least all.len() entries.
                unsafe { list.add(i).write(m.0) };
            }
        }
        // SAFETY: as above.
        unsafe { put(count, all.len() as CK_ULONG) }
    })
}

/// A mechanism's information.
///
/// # Safety
/// `info` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slot: CK_SLOT_ID,
    kind: CK_MECHANISM_TYPE,
    info: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    guard(|| {
        module()?;
        check_slot(slot)?;
        let value = mechanisms::info(kind).ok_or(Error::Rv(CKR_MECHANISM_INVALID))?;
        // SAFETY: per the contract.
        unsafe { put(info, value) }
    })
}

/// Opens a session.
///
/// # Safety
/// `session` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slot: CK_SLOT_ID,
    flags: CK_FLAGS,
    _app: *mut c_void,
    _notify: CK_NOTIFY,
    session: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    guard(|| {
        let m = module()?;
        check_slot(slot)?;
        if session.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        let h = m.open_session(flags)?;
        // SAFETY: per the contract.
        unsafe { put(session, h) }
    })
}

/// Closes a session.
#[no_mangle]
pub extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| module()?.close_session(session))
}

/// Closes every session.
#[no_mangle]
pub extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
    guard(|| {
        let m = module()?;
        check_slot(slot)?;
        m.close_all();
        Ok(())
    })
}

/// Session information.
///
/// # Safety
/// `info` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(session: CK_SESSION_HANDLE, info: *mut CK_SESSION_INFO) -> CK_RV {
    guard(|| {
        let value = with_session(session, |m, s| {
            Ok(CK_SESSION_INFO { slotID: SLOT, state: m.session_state(s), flags: s.flags, ulDeviceError: 0 })
        })?;
        // SAFETY: per the contract.
        unsafe { put(info, value) }
    })
}

/// Logs the application in (see [`Module::login`]).
///
/// # Safety
/// `pin` is NULL or valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_Login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let m = module()?;
        m.session(session)?;
        // SAFETY: per the contract.
        let pin = zeroize::Zeroizing::new(unsafe { bytes(pin, len) }?.to_vec());
        m.login(user, &pin)
    })
}

/// Logs the application out.
#[no_mangle]
pub extern "C" fn C_Logout(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| {
        let m = module()?;
        m.session(session)?;
        m.logout()
    })
}

/// Schedules the deletion of the key behind the object (both halves of a key pair).
#[no_mangle]
pub extern "C" fn C_DestroyObject(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| with_session(session, |m, s| m.destroy(s, object)))
}

/// An estimate of the object's size.
///
/// # Safety
/// `size` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        let o = with_session(session, |m, _| m.object(object))?;
        // SAFETY: per the contract.
        unsafe { put(size, o.size() as CK_ULONG) }
    })
}

/// Reads attributes: every attribute is answered; the result is the first
/// of `CKR_ATTRIBUTE_SENSITIVE`, `CKR_ATTRIBUTE_TYPE_INVALID`,
/// `CKR_BUFFER_TOO_SMALL` met (PKCS#11 allows any of them).
///
/// # Safety
/// `template` points to `count` attributes with valid buffers.
#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        let o = with_session(session, |m, _| m.object(object))?;
        if template.is_null() && count > 0 {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        let mut rv = CKR_OK;
        for i in 0..count as usize {
            // SAFETY: `template` holds `count` attributes.
            let a = unsafe { &mut *template.add(i) };
            match o.attribute(a.type_) {
                Attr::Value(v) => {
                    if a.pValue.is_null() {
                        a.ulValueLen = v.len() as CK_ULONG;
                    } else if (a.ulValueLen as usize) < v.len() {
                        a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        if rv == CKR_OK {
                            rv = CKR_BUFFER_TOO_SMALL;
                        }
                    } else {
                        // SAFETY: the buffer holds ulValueLen >= v.len() bytes.
                        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), a.pValue as *mut u8, v.len()) };
                        a.ulValueLen = v.len() as CK_ULONG;
                    }
                }
                Attr::Sensitive => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    if rv == CKR_OK {
                        rv = CKR_ATTRIBUTE_SENSITIVE;
                    }
                }
                Attr::Invalid => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    if rv == CKR_OK {
                        rv = CKR_ATTRIBUTE_TYPE_INVALID;
                    }
                }
            }
        }
        if rv == CKR_OK {
            Ok(())
        } else {
            Err(Error::Rv(rv))
        }
    })
}

/// Starts a search (one keys/list call).
///
/// # Safety
/// `template` points to `count` valid attributes.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let t = unsafe { self::template(template, count) }?;
        with_session(session, |m, s| m.find_init(s, &t))
    })
}

/// Continues a search.
///
/// # Safety
/// `objects` valid for `max` handles; `found` valid.
#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    session: CK_SESSION_HANDLE,
    objects: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    found: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        if found.is_null() || (objects.is_null() && max > 0) {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        let handles = with_session(session, |m, s| m.find(s, max as usize))?;
        for (i, h) in handles.iter().enumerate() {
            // SAFETY: `objects` holds `max` >= handles.len() entries.
            unsafe { objects.add(i).write(*h) };
        }
        // SAFETY: per the contract.
        unsafe { put(found, handles.len() as CK_ULONG) }
    })
}

/// Ends a search.
#[no_mangle]
pub extern "C" fn C_FindObjectsFinal(session: CK_SESSION_HANDLE) -> CK_RV {
    guard(|| with_session(session, |m, s| m.find_final(s)))
}

/// Starts an operation of `kind`.
///
/// # Safety
/// `mech` is NULL or a valid mechanism.
unsafe fn op_init(session: CK_SESSION_HANDLE, kind: OpKind, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let mechanism = unsafe { mechanism(mech) };
        with_session(session, |m, s| m.op_init(s, kind, &mechanism?, key))
    })
}

/// A single-part (`data` given) or final step producing output.
///
/// # Safety
/// `data` valid for `len`; `out` NULL or valid for `*out_len`; `out_len` valid.
unsafe fn op_output(
    session: CK_SESSION_HANDLE,
    kind: OpKind,
    data: Option<(*const u8, CK_ULONG)>,
    out: *mut u8,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        with_session(session, |m, s| {
            Module::op_active(s, kind)?;
            let mut step = || -> Result<Output> {
                let input = match data {
                    // SAFETY: per the contract.
                    Some((p, len)) => Some(unsafe { bytes(p, len) }?),
                    None => None,
                };
                // SAFETY: per the contract.
                let cap = unsafe { capacity(out, out_len) }?;
                m.output(s, kind, input, cap)
            };
            let output = step();
            if let Err(Error::Rv(CKR_ARGUMENTS_BAD)) = output {
                s_end(s, kind);
            }
            // SAFETY: per the contract.
            unsafe { write_output(out, out_len, output?) }
        })
    })
}

fn s_end(s: &mut Session, kind: OpKind) {
    let _ = Module::end(s, kind);
}

/// A multi-part update (buffered; no output yet).
///
/// # Safety
/// `data` valid for `len`; `out_len` NULL or valid.
unsafe fn op_update(
    session: CK_SESSION_HANDLE,
    kind: OpKind,
    data: *const u8,
    len: CK_ULONG,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let input = unsafe { bytes(data, len) }?;
        with_session(session, |m, s| m.update(s, kind, input))?;
        if !out_len.is_null() {
            // SAFETY: not NULL, valid by the contract.
            unsafe { put(out_len, 0) }?;
        }
        Ok(())
    })
}

/// Starts an encryption.
///
/// # Safety
/// `mech` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptInit(s: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_init(s, OpKind::Encrypt, mech, key) }
}

/// Single-part encryption.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_Encrypt(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_output(s, OpKind::Encrypt, Some((data, len)), out, out_len) }
}

/// Buffers encryption input (output comes at C_EncryptFinal).
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_update(s, OpKind::Encrypt, data, len, out_len) }
}

/// Ends a multi-part encryption with all the output.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(s: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_output(s, OpKind::Encrypt, None, out, out_len) }
}

/// Starts a decryption.
///
/// # Safety
/// `mech` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptInit(s: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_init(s, OpKind::Decrypt, mech, key) }
}

/// Single-part decryption (a size query answers an upper bound).
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_Decrypt(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_output(s, OpKind::Decrypt, Some((data, len)), out, out_len) }
}

/// Buffers decryption input.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    _out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_update(s, OpKind::Decrypt, data, len, out_len) }
}

/// Ends a multi-part decryption.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(s: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_output(s, OpKind::Decrypt, None, out, out_len) }
}

/// Starts a signature.
///
/// # Safety
/// `mech` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_SignInit(s: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_init(s, OpKind::Sign, mech, key) }
}

/// Single-part signature.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    out: *mut CK_BYTE,
    out_len: *mut CK_ULONG,
) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_output(s, OpKind::Sign, Some((data, len)), out, out_len) }
}

/// Buffers signature input.
///
/// # Safety
/// `data` valid for `len`.
#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(s: CK_SESSION_HANDLE, data: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_update(s, OpKind::Sign, data, len, std::ptr::null_mut()) }
}

/// Ends a multi-part signature.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(s: CK_SESSION_HANDLE, out: *mut CK_BYTE, out_len: *mut CK_ULONG) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_output(s, OpKind::Sign, None, out, out_len) }
}

/// Starts a verification.
///
/// # Safety
/// `mech` is NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyInit(s: CK_SESSION_HANDLE, mech: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_init(s, OpKind::Verify, mech, key) }
}

/// Single-part verification.
///
/// # Safety
/// Buffers valid for their lengths.
#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    s: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    len: CK_ULONG,
    sig: *mut CK_BYTE,
    sig_len: CK_ULONG,
) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let (data, sig) = (unsafe { bytes(data, len) }, unsafe { bytes(sig, sig_len) });
        with_session(s, |m, sess| {
            Module::op_active(sess, OpKind::Verify)?;
            match (data, sig) {
                (Ok(d), Ok(g)) => m.verify(sess, Some(d), g),
                (Err(e), _) | (_, Err(e)) => {
                    s_end(sess, OpKind::Verify);
                    Err(e)
                }
            }
        })
    })
}

/// Buffers verification input.
///
/// # Safety
/// `data` valid for `len`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(s: CK_SESSION_HANDLE, data: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    // SAFETY: per the contract.
    unsafe { op_update(s, OpKind::Verify, data, len, std::ptr::null_mut()) }
}

/// Ends a multi-part verification.
///
/// # Safety
/// `sig` valid for `sig_len`.
#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(s: CK_SESSION_HANDLE, sig: *mut CK_BYTE, sig_len: CK_ULONG) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let sig = unsafe { bytes(sig, sig_len) };
        with_session(s, |m, sess| {
            Module::op_active(sess, OpKind::Verify)?;
            match sig {
                Ok(g) => m.verify(sess, None, g),
                Err(e) => {
                    s_end(sess, OpKind::Verify);
                    Err(e)
                }
            }
        })
    })
}

/// Generates an AES or generic secret key.
///
/// # Safety
/// Pointers valid per PKCS#11.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    tmpl: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let (mechanism, t) = (unsafe { mechanism(mech) }?, unsafe { template(tmpl, count) }?);
        if key.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        let h = with_session(s, |m, sess| m.generate_key(sess, &mechanism, &t))?;
        // SAFETY: per the contract.
        unsafe { put(key, h) }
    })
}

/// Generates an RSA, EC or Ed25519 key pair.
///
/// # Safety
/// Pointers valid per PKCS#11.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    s: CK_SESSION_HANDLE,
    mech: *mut CK_MECHANISM,
    pub_tmpl: *mut CK_ATTRIBUTE,
    pub_count: CK_ULONG,
    priv_tmpl: *mut CK_ATTRIBUTE,
    priv_count: CK_ULONG,
    pub_key: *mut CK_OBJECT_HANDLE,
    priv_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    guard(|| {
        // SAFETY: per the contract.
        let mechanism = unsafe { mechanism(mech) }?;
        // SAFETY: per the contract.
        let (p, k) = (unsafe { template(pub_tmpl, pub_count) }?, unsafe { template(priv_tmpl, priv_count) }?);
        if pub_key.is_null() || priv_key.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        let (ph, kh) = with_session(s, |m, sess| m.generate_key_pair(sess, &mechanism, &p, &k))?;
        // SAFETY: per the contract.
        unsafe { put(pub_key, ph) }?;
        // SAFETY: per the contract.
        unsafe { put(priv_key, kh) }
    })
}

/// Accepted and ignored: the randomness comes from AWS-LC.
#[no_mangle]
pub extern "C" fn C_SeedRandom(s: CK_SESSION_HANDLE, _seed: *mut CK_BYTE, _len: CK_ULONG) -> CK_RV {
    guard(|| with_session(s, |_, _| Ok(())))
}

/// Random bytes (AWS-LC's generator in this process; no network).
///
/// # Safety
/// `out` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(s: CK_SESSION_HANDLE, out: *mut CK_BYTE, len: CK_ULONG) -> CK_RV {
    guard(|| {
        with_session(s, |_, _| Ok(()))?;
        if len == 0 {
            return Ok(());
        }
        if out.is_null() {
            return Err(Error::Rv(CKR_ARGUMENTS_BAD));
        }
        // SAFETY: valid for `len` bytes by the contract.
        let buf = unsafe { std::slice::from_raw_parts_mut(out, len as usize) };
        crate::random(buf)
    })
}

/// No parallel functions.
#[no_mangle]
pub extern "C" fn C_GetFunctionStatus(_s: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_PARALLEL
}

/// No parallel functions.
#[no_mangle]
pub extern "C" fn C_CancelFunction(_s: CK_SESSION_HANDLE) -> CK_RV {
    CKR_FUNCTION_NOT_PARALLEL
}

macro_rules! not_supported {
    ($rv:expr; $($name:ident($($arg:ty),*);)*) => {$(
        /// Not supported by this module.
        #[no_mangle]
        pub extern "C" fn $name($(_: $arg),*) -> CK_RV {
            guard(|| { module()?; Err(Error::Rv($rv)) })
        }
    )*};
}

not_supported! { CKR_FUNCTION_NOT_SUPPORTED;
    C_InitToken(CK_SLOT_ID, *mut CK_UTF8CHAR, CK_ULONG, *mut CK_UTF8CHAR);
    C_InitPIN(CK_SESSION_HANDLE, *mut CK_UTF8CHAR, CK_ULONG);
    C_SetPIN(CK_SESSION_HANDLE, *mut CK_UTF8CHAR, CK_ULONG, *mut CK_UTF8CHAR, CK_ULONG);
    C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE);
    C_DigestInit(CK_SESSION_HANDLE, *mut CK_MECHANISM);
    C_Digest(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG);
    C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
    C_DigestFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SignRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_SignRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_VerifyRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_VerifyRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_UnwrapKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_DeriveKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, *mut c_void);
}

not_supported! { CKR_ACTION_PROHIBITED;
    C_CreateObject(CK_SESSION_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_CopyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_SetAttributeValue(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG);
    C_WrapKey(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
}

static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: VERSION,
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(C_SignRecover),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(C_VerifyRecover),
    C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};
