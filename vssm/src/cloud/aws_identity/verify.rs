//! `verify_identity`: the trust decision over a parsed SignedData.

use super::{attributes, oids, signed_data, IdentityDocument, IdentityError, TrustedSigners};

/// Verifies `pkcs7` (the decoded rsa2048 blob, BER or DER) over `document`
/// (exact bytes from IMDS) against the certificate pinned for the document's
/// region; never against a certificate carried inside the PKCS#7.
///
/// Checks, in order: content type signedData with exactly one signer; the
/// document parses; encapsulated content type id-data and, if attached, equal
/// to `document` byte for byte; digest algorithm SHA-256 (SHA-1 and others
/// refused); signature algorithm RSA PKCS#1 v1.5 (rsaEncryption or
/// sha256WithRSAEncryption); a certificate pinned for the region whose issuer
/// and serial are the signer's; signed attributes present with contentType =
/// id-data, messageDigest = SHA-256(document), and CMSAlgorithmProtection (if
/// present) naming the same algorithms; the signature over the DER `SET OF`
/// encoding of the signed attributes verifies with the pinned key.
/// Returns the parsed document.
pub fn verify_identity(
    document: &[u8],
    pkcs7: &[u8],
    signers: &TrustedSigners,
) -> Result<IdentityDocument, IdentityError> {
    let sd = signed_data::parse(pkcs7)?;
    let doc = IdentityDocument::parse(document)?;
    if sd.content_type != oids::DATA {
        return Err(IdentityError::UnexpectedContentType);
    }
    if let Some(content) = &sd.content {
        if **content != *document {
            return Err(IdentityError::ContentMismatch);
        }
    }
    let signer = &sd.signer;
    let digest = &signer.digest_algorithm;
    if digest.oid != oids::SHA256 || !digest.params_absent_or_null {
        return Err(IdentityError::UnsupportedDigest(oids::dotted(digest.oid)));
    }
    let sig_alg = &signer.signature_algorithm;
    if !(sig_alg.oid == oids::SHA256_WITH_RSA || sig_alg.oid == oids::RSA_ENCRYPTION) || !sig_alg.params_absent_or_null
    {
        return Err(IdentityError::UnsupportedSignatureAlgorithm(oids::dotted(sig_alg.oid)));
    }

    let candidates: Vec<_> = signers.for_region(&doc.region).collect();
    if candidates.is_empty() {
        return Err(IdentityError::NoCertificatePinned { region: doc.region.clone() });
    }
    let Some(pinned) = candidates.into_iter().find(|p| p.identifies(&signer.issuer_der, signer.serial)) else {
        return Err(IdentityError::SignerNotPinned { region: doc.region.clone() });
    };

    let attrs = signer.signed_attrs.as_ref().ok_or(IdentityError::MissingSignedAttributes)?;
    let document_sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, document);
    let signed_bytes = attributes::check(attrs, document_sha256.as_ref(), sig_alg.oid)?;
    if !pinned.verify(&signed_bytes, &signer.signature) {
        return Err(IdentityError::SignatureInvalid);
    }
    Ok(doc)
}
