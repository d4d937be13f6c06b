//! VSSM's PKCS#11 module (`libvssm_pkcs11.so`): VSSM keys as a PKCS#11
//! v2.40 token for OpenSSL (libp11, pkcs11-provider), pkcs11-tool,
//! Bank-Vaults, OpenBao and any other HSM client.
//!
//! The module speaks the VSSM JSON API over mutual TLS (see `docs/API.md`);
//! it starts no thread and opens no socket before the first operation that
//! needs the node. Configuration: [`config`].

// CK_ULONG is u64 on LP64 targets only: conversions that are no-ops here are not elsewhere.
#![allow(clippy::unnecessary_cast, clippy::useless_conversion)]

pub mod api;
pub mod client;
pub mod config;
pub mod der;
pub mod error;
pub mod ffi;
pub mod identity;
pub mod mechanisms;
pub mod module;
pub mod objects;

/// Fills `buf` from AWS-LC's generator (through rustls' provider).
pub fn random(buf: &mut [u8]) -> error::Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| error::Error::Rv(cryptoki_sys::CKR_GENERAL_ERROR))
}
