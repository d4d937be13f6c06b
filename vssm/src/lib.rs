//! VSSM: a virtual software security module. Keys that nobody can export,
//! crypto operations over a mutual-TLS JSON API compatible with the first
//! VSSM, admin operations behind an scrypt-hashed password.
//!
//! Layout: [`wire`] (proto3-JSON messages), [`crypto`] (algorithms and key
//! material), [`keystore`], [`admin`] (password, throttling, backups),
//! [`audit`], [`tls`], [`server`] (the ports), [`node`] (lifecycle),
//! [`config`], [`hardening`], [`dev`] (the newcomer's single node).

#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod authz;
pub mod cloud;
pub mod cluster;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_api;
pub mod hardening;
pub mod keystore;
pub mod lifecycle;
pub mod node;
pub mod operator;
pub mod server;
pub mod tls;
pub mod wire;
