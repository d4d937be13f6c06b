//! Checks on the signer's signed attributes and their DER form for the signature.

use super::ber::{Tlv, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET};
use super::oids;
use super::IdentityError;

/// Identifier octet of a universal constructed SET (the DER form signed over).
const SET_TAG: [u8; 1] = [0x31];

/// Validates the `[0] IMPLICIT` signed attributes against the document digest
/// and the signature algorithm in use, and returns the bytes the signature
/// covers: the attributes DER-encoded as a `SET OF` (tag 0x31, definite
/// lengths; indefinite-length input is re-encoded, attribute order kept).
pub(crate) fn check(
    signed_attrs: &Tlv<'_>,
    document_sha256: &[u8],
    signature_algorithm: &[u8],
) -> Result<Vec<u8>, IdentityError> {
    let malformed = |why: &str| IdentityError::MalformedPkcs7(why.to_string());
    let attrs = signed_attrs.children()?;
    if attrs.is_empty() {
        return Err(IdentityError::MissingSignedAttributes);
    }
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut content_type_ok = false;
    let mut digest_ok = false;
    for attr in &attrs {
        let parts = attr.universal_children(TAG_SEQUENCE, "attribute is not a SEQUENCE")?;
        let [oid, values] = parts.as_slice() else {
            return Err(malformed("attribute must have type and values"));
        };
        let oid = oid.primitive(TAG_OID, "attribute type is not an OID")?;
        if seen.contains(&oid) {
            return Err(malformed("duplicate signed attribute"));
        }
        seen.push(oid);
        let values = values.universal_children(TAG_SET, "attribute values is not a SET")?;
        if oid == oids::ATTR_CONTENT_TYPE {
            let [value] = values.as_slice() else {
                return Err(IdentityError::BadContentTypeAttribute);
            };
            if value.primitive(TAG_OID, "contentType value is not an OID").ok() != Some(oids::DATA) {
                return Err(IdentityError::BadContentTypeAttribute);
            }
            content_type_ok = true;
        } else if oid == oids::ATTR_MESSAGE_DIGEST {
            let [value] = values.as_slice() else {
                return Err(IdentityError::MissingMessageDigest);
            };
            if !value.is_universal(TAG_OCTET_STRING) {
                return Err(malformed("messageDigest value is not an OCTET STRING"));
            }
            if *value.octet_string()? != *document_sha256 {
                return Err(IdentityError::MessageDigestMismatch);
            }
            digest_ok = true;
        } else if oid == oids::ATTR_ALGORITHM_PROTECTION {
            let [value] = values.as_slice() else {
                return Err(IdentityError::AlgorithmProtectionMismatch);
            };
            check_algorithm_protection(value, signature_algorithm)?;
        }
    }
    if !content_type_ok {
        return Err(IdentityError::BadContentTypeAttribute);
    }
    if !digest_ok {
        return Err(IdentityError::MissingMessageDigest);
    }
    Ok(signed_attrs.to_definite_with_tag(&SET_TAG)?)
}

/// RFC 6211: the protected algorithms must be the ones actually used.
fn check_algorithm_protection(value: &Tlv<'_>, signature_algorithm: &[u8]) -> Result<(), IdentityError> {
    let mismatch = IdentityError::AlgorithmProtectionMismatch;
    let parts = value.universal_children(TAG_SEQUENCE, "CMSAlgorithmProtection is not a SEQUENCE")?;
    let (digest, rest) = parts.split_first().ok_or(mismatch.clone())?;
    let digest_oid = digest
        .universal_children(TAG_SEQUENCE, "CMSAlgorithmProtection digest is malformed")?
        .first()
        .map(|o| o.primitive(TAG_OID, "CMSAlgorithmProtection digest OID is malformed"))
        .transpose()?;
    if digest_oid != Some(oids::SHA256) {
        return Err(mismatch);
    }
    match rest {
        [sig] if sig.is_context(1) && sig.constructed => {
            let sig_oid = sig
                .children()?
                .first()
                .map(|o| o.primitive(TAG_OID, "CMSAlgorithmProtection signature OID is malformed"))
                .transpose()?;
            if sig_oid != Some(signature_algorithm) {
                return Err(mismatch);
            }
            Ok(())
        }
        _ => Err(mismatch),
    }
}
