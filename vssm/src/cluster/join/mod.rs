//! Attested join (port 8083). A node without the RPC key proves to a peer
//! that it is a current member of the cluster running a trusted image, and
//! receives the RPC key encrypted to a fresh X25519 key of its own.
//!
//! The peer checks: a fresh single-use challenge issued to the same source
//! address; the identity document's PKCS#7 signature against the pinned
//! per-region certificate (never one carried in the blob); account, region
//! and image; the TCP source address equal to the document's privateIp;
//! current Pending/InService membership; the joiner's config digest
//! ([`super::config_digest`]) equal to its own or an accepted one; in
//! strong mode an STS GetCallerIdentity request signed by a session of the
//! peer's own instance role named after the instance, whose signed headers
//! bind the challenge, the ephemeral key and the config digest. Every
//! decision is audited with its reason.

pub mod challenge;
pub mod client;
pub mod policy;
pub mod seal;
pub mod server;

pub use client::{join_any_peer, trusted_signers, Attestation};
pub use policy::JoinPolicy;
pub use server::JoinServer;
