//! A joiner's attestation: the AWS instance identity document (JSON) and its
//! PKCS#7 `rsa2048` signature (BER), verified against AWS's pinned
//! certificates and the test CA of the unit tests.
//! Input: 2-byte little-endian document length, the document, the PKCS#7.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vssm::cloud::aws_identity::{verify_identity, IdentityDocument, TrustedSigners};

const TEST_CA_DER: &[u8] = include_bytes!("../../vssm/src/cloud/aws_identity/testdata/test-ca.der");

fn signers() -> &'static TrustedSigners {
    static SIGNERS: OnceLock<TrustedSigners> = OnceLock::new();
    SIGNERS.get_or_init(|| TrustedSigners::aws_published().with_test_ca(None, TEST_CA_DER).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (document, pkcs7) = rest.split_at(len);
    let _ = IdentityDocument::parse(document);
    let _ = verify_identity(document, pkcs7, signers());
});
