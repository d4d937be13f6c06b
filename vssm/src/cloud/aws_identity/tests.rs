//! End-to-end tests: the real AWS blob, a forged blob, tampering, and a test CA
//! made with the openssl CLI (see `testdata/generate.sh`).

use std::net::IpAddr;

use proptest::prelude::*;

use super::ber::{self, Tlv};
use super::published::AWS_RSA2048_CERTS;
use super::{verify_identity, IdentityError, TrustedSigners};

const AWS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/aws-iid/");

fn shared(name: &str) -> Vec<u8> {
    let path = format!("{AWS_DIR}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn genuine() -> (Vec<u8>, Vec<u8>) {
    (shared("genuine-ap-southeast-2.document.json"), shared("genuine-ap-southeast-2.rsa2048.der"))
}

fn pem_der(pem: &[u8]) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem).unwrap().1.contents
}

fn ap_southeast_2_der() -> Vec<u8> {
    pem_der(&shared("aws-rsa2048-ap-southeast-2.pem"))
}

fn pinned(region: Option<&str>, der: &[u8]) -> TrustedSigners {
    TrustedSigners::empty().with_test_ca(region, der).unwrap()
}

const TEST_CA_DER: &[u8] = include_bytes!("testdata/test-ca.der");
const TEST_DOC: &[u8] = include_bytes!("testdata/test-ca.document.json");
const TEST_P7_DER: &[u8] = include_bytes!("testdata/test-ca.p7.der");
const TEST_P7_BER: &[u8] = include_bytes!("testdata/test-ca.p7.ber");
const TEST_P7_SHA1: &[u8] = include_bytes!("testdata/test-ca-sha1.p7.der");
const TEST_P7_NOATTR: &[u8] = include_bytes!("testdata/test-ca-noattr.p7.der");

/// Re-encodes every constructed element with indefinite lengths (maximal BER).
fn to_indefinite(t: &Tlv<'_>) -> Vec<u8> {
    let mut out = t.tag_bytes.to_vec();
    if t.constructed {
        out.push(0x80);
        for child in t.children().unwrap() {
            out.extend(to_indefinite(&child));
        }
        out.extend([0, 0]);
    } else {
        ber::push_length(&mut out, t.content.len());
        out.extend_from_slice(t.content);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle present")
}

#[test]
fn genuine_blob_verifies_against_pinned_region() {
    let (doc, p7) = genuine();
    for signers in [pinned(Some("ap-southeast-2"), &ap_southeast_2_der()), TrustedSigners::aws_published()] {
        let id = verify_identity(&doc, &p7, &signers).unwrap();
        assert_eq!(id.account_id, "189292791360");
        assert_eq!(id.region, "ap-southeast-2");
        assert_eq!(id.image_id, "ami-0cbde744623b7506b");
        assert_eq!(id.instance_id, "i-0c5541936caf78c12");
        assert_eq!(id.private_ip, "10.0.1.242".parse::<IpAddr>().unwrap());
        assert_eq!(id.availability_zone, "ap-southeast-2a");
        assert_eq!(id.pending_time.as_deref(), Some("2026-02-16T00:38:27Z"));
        assert_eq!(id.architecture.as_deref(), Some("arm64"));
    }
}

#[test]
fn genuine_blob_verifies_when_fully_indefinite_or_definite() {
    let (doc, p7) = genuine();
    let tlv = ber::parse_complete(&p7).unwrap();
    let signers = TrustedSigners::aws_published();
    let definite = tlv.to_definite().unwrap();
    assert_ne!(definite, p7);
    verify_identity(&doc, &definite, &signers).unwrap();
    verify_identity(&doc, &to_indefinite(&tlv), &signers).unwrap();
}

#[test]
fn forged_blob_is_refused_as_unpinned_signer() {
    let doc = shared("forged.document.json");
    let p7 = shared("forged-embedded-lookalike-cert.p7.der");
    for signers in [TrustedSigners::aws_published(), pinned(None, &ap_southeast_2_der())] {
        let err = verify_identity(&doc, &p7, &signers).unwrap_err();
        assert_eq!(err, IdentityError::SignerNotPinned { region: "ap-southeast-2".into() }, "{err}");
    }
    // It is well-formed and correctly signed by its embedded key: only pinning
    // rejects it. Trusting that embedded certificate (which a node never does)
    // makes it verify, proving the refusal above is the trust decision.
    let outer = ber::parse_complete(&p7).unwrap();
    let signed_data = outer.children().unwrap()[1].children().unwrap()[0];
    let certs = signed_data.children().unwrap().into_iter().find(|c| c.is_context(0)).unwrap();
    let embedded = certs.children().unwrap()[0].to_definite().unwrap();
    verify_identity(&doc, &p7, &pinned(Some("ap-southeast-2"), &embedded)).unwrap();
}

/// The IssuerAndSerialNumber of a blob's single SignerInfo, as DER.
fn signer_id(p7: &[u8]) -> Vec<u8> {
    let outer = ber::parse_complete(p7).unwrap();
    let signed_data = outer.children().unwrap()[1].children().unwrap()[0];
    let signer_infos = *signed_data.children().unwrap().last().unwrap();
    let signer_info = signer_infos.children().unwrap()[0];
    signer_info.children().unwrap()[1].to_definite().unwrap()
}

/// Re-encodes `t` (definite lengths), substituting any element whose DER is `from`.
fn splice(t: &Tlv<'_>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let der = t.to_definite().unwrap();
    if der == from {
        return to.to_vec();
    }
    if !t.constructed {
        return der;
    }
    let body: Vec<u8> = t.children().unwrap().iter().flat_map(|c| splice(c, from, to)).collect();
    let mut out = t.tag_bytes.to_vec();
    ber::push_length(&mut out, body.len());
    out.extend(body);
    out
}

#[test]
fn forged_signer_with_pinned_identity_fails_signature() {
    // Give the forged blob's signer AWS's issuer+serial: the pinned AWS key is
    // then used, and the forger's signature does not verify under it.
    let doc = shared("forged.document.json");
    let p7 = shared("forged-embedded-lookalike-cert.p7.der");
    let (forged_sid, aws_sid) = (signer_id(&p7), signer_id(&genuine().1));
    assert_ne!(forged_sid, aws_sid);
    let spliced = splice(&ber::parse_complete(&p7).unwrap(), &forged_sid, &aws_sid);
    assert_eq!(signer_id(&spliced), aws_sid);
    let err = verify_identity(&doc, &spliced, &TrustedSigners::aws_published()).unwrap_err();
    assert_eq!(err, IdentityError::SignatureInvalid, "{err}");
}

#[test]
fn modified_document_is_refused() {
    let (doc, p7) = genuine();
    let signers = TrustedSigners::aws_published();
    let at = find(&doc, b"i-0c5541936caf78c12") + 5;
    let mut tampered = doc.clone();
    tampered[at] ^= 0x01;
    let err = verify_identity(&tampered, &p7, &signers).unwrap_err();
    assert_eq!(err, IdentityError::ContentMismatch);
    assert_eq!(err.to_string(), "document is not the signed content");
    // Also tamper the attached copy: now the signed messageDigest catches it.
    let mut p7_tampered = p7.clone();
    let at_blob = find(&p7, b"i-0c5541936caf78c12") + 5;
    p7_tampered[at_blob] ^= 0x01;
    let err = verify_identity(&tampered, &p7_tampered, &signers).unwrap_err();
    assert_eq!(err, IdentityError::MessageDigestMismatch);
    assert_eq!(err.to_string(), "messageDigest does not match the document");
}

#[test]
fn tampered_signed_attributes_or_signature_fail() {
    let (doc, p7) = genuine();
    let signers = TrustedSigners::aws_published();
    // signingTime 260216003828Z -> 260216003829Z.
    let mut t = p7.clone();
    let at = find(&p7, b"260216003828Z") + 11;
    t[at] = b'9';
    assert_eq!(verify_identity(&doc, &t, &signers).unwrap_err(), IdentityError::SignatureInvalid);
    // One bit of the RSA signature value.
    let mut t = p7.clone();
    let at = p7.len() - 20;
    t[at] ^= 0x80;
    let err = verify_identity(&doc, &t, &signers).unwrap_err();
    assert_eq!(err, IdentityError::SignatureInvalid);
    assert_eq!(err.to_string(), "signature does not verify");
}

#[test]
fn certificate_pinned_for_another_region_is_not_used() {
    let (doc, p7) = genuine();
    let err = verify_identity(&doc, &p7, &pinned(Some("us-east-1"), &ap_southeast_2_der())).unwrap_err();
    assert_eq!(err, IdentityError::NoCertificatePinned { region: "ap-southeast-2".into() });
    assert_eq!(err.to_string(), "no certificate pinned for region ap-southeast-2");
    let err = verify_identity(&doc, &p7, &TrustedSigners::empty()).unwrap_err();
    assert!(matches!(err, IdentityError::NoCertificatePinned { .. }));
    // Another region's AWS certificate pinned for ap-southeast-2: wrong signer.
    let us_east_1 = AWS_RSA2048_CERTS.iter().find(|(r, ..)| *r == "us-east-1").unwrap().1;
    let signers = pinned(Some("ap-southeast-2"), &pem_der(us_east_1.as_bytes()));
    let err = verify_identity(&doc, &p7, &signers).unwrap_err();
    assert_eq!(err, IdentityError::SignerNotPinned { region: "ap-southeast-2".into() });
}

#[test]
fn truncated_blobs_fail_as_malformed() {
    let (doc, p7) = genuine();
    let signers = TrustedSigners::aws_published();
    for len in 0..p7.len() {
        let err = verify_identity(&doc, &p7[..len], &signers).unwrap_err();
        assert!(matches!(err, IdentityError::MalformedPkcs7(_)), "len {len}: {err}");
        assert!(err.to_string().starts_with("malformed PKCS#7"));
    }
    let mut extra = p7.clone();
    extra.push(0);
    assert!(matches!(verify_identity(&doc, &extra, &signers), Err(IdentityError::MalformedPkcs7(_))));
}

#[test]
fn malformed_document_is_refused() {
    let (doc, p7) = genuine();
    let signers = TrustedSigners::aws_published();
    let broken = String::from_utf8(doc).unwrap().replace("10.0.1.242", "ten");
    let err = verify_identity(broken.as_bytes(), &p7, &signers).unwrap_err();
    assert!(matches!(err, IdentityError::MalformedDocument(_)), "{err}");
}

#[test]
fn test_ca_flow_der_and_ber() {
    let signers = TrustedSigners::aws_published().with_test_ca(None, TEST_CA_DER).unwrap();
    for p7 in [TEST_P7_DER, TEST_P7_BER] {
        let id = verify_identity(TEST_DOC, p7, &signers).unwrap();
        assert_eq!(id.region, "us-east-1");
        assert_eq!(id.instance_id, "i-0123456789abcdef0");
        assert_eq!(id.private_ip, "fd00::42".parse::<IpAddr>().unwrap());
    }
    let regional = pinned(Some("us-east-1"), TEST_CA_DER);
    verify_identity(TEST_DOC, TEST_P7_DER, &regional).unwrap();
    // Maximal BER (every constructed element indefinite, including the signed
    // attributes and issuer Name) must be re-encoded to DER and still verify.
    let indefinite = to_indefinite(&ber::parse_complete(TEST_P7_DER).unwrap());
    verify_identity(TEST_DOC, &indefinite, &regional).unwrap();
}

#[test]
fn test_ca_blob_fails_with_aws_published_only() {
    let signers = TrustedSigners::aws_published();
    let err = verify_identity(TEST_DOC, TEST_P7_DER, &signers).unwrap_err();
    assert_eq!(err, IdentityError::SignerNotPinned { region: "us-east-1".into() });
    // Test CA pinned for a different region only.
    let err = verify_identity(TEST_DOC, TEST_P7_DER, &pinned(Some("eu-west-1"), TEST_CA_DER)).unwrap_err();
    assert_eq!(err, IdentityError::NoCertificatePinned { region: "us-east-1".into() });
}

#[test]
fn sha1_and_missing_signed_attributes_are_refused() {
    let signers = pinned(None, TEST_CA_DER);
    let err = verify_identity(TEST_DOC, TEST_P7_SHA1, &signers).unwrap_err();
    assert_eq!(err, IdentityError::UnsupportedDigest("1.3.14.3.2.26".into()));
    let err = verify_identity(TEST_DOC, TEST_P7_NOATTR, &signers).unwrap_err();
    assert_eq!(err, IdentityError::MissingSignedAttributes);
}

#[test]
fn published_certificates_are_valid() {
    use x509_parser::prelude::*;
    assert_eq!(AWS_RSA2048_CERTS.len(), 36);
    for (region, pem, sha) in AWS_RSA2048_CERTS {
        let der = pem_der(pem.as_bytes());
        let hex: String = ring::digest::digest(&ring::digest::SHA256, &der).as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&hex, sha, "{region}: certificate changed");
        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        match cert.public_key().parsed().unwrap() {
            x509_parser::public_key::PublicKey::RSA(k) => {
                assert_eq!(k.key_size(), 2048, "{region}")
            }
            _ => panic!("{region}: not RSA"),
        }
        assert_eq!(
            cert.subject().to_string(),
            "C=US, ST=Washington State, L=Seattle, O=Amazon Web Services LLC",
            "{region}"
        );
    }
    let regions = TrustedSigners::aws_published().regions().len();
    assert_eq!(regions, AWS_RSA2048_CERTS.len());
}

#[test]
fn add_rejects_unusable_certificates() {
    let mut s = TrustedSigners::empty();
    assert!(matches!(s.add(None, b"junk"), Err(IdentityError::InvalidCertificate(_))));
    assert!(matches!(s.add(Some(""), TEST_CA_DER), Err(IdentityError::InvalidCertificate(_))));
    let mut with_trailer = TEST_CA_DER.to_vec();
    with_trailer.push(0);
    assert!(matches!(s.add(None, &with_trailer), Err(IdentityError::InvalidCertificate(_))));
    assert!(s.regions().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_nor_verify(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (doc, _) = genuine();
        prop_assert!(verify_identity(&doc, &bytes, &TrustedSigners::aws_published()).is_err());
    }

    #[test]
    fn mutated_genuine_blob_never_panics(pos in 0usize..1400, val in any::<u8>(), cut in 0usize..64) {
        let (doc, p7) = genuine();
        let mut m = p7.clone();
        let pos = pos % m.len();
        m[pos] = val;
        m.truncate(m.len() - cut.min(m.len()));
        if let Ok(id) = verify_identity(&doc, &m, &TrustedSigners::aws_published()) {
            // Only bytes outside the signed data may change (e.g. version numbers).
            prop_assert_eq!(id.instance_id, "i-0c5541936caf78c12");
        }
    }
}
