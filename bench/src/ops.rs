//! The benchmarked operations: one table row per op, everything else is generic.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use crate::bare;

/// The key an op needs, created through `/REST/v1/admin/generatekey`.
#[derive(Debug)]
pub struct KeySpec {
    /// `keyName`.
    pub name: &'static str,
    /// `keyType`: SYMMETRIC, ASYMMETRIC or MAC.
    pub key_type: &'static str,
    /// `keySpec` (RSA or EC), asymmetric keys only.
    pub key_spec: Option<&'static str>,
    /// `keySize`: bytes for SYMMETRIC/MAC, bits or curve size for ASYMMETRIC.
    pub key_size: u64,
}

/// One benchmarked operation.
#[derive(Debug)]
pub struct Op {
    /// Short name used by `--ops` and in the JSON output.
    pub name: &'static str,
    /// Human-readable description for the table.
    pub label: &'static str,
    /// API path (POST).
    pub path: &'static str,
    /// `algorithm` request field.
    pub algorithm: &'static str,
    /// Length of the `input` bytes (of the plaintext, for decryption).
    pub input_len: usize,
    /// Items per request: 1 is a single request; more sends a batch
    /// (`{"items": [...]}`) of that many copies of the request, each with
    /// its own `reference`.
    pub batch: usize,
    /// For decryption: the encryption endpoint and algorithm that turn the
    /// plaintext into the ciphertext sent as `input` (made once, at setup).
    pub encrypt_first: Option<(&'static str, &'static str)>,
    /// Key used by the op.
    pub key: KeySpec,
    /// Builds the equivalent bare primitive (the server's library), fed `input_len` bytes per call.
    pub bare: fn(usize) -> Box<dyn FnMut()>,
    /// The client the op is sent through.
    pub via: Via,
}

/// How an op reaches the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The JSON API, from this process's keep-alive connections.
    Json,
    /// The PKCS#11 module (`--pkcs11-module`), one session per thread; the
    /// module sends the same request (`path`, `algorithm`) to the JSON API.
    Pkcs11,
}

/// AES key of the AES ops.
const AES_KEY: KeySpec = KeySpec { name: "bench-aes", key_type: "SYMMETRIC", key_spec: None, key_size: 32 };
/// EC key of the ECDSA ops.
const EC_KEY: KeySpec = KeySpec { name: "bench-ec", key_type: "ASYMMETRIC", key_spec: Some("EC"), key_size: 256 };

/// All ops, in run order.
pub static OPS: [Op; 9] = [
    Op {
        name: "aes",
        label: "AES-256-GCM encrypt 1 KiB",
        path: "/REST/v1/symmetric/encrypt",
        algorithm: "AES/GCM/NoPadding",
        input_len: 1024,
        batch: 1,
        encrypt_first: None,
        key: AES_KEY,
        via: Via::Json,
        bare: bare::aes_256_gcm_seal,
    },
    Op {
        name: "hmac",
        label: "HMAC-SHA256 64 B",
        path: "/REST/v1/hmac/create",
        algorithm: "SHA256",
        input_len: 64,
        batch: 1,
        encrypt_first: None,
        key: KeySpec { name: "bench-hmac", key_type: "MAC", key_spec: None, key_size: 32 },
        via: Via::Json,
        bare: bare::hmac_sha256,
    },
    Op {
        name: "ecdsa",
        label: "ECDSA P-256 SHA256 sign",
        path: "/REST/v1/asymmetric/sign",
        algorithm: "SHA256withECDSA",
        input_len: 64,
        batch: 1,
        encrypt_first: None,
        key: EC_KEY,
        via: Via::Json,
        bare: bare::ecdsa_p256_sign,
    },
    Op {
        name: "rsa",
        label: "RSA-2048 PKCS#1 SHA256 sign",
        path: "/REST/v1/asymmetric/sign",
        algorithm: "SHA256withRSA",
        input_len: 64,
        batch: 1,
        encrypt_first: None,
        key: KeySpec { name: "bench-rsa", key_type: "ASYMMETRIC", key_spec: Some("RSA"), key_size: 2048 },
        via: Via::Json,
        bare: bare::rsa_2048_sign,
    },
    Op {
        name: "rsadec",
        label: "RSA-2048 OAEP-SHA256 decrypt",
        path: "/REST/v1/asymmetric/decrypt",
        algorithm: "RSA-OAEP/SHA256",
        input_len: 32,
        batch: 1,
        encrypt_first: Some(("/REST/v1/asymmetric/encrypt", "RSA-OAEP/SHA256")),
        key: KeySpec { name: "bench-rsa", key_type: "ASYMMETRIC", key_spec: Some("RSA"), key_size: 2048 },
        via: Via::Json,
        bare: bare::rsa_2048_oaep_decrypt,
    },
    // Batches (issue 10): the items per second of a batch of 100 against
    // single requests of the same item, and against the bare primitive.
    Op {
        name: "aes64",
        label: "AES-256-GCM encrypt 64 B",
        path: "/REST/v1/symmetric/encrypt",
        algorithm: "AES/GCM/NoPadding",
        input_len: 64,
        batch: 1,
        encrypt_first: None,
        key: AES_KEY,
        via: Via::Json,
        bare: bare::aes_256_gcm_seal,
    },
    Op {
        name: "aes64x100",
        label: "AES-GCM 64 B, batch of 100",
        path: "/REST/v1/symmetric/encrypt",
        algorithm: "AES/GCM/NoPadding",
        input_len: 64,
        batch: 100,
        encrypt_first: None,
        key: AES_KEY,
        via: Via::Json,
        bare: bare::aes_256_gcm_seal,
    },
    Op {
        name: "ecdsax100",
        label: "ECDSA P-256 sign, batch of 100",
        path: "/REST/v1/asymmetric/sign",
        algorithm: "SHA256withECDSA",
        input_len: 64,
        batch: 100,
        encrypt_first: None,
        key: EC_KEY,
        via: Via::Json,
        bare: bare::ecdsa_p256_sign,
    },
    // PKCS#11 (issue 11): the signing of `ecdsa` through libvssm_pkcs11.so.
    Op {
        name: "ecdsa-p11",
        label: "ECDSA P-256 sign, PKCS#11",
        path: "/REST/v1/asymmetric/sign",
        algorithm: "SHA256withECDSA",
        input_len: 64,
        batch: 1,
        encrypt_first: None,
        key: EC_KEY,
        via: Via::Pkcs11,
        bare: bare::ecdsa_p256_sign,
    },
];

/// Looks an op up by its short name.
pub fn find(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.name == name)
}

/// Deterministic, non-constant input of `len` bytes.
pub fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

impl Op {
    /// The request body sent on every iteration (built once, cloned
    /// cheaply), with `input` as the `input` bytes; for a batch op
    /// `{"items": [...]}` of `batch` such requests, referenced "0", "1", ….
    pub fn request_body(&self, input: &[u8]) -> Bytes {
        if self.batch == 1 {
            return self.body_with(self.algorithm, input);
        }
        let items: Vec<_> = (0..self.batch)
            .map(|i| {
                json!({
                    "reference": i.to_string(),
                    "keyName": self.key.name,
                    "algorithm": self.algorithm,
                    "input": B64.encode(input),
                })
            })
            .collect();
        Bytes::from(json!({ "items": items }).to_string())
    }

    /// The request body of the setup call that encrypts this op's
    /// plaintext, for ops that decrypt.
    pub fn encrypt_body(&self) -> Option<(&'static str, Bytes)> {
        let (path, algorithm) = self.encrypt_first?;
        Some((path, self.body_with(algorithm, &input(self.input_len))))
    }

    fn body_with(&self, algorithm: &str, input: &[u8]) -> Bytes {
        let body = json!({
            "keyName": self.key.name,
            "algorithm": algorithm,
            "input": B64.encode(input),
        });
        Bytes::from(body.to_string())
    }

    /// The `generatekey` request body creating this op's key.
    pub fn generatekey_body(&self, admin_password: &str) -> Bytes {
        let mut body = json!({
            "adminPassword": admin_password,
            "keyName": self.key.name,
            "keyType": self.key.key_type,
            "keySize": self.key.key_size,
        });
        if let Some(spec) = self.key.key_spec {
            body["keySpec"] = spec.into();
        }
        Bytes::from(body.to_string())
    }
}
