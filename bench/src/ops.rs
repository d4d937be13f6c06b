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
    /// Length of the `input` bytes.
    pub input_len: usize,
    /// Key used by the op.
    pub key: KeySpec,
    /// Builds the equivalent bare ring primitive, fed `input_len` bytes per call.
    pub bare: fn(usize) -> Box<dyn FnMut()>,
}

/// All ops, in run order.
pub static OPS: [Op; 4] = [
    Op {
        name: "aes",
        label: "AES-256-GCM encrypt 1 KiB",
        path: "/REST/v1/symmetric/encrypt",
        algorithm: "AES/GCM/NoPadding",
        input_len: 1024,
        key: KeySpec { name: "bench-aes", key_type: "SYMMETRIC", key_spec: None, key_size: 32 },
        bare: bare::aes_256_gcm_seal,
    },
    Op {
        name: "hmac",
        label: "HMAC-SHA256 64 B",
        path: "/REST/v1/hmac/create",
        algorithm: "SHA256",
        input_len: 64,
        key: KeySpec { name: "bench-hmac", key_type: "MAC", key_spec: None, key_size: 32 },
        bare: bare::hmac_sha256,
    },
    Op {
        name: "ecdsa",
        label: "ECDSA P-256 SHA256 sign",
        path: "/REST/v1/asymmetric/sign",
        algorithm: "SHA256withECDSA",
        input_len: 64,
        key: KeySpec { name: "bench-ec", key_type: "ASYMMETRIC", key_spec: Some("EC"), key_size: 256 },
        bare: bare::ecdsa_p256_sign,
    },
    Op {
        name: "rsa",
        label: "RSA-2048 PKCS#1 SHA256 sign",
        path: "/REST/v1/asymmetric/sign",
        algorithm: "SHA256withRSA",
        input_len: 64,
        key: KeySpec { name: "bench-rsa", key_type: "ASYMMETRIC", key_spec: Some("RSA"), key_size: 2048 },
        bare: bare::rsa_2048_sign,
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
    /// The request body sent on every iteration (built once, cloned cheaply).
    pub fn request_body(&self) -> Bytes {
        let body = json!({
            "keyName": self.key.name,
            "algorithm": self.algorithm,
            "input": B64.encode(input(self.input_len)),
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
