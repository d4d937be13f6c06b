//! The mechanisms the token offers, and how each maps onto a VSSM request.

use crate::der::hash_for_digest_len;
use crate::error::{Error, Result};
use crate::objects::Object;
use cryptoki_sys::*;

/// A mechanism parameter as decoded from the caller's `CK_MECHANISM`.
#[derive(Debug, Clone, Default)]
pub enum Param {
    /// No parameter (or one the mechanism ignores).
    #[default]
    None,
    /// An IV (CBC) or counter block (CTR: `CK_AES_CTR_PARAMS`).
    Iv(Vec<u8>),
    /// `CK_GCM_PARAMS`.
    Gcm {
        /// The IV.
        iv: Vec<u8>,
        /// Additional authenticated data.
        aad: Vec<u8>,
        /// Tag bits.
        tag_bits: CK_ULONG,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS`.
    Oaep {
        /// Hash mechanism.
        hash: CK_MECHANISM_TYPE,
        /// MGF.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// Source type.
        source: CK_ULONG,
        /// Label length.
        label_len: CK_ULONG,
    },
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        /// Hash mechanism.
        hash: CK_MECHANISM_TYPE,
        /// MGF.
        mgf: CK_RSA_PKCS_MGF_TYPE,
        /// Salt length.
        salt: CK_ULONG,
    },
    /// A parameter of the wrong size or shape.
    Bad,
}

/// A mechanism from the caller.
#[derive(Debug, Clone)]
pub struct Mechanism {
    /// CKM_*.
    pub kind: CK_MECHANISM_TYPE,
    /// Its parameter.
    pub param: Param,
}

/// Every mechanism with (min key size, max key size, flags); key sizes in
/// bits for RSA and EC, bytes for secret keys.
pub const MECHANISMS: &[(CK_MECHANISM_TYPE, CK_ULONG, CK_ULONG, CK_FLAGS)] = &[
    (CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096, CKF_HW | CKF_GENERATE_KEY_PAIR),
    (CKM_RSA_PKCS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_RSA_PKCS_OAEP, 2048, 4096, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_RSA_PKCS_PSS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA1_RSA_PKCS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_RSA_PKCS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_RSA_PKCS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_RSA_PKCS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_RSA_PKCS_PSS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_RSA_PKCS_PSS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_RSA_PKCS_PSS, 2048, 4096, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_EC_KEY_PAIR_GEN, 256, 521, CKF_HW | CKF_GENERATE_KEY_PAIR | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
    (CKM_ECDSA, 256, 521, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
    (CKM_ECDSA_SHA1, 256, 521, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
    (CKM_ECDSA_SHA256, 256, 521, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
    (CKM_ECDSA_SHA384, 256, 521, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
    (CKM_ECDSA_SHA512, 256, 521, CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, 255, CKF_HW | CKF_GENERATE_KEY_PAIR),
    (CKM_EDDSA, 255, 255, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_AES_KEY_GEN, 16, 32, CKF_HW | CKF_GENERATE),
    (CKM_AES_ECB, 16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_AES_CBC, 16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_AES_CBC_PAD, 16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_AES_CTR, 16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_AES_GCM, 16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT),
    (CKM_GENERIC_SECRET_KEY_GEN, 16, 128, CKF_HW | CKF_GENERATE),
    (CKM_SHA_1_HMAC, 16, 128, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA256_HMAC, 16, 128, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA384_HMAC, 16, 128, CKF_HW | CKF_SIGN | CKF_VERIFY),
    (CKM_SHA512_HMAC, 16, 128, CKF_HW | CKF_SIGN | CKF_VERIFY),
];

/// The info of mechanism `kind`, if offered.
pub fn info(kind: CK_MECHANISM_TYPE) -> Option<CK_MECHANISM_INFO> {
    MECHANISMS.iter().find(|m| m.0 == kind).map(|&(_, min, max, flags)| CK_MECHANISM_INFO {
        ulMinKeySize: min,
        ulMaxKeySize: max,
        flags,
    })
}

/// How a signature is computed through VSSM.
#[derive(Debug, Clone)]
pub enum SignPlan {
    /// asymmetric/sign: the algorithm, whether the input is a digest
    /// (`hashed`), whether the input is a DigestInfo to unwrap, and the ECDSA
    /// field size when the output must be converted DER → raw r‖s.
    Asymmetric {
        /// The VSSM algorithm (for DigestInfo input: decided from the input).
        algorithm: String,
        /// The caller's data is the digest.
        hashed: bool,
        /// CKM_RSA_PKCS: the data is a DigestInfo.
        digest_info: bool,
        /// CKM_ECDSA: the digest length picks the hash.
        ecdsa_digest: bool,
        /// ECDSA: field size in bytes for raw r‖s.
        ecdsa_field: Option<usize>,
        /// PSS with a given hash: the digest length it needs.
        digest_len: Option<usize>,
    },
    /// hmac/create | hmac/verify.
    Hmac {
        /// SHA1, SHA256, SHA384 or SHA512.
        algorithm: &'static str,
        /// Output length.
        len: usize,
    },
}

fn hash_name(hash: CK_MECHANISM_TYPE) -> Option<(&'static str, CK_RSA_PKCS_MGF_TYPE, usize)> {
    match hash {
        CKM_SHA_1 => Some(("SHA1", CKG_MGF1_SHA1, 20)),
        CKM_SHA256 => Some(("SHA256", CKG_MGF1_SHA256, 32)),
        CKM_SHA384 => Some(("SHA384", CKG_MGF1_SHA384, 48)),
        CKM_SHA512 => Some(("SHA512", CKG_MGF1_SHA512, 64)),
        _ => None,
    }
}

/// Checks PSS parameters against the mechanism's hash (None: any of SHA-256/384/512).
fn pss(param: &Param, want: Option<CK_MECHANISM_TYPE>) -> Result<(&'static str, usize)> {
    let Param::Pss { hash, mgf, salt } = param else {
        return Err(Error::Rv(CKR_MECHANISM_PARAM_INVALID));
    };
    let (name, mgf_want, len) = hash_name(*hash).ok_or(Error::Rv(CKR_MECHANISM_PARAM_INVALID))?;
    if name == "SHA1" || *mgf != mgf_want || *salt as usize != len || want.is_some_and(|w| w != *hash) {
        return Err(Error::Rv(CKR_MECHANISM_PARAM_INVALID));
    }
    Ok((name, len))
}

/// The plan for signing or verifying with `mechanism` on `object`.
pub fn sign_plan(mechanism: &Mechanism, object: &Object) -> Result<SignPlan> {
    let kt = object.key.ck_key_type();
    let wrong_key = Error::Rv(CKR_KEY_TYPE_INCONSISTENT);
    let plain = |algorithm: &str| SignPlan::Asymmetric {
        algorithm: algorithm.to_string(),
        hashed: false,
        digest_info: false,
        ecdsa_digest: false,
        ecdsa_field: None,
        digest_len: None,
    };
    let ecdsa_field = Some(crate::der::field_bytes(object.key.key_bits));
    let plan = match mechanism.kind {
        CKM_RSA_PKCS if kt == CKK_RSA => SignPlan::Asymmetric {
            algorithm: String::new(),
            hashed: true,
            digest_info: true,
            ecdsa_digest: false,
            ecdsa_field: None,
            digest_len: None,
        },
        CKM_SHA1_RSA_PKCS if kt == CKK_RSA => plain("SHA1withRSA"),
        CKM_SHA256_RSA_PKCS if kt == CKK_RSA => plain("SHA256withRSA"),
        CKM_SHA384_RSA_PKCS if kt == CKK_RSA => plain("SHA384withRSA"),
        CKM_SHA512_RSA_PKCS if kt == CKK_RSA => plain("SHA512withRSA"),
        CKM_RSA_PKCS_PSS if kt == CKK_RSA => {
            let (name, len) = pss(&mechanism.param, None)?;
            SignPlan::Asymmetric {
                algorithm: format!("{name}withRSA/PSS"),
                hashed: true,
                digest_info: false,
                ecdsa_digest: false,
                ecdsa_field: None,
                digest_len: Some(len),
            }
        }
        CKM_SHA256_RSA_PKCS_PSS | CKM_SHA384_RSA_PKCS_PSS | CKM_SHA512_RSA_PKCS_PSS if kt == CKK_RSA => {
            let hash = match mechanism.kind {
                CKM_SHA256_RSA_PKCS_PSS => CKM_SHA256,
                CKM_SHA384_RSA_PKCS_PSS => CKM_SHA384,
                _ => CKM_SHA512,
            };
            let (name, _) = pss(&mechanism.param, Some(hash))?;
            plain(&format!("{name}withRSA/PSS"))
        }
        CKM_ECDSA if kt == CKK_EC => SignPlan::Asymmetric {
            algorithm: String::new(),
            hashed: true,
            digest_info: false,
            ecdsa_digest: true,
            ecdsa_field,
            digest_len: None,
        },
        CKM_ECDSA_SHA1 | CKM_ECDSA_SHA256 | CKM_ECDSA_SHA384 | CKM_ECDSA_SHA512 if kt == CKK_EC => {
            let hash = match mechanism.kind {
                CKM_ECDSA_SHA1 => "SHA1",
                CKM_ECDSA_SHA256 => "SHA256",
                CKM_ECDSA_SHA384 => "SHA384",
                _ => "SHA512",
            };
            let mut plan = plain(&format!("{hash}withECDSA"));
            if let SignPlan::Asymmetric { ecdsa_field: f, .. } = &mut plan {
                *f = ecdsa_field;
            }
            plan
        }
        CKM_EDDSA if kt == CKK_EC_EDWARDS => plain("Ed25519"),
        CKM_SHA_1_HMAC | CKM_SHA256_HMAC | CKM_SHA384_HMAC | CKM_SHA512_HMAC if kt == CKK_GENERIC_SECRET => {
            let (algorithm, len) = match mechanism.kind {
                CKM_SHA_1_HMAC => ("SHA1", 20),
                CKM_SHA256_HMAC => ("SHA256", 32),
                CKM_SHA384_HMAC => ("SHA384", 48),
                _ => ("SHA512", 64),
            };
            SignPlan::Hmac { algorithm, len }
        }
        k if info(k).is_some_and(|i| i.flags & (CKF_SIGN | CKF_VERIFY) != 0) => return Err(wrong_key),
        _ => return Err(Error::Rv(CKR_MECHANISM_INVALID)),
    };
    Ok(plan)
}

impl SignPlan {
    /// The signature length for `object`.
    pub fn signature_len(&self, object: &Object) -> usize {
        match self {
            SignPlan::Hmac { len, .. } => *len,
            SignPlan::Asymmetric { .. } => object.key.signature_len(),
        }
    }

    /// For digest input: the VSSM algorithm and the digest, else a data error.
    pub fn resolve_digest<'a>(&self, data: &'a [u8]) -> Result<(String, &'a [u8])> {
        match self {
            SignPlan::Asymmetric { digest_info: true, .. } => {
                let (hash, digest) = crate::der::parse_digest_info(data).ok_or(Error::Rv(CKR_DATA_INVALID))?;
                Ok((format!("{hash}withRSA"), digest))
            }
            SignPlan::Asymmetric { ecdsa_digest: true, .. } => {
                let hash = hash_for_digest_len(data.len()).ok_or(Error::Rv(CKR_DATA_LEN_RANGE))?;
                Ok((format!("{hash}withECDSA"), data))
            }
            SignPlan::Asymmetric { algorithm, digest_len: Some(len), .. } => {
                if data.len() != *len {
                    return Err(Error::Rv(CKR_DATA_LEN_RANGE));
                }
                Ok((algorithm.clone(), data))
            }
            SignPlan::Asymmetric { algorithm, .. } => Ok((algorithm.clone(), data)),
            SignPlan::Hmac { algorithm, .. } => Ok((algorithm.to_string(), data)),
        }
    }
}

/// How an encryption or decryption is done through VSSM.
#[derive(Debug, Clone)]
pub struct CipherPlan {
    /// `symmetric` or `asymmetric`.
    pub family: &'static str,
    /// The VSSM algorithm.
    pub algorithm: String,
    /// Caller IV (CBC, CTR: 16 bytes; GCM: 12 bytes).
    pub iv: Option<Vec<u8>>,
    /// GCM AAD.
    pub aad: Vec<u8>,
    /// The mode, for lengths.
    pub mode: Mode,
}

/// The cipher mode, for lengths and layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// AES-ECB, no padding.
    Ecb,
    /// AES-CBC, no padding.
    Cbc,
    /// AES-CBC, PKCS#7 padding.
    CbcPad,
    /// AES-CTR.
    Ctr,
    /// AES-GCM with a 16-byte tag.
    Gcm,
    /// RSA (PKCS#1 v1.5 or OAEP): output = modulus bytes.
    Rsa,
}

/// The plan for encrypting (`encrypt`) or decrypting with `mechanism` on `object`.
pub fn cipher_plan(mechanism: &Mechanism, object: &Object) -> Result<CipherPlan> {
    let kt = object.key.ck_key_type();
    let aes = kt == CKK_AES;
    let sym = |algorithm: &str, iv: Option<Vec<u8>>, aad: Vec<u8>, mode: Mode| CipherPlan {
        family: "symmetric",
        algorithm: algorithm.to_string(),
        iv,
        aad,
        mode,
    };
    let iv16 = |param: &Param| match param {
        Param::Iv(iv) if iv.len() == 16 => Ok(iv.clone()),
        _ => Err(Error::Rv(CKR_MECHANISM_PARAM_INVALID)),
    };
    let plan = match mechanism.kind {
        CKM_AES_ECB if aes => sym("AES/ECB/NoPadding", None, Vec::new(), Mode::Ecb),
        CKM_AES_CBC if aes => sym("AES/CBC/NoPadding", Some(iv16(&mechanism.param)?), Vec::new(), Mode::Cbc),
        CKM_AES_CBC_PAD if aes => sym("AES/CBC/PKCS5Padding", Some(iv16(&mechanism.param)?), Vec::new(), Mode::CbcPad),
        CKM_AES_CTR if aes => sym("AES/CTR/NoPadding", Some(iv16(&mechanism.param)?), Vec::new(), Mode::Ctr),
        CKM_AES_GCM if aes => match &mechanism.param {
            Param::Gcm { iv, aad, tag_bits: 128 } if iv.len() == 12 => {
                sym("AES/GCM/NoPadding", Some(iv.clone()), aad.clone(), Mode::Gcm)
            }
            _ => return Err(Error::Rv(CKR_MECHANISM_PARAM_INVALID)),
        },
        CKM_RSA_PKCS if kt == CKK_RSA => {
            CipherPlan { family: "asymmetric", algorithm: "RSA".into(), iv: None, aad: Vec::new(), mode: Mode::Rsa }
        }
        CKM_RSA_PKCS_OAEP if kt == CKK_RSA => {
            let Param::Oaep { hash, mgf, source, label_len } = mechanism.param else {
                return Err(Error::Rv(CKR_MECHANISM_PARAM_INVALID));
            };
            let (name, mgf_want, _) = hash_name(hash).ok_or(Error::Rv(CKR_MECHANISM_PARAM_INVALID))?;
            if mgf != mgf_want || !(source == 0 || source == CKZ_DATA_SPECIFIED) || label_len != 0 {
                return Err(Error::Rv(CKR_MECHANISM_PARAM_INVALID));
            }
            CipherPlan {
                family: "asymmetric",
                algorithm: format!("RSA-OAEP/{name}"),
                iv: None,
                aad: Vec::new(),
                mode: Mode::Rsa,
            }
        }
        k if info(k).is_some_and(|i| i.flags & (CKF_ENCRYPT | CKF_DECRYPT) != 0) => {
            return Err(Error::Rv(CKR_KEY_TYPE_INCONSISTENT))
        }
        _ => return Err(Error::Rv(CKR_MECHANISM_INVALID)),
    };
    Ok(plan)
}

impl CipherPlan {
    /// Output length (exact for encryption; an upper bound for decryption)
    /// for `len` input bytes; `Err` when the input length is impossible.
    pub fn output_len(&self, encrypt: bool, len: usize, object: &Object) -> Result<usize> {
        let bad = Error::Rv(if encrypt { CKR_DATA_LEN_RANGE } else { CKR_ENCRYPTED_DATA_LEN_RANGE });
        match (self.mode, encrypt) {
            (Mode::Ecb | Mode::Cbc, _) if !len.is_multiple_of(16) => Err(bad),
            (Mode::Ecb | Mode::Cbc | Mode::Ctr, _) => Ok(len),
            (Mode::CbcPad, true) => Ok(len / 16 * 16 + 16),
            (Mode::CbcPad, false) if !len.is_multiple_of(16) || len == 0 => Err(bad),
            (Mode::CbcPad, false) => Ok(len),
            (Mode::Gcm, true) => Ok(len + 16),
            (Mode::Gcm, false) if len < 16 => Err(bad),
            (Mode::Gcm, false) => Ok(len - 16),
            (Mode::Rsa, _) => Ok(object.key.public.modulus.len()),
        }
    }

    /// Whether the encryption output length is exact (known before the call).
    pub fn exact(&self, encrypt: bool) -> bool {
        encrypt || matches!(self.mode, Mode::Ecb | Mode::Cbc | Mode::Ctr | Mode::Gcm)
    }

    /// The node's input for a decryption: the caller's IV in front (CBC,
    /// CTR, GCM), as `symmetric/decrypt` reads its layout.
    pub fn decrypt_input(&self, data: &[u8]) -> Vec<u8> {
        let mut input = self.iv.clone().unwrap_or_default();
        input.extend_from_slice(data);
        input
    }

    /// The caller's output of an encryption: without the IV the node puts in front.
    pub fn encrypt_output(&self, mut output: Vec<u8>) -> Result<Vec<u8>> {
        let skip = self.iv.as_ref().map_or(0, Vec::len);
        if output.len() < skip {
            return Err(Error::BadAnswer("short ciphertext".into()));
        }
        output.drain(..skip);
        Ok(output)
    }
}

/// The hash name of a CKM_ECDSA digest length, re-exported for callers.
pub fn ecdsa_hash(len: usize) -> Option<&'static str> {
    hash_for_digest_len(len)
}
