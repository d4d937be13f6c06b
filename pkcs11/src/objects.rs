//! The object table: VSSM keys as PKCS#11 objects with stable handles, and
//! their attributes.
//!
//! A SYMMETRIC key is a `CKO_SECRET_KEY` of type `CKK_AES` (`CKK_DES` for an
//! 8-byte key), a MAC key a `CKO_SECRET_KEY` of type `CKK_GENERIC_SECRET`,
//! an ASYMMETRIC key a `CKO_PRIVATE_KEY` and a `CKO_PUBLIC_KEY` (`CKK_RSA`,
//! `CKK_EC` or `CKK_EC_EDWARDS`). `CKA_LABEL` is the name and `CKA_ID` the
//! UTF-8 name (or the id given at generation). Handles are keyed by (class,
//! key type, name) and never reused while the module is loaded.
//!
//! Name clashes: VSSM names are per type, so only secret keys can clash (a
//! SYMMETRIC and a MAC key of one name). A search that does not narrow
//! `CKA_KEY_TYPE` then returns only the SYMMETRIC one; private keys never
//! clash.

use crate::der::{field_bytes, public_values, PublicValues};
use cryptoki_sys::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The VSSM key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VssmType {
    /// SYMMETRIC (AES, DES, 3DES).
    Symmetric,
    /// ASYMMETRIC (RSA, EC, Ed25519).
    Asymmetric,
    /// MAC (HMAC).
    Mac,
}

impl VssmType {
    /// The API's name.
    pub fn api(self) -> &'static str {
        match self {
            VssmType::Symmetric => "SYMMETRIC",
            VssmType::Asymmetric => "ASYMMETRIC",
            VssmType::Mac => "MAC",
        }
    }
}

/// A key as `keys/list` or `keys/publickey` describe it.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The key name.
    pub name: String,
    /// SYMMETRIC, ASYMMETRIC or MAC.
    pub vssm_type: VssmType,
    /// `RSA`, `EC`, `ED25519` (asymmetric), empty otherwise.
    pub spec: String,
    /// Bytes (symmetric, MAC).
    pub key_length: u64,
    /// Bits (asymmetric).
    pub key_bits: u32,
    /// DER SubjectPublicKeyInfo (asymmetric).
    pub spki: Vec<u8>,
    /// Parsed public values.
    pub public: PublicValues,
    /// Use operations the caller may do (None: not told, assume all the type has).
    pub operations: Option<Vec<String>>,
    /// The CKA_ID the key was generated with (the node's `objectId`); None:
    /// the CKA_ID is the name.
    pub object_id: Option<Vec<u8>>,
}

impl KeyEntry {
    /// Parses a KeyInfo (keys/list) or a keys/publickey answer (`key_type` given).
    pub fn from_json(v: &serde_json::Value, key_type: Option<VssmType>) -> Option<KeyEntry> {
        let name = v.get("name")?.as_str()?.to_string();
        let vssm_type = match key_type {
            Some(t) => t,
            None => match v.get("keyType")?.as_str()? {
                "SYMMETRIC" => VssmType::Symmetric,
                "ASYMMETRIC" => VssmType::Asymmetric,
                "MAC" => VssmType::Mac,
                _ => return None,
            },
        };
        let int = |field: &str| -> u64 {
            match v.get(field) {
                Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
                Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
                _ => 0,
            }
        };
        let spec = v.get("keySpec").and_then(|s| s.as_str()).unwrap_or_default().to_ascii_uppercase();
        let spki = match v.get("publicKey").and_then(|p| p.as_str()) {
            Some(b64) => crate::api::b64decode(b64)?,
            None => Vec::new(),
        };
        let public = if vssm_type == VssmType::Asymmetric { public_values(&spki)? } else { PublicValues::default() };
        let mut key_bits = int("keyBits") as u32;
        if key_bits == 0 && spec == "RSA" {
            key_bits = bit_length(&public.modulus);
        }
        let operations = v
            .get("operations")
            .and_then(|o| o.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect());
        let object_id = match v.get("objectId").and_then(|p| p.as_str()) {
            Some(b64) => Some(crate::api::b64decode(b64)?),
            None => None,
        };
        Some(KeyEntry {
            name,
            vssm_type,
            spec,
            key_length: int("keyLength"),
            key_bits,
            spki,
            public,
            operations,
            object_id,
        })
    }

    /// The PKCS#11 key type.
    pub fn ck_key_type(&self) -> CK_KEY_TYPE {
        match (self.vssm_type, self.spec.as_str()) {
            (VssmType::Symmetric, _) if self.key_length == 8 => CKK_DES,
            (VssmType::Symmetric, _) => CKK_AES,
            (VssmType::Mac, _) => CKK_GENERIC_SECRET,
            (VssmType::Asymmetric, "RSA") => CKK_RSA,
            (VssmType::Asymmetric, "ED25519") => CKK_EC_EDWARDS,
            (VssmType::Asymmetric, _) => CKK_EC,
        }
    }

    /// Signature length in bytes (RSA modulus, ECDSA r‖s, Ed25519, HMAC: the largest).
    pub fn signature_len(&self) -> usize {
        match self.ck_key_type() {
            CKK_RSA => self.public.modulus.len(),
            CKK_EC => 2 * field_bytes(self.key_bits),
            CKK_EC_EDWARDS => 64,
            _ => 64,
        }
    }

    /// Whether the caller may do `operation` (a keys/list operation name).
    fn may(&self, operation: &str) -> bool {
        self.operations.as_ref().is_none_or(|ops| ops.iter().any(|o| o == operation))
    }
}

fn bit_length(bytes: &[u8]) -> u32 {
    match bytes.iter().position(|&b| b != 0) {
        Some(i) => ((bytes.len() - i) * 8) as u32 - bytes[i].leading_zeros(),
        None => 0,
    }
}

/// One object: a class view of a key.
#[derive(Debug, Clone)]
pub struct Object {
    /// The handle.
    pub handle: CK_OBJECT_HANDLE,
    /// CKO_SECRET_KEY, CKO_PRIVATE_KEY or CKO_PUBLIC_KEY.
    pub class: CK_OBJECT_CLASS,
    /// The key.
    pub key: Arc<KeyEntry>,
    /// CKA_ID.
    pub id: Vec<u8>,
}

/// What reading one attribute gives.
pub enum Attr {
    /// The value.
    Value(Vec<u8>),
    /// Sensitive: never revealed.
    Sensitive,
    /// The object has no such attribute.
    Invalid,
}

fn bool_attr(b: bool) -> Attr {
    Attr::Value(vec![if b { CK_TRUE } else { CK_FALSE }])
}

fn ulong_attr(v: CK_ULONG) -> Attr {
    Attr::Value(v.to_ne_bytes().to_vec())
}

impl Object {
    /// Reads attribute `t`.
    pub fn attribute(&self, t: CK_ATTRIBUTE_TYPE) -> Attr {
        let key = &self.key;
        let kt = key.ck_key_type();
        let private = self.class != CKO_PUBLIC_KEY;
        let secret = self.class == CKO_SECRET_KEY;
        let rsa = kt == CKK_RSA;
        let ec = kt == CKK_EC || kt == CKK_EC_EDWARDS;
        let mac = kt == CKK_GENERIC_SECRET;
        match t {
            CKA_CLASS => ulong_attr(self.class),
            CKA_KEY_TYPE => ulong_attr(kt),
            CKA_TOKEN | CKA_LOCAL | CKA_DESTROYABLE => bool_attr(true),
            CKA_PRIVATE => bool_attr(private),
            CKA_MODIFIABLE | CKA_COPYABLE | CKA_DERIVE => bool_attr(false),
            CKA_LABEL => Attr::Value(key.name.as_bytes().to_vec()),
            CKA_ID => Attr::Value(self.id.clone()),
            CKA_START_DATE | CKA_END_DATE => Attr::Value(Vec::new()),
            CKA_KEY_GEN_MECHANISM => ulong_attr(match kt {
                CKK_RSA => CKM_RSA_PKCS_KEY_PAIR_GEN,
                CKK_EC => CKM_EC_KEY_PAIR_GEN,
                CKK_EC_EDWARDS => CKM_EC_EDWARDS_KEY_PAIR_GEN,
                CKK_AES => CKM_AES_KEY_GEN,
                CKK_DES => CKM_DES_KEY_GEN,
                _ => CKM_GENERIC_SECRET_KEY_GEN,
            }),
            CKA_SENSITIVE | CKA_ALWAYS_SENSITIVE | CKA_NEVER_EXTRACTABLE if private => bool_attr(true),
            CKA_EXTRACTABLE | CKA_ALWAYS_AUTHENTICATE | CKA_WRAP_WITH_TRUSTED if private => bool_attr(false),
            CKA_UNWRAP | CKA_SIGN_RECOVER if private => bool_attr(false),
            CKA_WRAP | CKA_VERIFY_RECOVER if !private || secret => bool_attr(false),
            CKA_TRUSTED if !private => bool_attr(false),
            CKA_SIGN if private => bool_attr(if mac { key.may("mac-create") } else { !secret && key.may("sign") }),
            CKA_DECRYPT if private => bool_attr((secret && !mac || rsa) && key.may("decrypt")),
            CKA_VERIFY if !private || secret => {
                bool_attr(if mac { key.may("mac-verify") } else { !secret && key.may("verify") })
            }
            CKA_ENCRYPT if !private || secret => bool_attr((secret && !mac || rsa) && key.may("encrypt")),
            CKA_VALUE_LEN if secret => ulong_attr(key.key_length as CK_ULONG),
            CKA_VALUE if private => Attr::Sensitive,
            CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1 | CKA_EXPONENT_2 | CKA_COEFFICIENT
                if private && rsa =>
            {
                Attr::Sensitive
            }
            CKA_MODULUS if rsa => Attr::Value(key.public.modulus.clone()),
            CKA_MODULUS_BITS if rsa => ulong_attr(key.key_bits as CK_ULONG),
            CKA_PUBLIC_EXPONENT if rsa => Attr::Value(key.public.exponent.clone()),
            CKA_EC_PARAMS if ec => Attr::Value(key.public.ec_params.clone()),
            CKA_EC_POINT if ec => Attr::Value(crate::der::octet_string(&key.public.point)),
            CKA_PUBLIC_KEY_INFO if !secret => Attr::Value(key.spki.clone()),
            _ => Attr::Invalid,
        }
    }

    /// Whether every attribute of `template` equals this object's value.
    pub fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template.iter().all(|(t, want)| match self.attribute(*t) {
            Attr::Value(v) => &v == want,
            _ => false,
        })
    }

    /// A size estimate for `C_GetObjectSize`.
    pub fn size(&self) -> usize {
        self.key.name.len() + self.key.spki.len() + 64
    }
}

/// All objects seen so far, with stable handles.
#[derive(Default)]
pub struct Table {
    handles: HashMap<(CK_OBJECT_CLASS, CK_KEY_TYPE, String), CK_OBJECT_HANDLE>,
    objects: HashMap<CK_OBJECT_HANDLE, Arc<Object>>,
    next: CK_OBJECT_HANDLE,
}

impl Table {
    /// Records `key` (replacing what was known of it) and answers its objects.
    pub fn upsert(&mut self, key: KeyEntry) -> Vec<Arc<Object>> {
        let key = Arc::new(key);
        let classes: &[CK_OBJECT_CLASS] = match key.vssm_type {
            VssmType::Asymmetric => &[CKO_PRIVATE_KEY, CKO_PUBLIC_KEY],
            _ => &[CKO_SECRET_KEY],
        };
        let id = key.object_id.clone().unwrap_or_else(|| key.name.as_bytes().to_vec());
        let mut out = Vec::new();
        for &class in classes {
            let slot = (class, key.ck_key_type(), key.name.clone());
            let handle = match self.handles.get(&slot) {
                Some(&h) => h,
                None => {
                    self.next += 1;
                    self.handles.insert(slot, self.next);
                    self.next
                }
            };
            let object = Arc::new(Object { handle, class, key: Arc::clone(&key), id: id.clone() });
            self.objects.insert(handle, Arc::clone(&object));
            out.push(object);
        }
        out
    }

    /// The object of `handle`.
    pub fn get(&self, handle: CK_OBJECT_HANDLE) -> Option<Arc<Object>> {
        self.objects.get(&handle).cloned()
    }

    /// Forgets the objects of a deleted key (their handles stay retired).
    pub fn remove(&mut self, key: &KeyEntry) {
        self.objects.retain(|_, o| !(o.key.name == key.name && o.key.vssm_type == key.vssm_type));
    }
}

/// Applies the clash rule to a search result: without `CKA_KEY_TYPE` in the
/// template, a MAC secret key is dropped when a SYMMETRIC key has its name.
pub fn resolve_clashes(found: Vec<Arc<Object>>, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> Vec<Arc<Object>> {
    if template.iter().any(|(t, _)| *t == CKA_KEY_TYPE) {
        return found;
    }
    let symmetric: std::collections::HashSet<String> =
        found.iter().filter(|o| o.key.vssm_type == VssmType::Symmetric).map(|o| o.key.name.clone()).collect();
    found.into_iter().filter(|o| !(o.key.vssm_type == VssmType::Mac && symmetric.contains(&o.key.name))).collect()
}
