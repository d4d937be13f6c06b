//! Structural reading of a PKCS#7 / CMS SignedData (RFC 2315, RFC 5652).
//!
//! This only extracts fields; all trust decisions are in `verify.rs`.
//! Certificates and CRLs carried in the blob are skipped and never used.

use std::borrow::Cow;

use super::ber::{self, Tlv, TAG_INTEGER, TAG_NULL, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET};
use super::oids;
use super::IdentityError;

/// An AlgorithmIdentifier: OID plus whether its parameters are absent or NULL.
#[derive(Debug)]
pub(crate) struct Algorithm<'a> {
    pub(crate) oid: &'a [u8],
    pub(crate) params_absent_or_null: bool,
}

/// The one SignerInfo of the blob.
#[derive(Debug)]
pub(crate) struct SignerInfo<'a> {
    /// The issuer Name re-encoded with definite lengths (comparable to a certificate's DER).
    pub(crate) issuer_der: Vec<u8>,
    /// INTEGER content octets of the serial number.
    pub(crate) serial: &'a [u8],
    pub(crate) digest_algorithm: Algorithm<'a>,
    /// The `[0] IMPLICIT` signed attributes element, if present.
    pub(crate) signed_attrs: Option<Tlv<'a>>,
    pub(crate) signature_algorithm: Algorithm<'a>,
    pub(crate) signature: Cow<'a, [u8]>,
}

/// The parts of SignedData the verifier needs.
#[derive(Debug)]
pub(crate) struct SignedData<'a> {
    pub(crate) content_type: &'a [u8],
    /// The encapsulated content (joined if segmented), or None when detached.
    pub(crate) content: Option<Cow<'a, [u8]>>,
    pub(crate) signer: SignerInfo<'a>,
}

fn malformed(why: &'static str) -> IdentityError {
    IdentityError::MalformedPkcs7(why.to_string())
}

fn algorithm<'a>(t: &Tlv<'a>, what: &'static str) -> Result<Algorithm<'a>, IdentityError> {
    let parts = t.universal_children(TAG_SEQUENCE, what)?;
    let (oid, params) = match parts.as_slice() {
        [oid] => (oid, None),
        [oid, params] => (oid, Some(params)),
        _ => return Err(malformed(what)),
    };
    let oid = oid.primitive(TAG_OID, what)?;
    let params_absent_or_null = match params {
        None => true,
        Some(p) => p.is_universal(TAG_NULL) && !p.constructed && p.content.is_empty(),
    };
    Ok(Algorithm { oid, params_absent_or_null })
}

/// Reads a ContentInfo holding SignedData from BER or DER bytes.
pub(crate) fn parse(pkcs7: &[u8]) -> Result<SignedData<'_>, IdentityError> {
    let outer = ber::parse_complete(pkcs7)?;
    let ci = outer.universal_children(TAG_SEQUENCE, "ContentInfo is not a SEQUENCE")?;
    let [ct, explicit] = ci.as_slice() else {
        return Err(malformed("ContentInfo must have contentType and content"));
    };
    if ct.primitive(TAG_OID, "ContentInfo contentType is not an OID")? != oids::SIGNED_DATA {
        return Err(IdentityError::NotSignedData);
    }
    if !explicit.is_context(0) {
        return Err(malformed("ContentInfo content is not [0]"));
    }
    let [sd]: [Tlv<'_>; 1] =
        explicit.children()?.try_into().map_err(|_| malformed("ContentInfo [0] must hold one element"))?;
    let fields = sd.universal_children(TAG_SEQUENCE, "SignedData is not a SEQUENCE")?;
    let mut it = fields.iter();
    let mut next = |what: &'static str| it.next().ok_or_else(|| malformed(what));

    next("SignedData version missing")?.primitive(TAG_INTEGER, "SignedData version is not an INTEGER")?;
    next("digestAlgorithms missing")?.universal_children(TAG_SET, "digestAlgorithms is not a SET")?;
    let encap = next("encapContentInfo missing")?;
    let (content_type, content) = encapsulated_content(encap)?;

    let mut el = next("signerInfos missing")?;
    // Optional certificates [0] and crls [1]: skipped, never trusted.
    if el.is_context(0) {
        el = next("signerInfos missing")?;
    }
    if el.is_context(1) {
        el = next("signerInfos missing")?;
    }
    let signer_infos = el.universal_children(TAG_SET, "signerInfos is not a SET")?;
    if it.next().is_some() {
        return Err(malformed("unexpected element after signerInfos"));
    }
    let [signer] = signer_infos.as_slice() else {
        return Err(IdentityError::SignerCount(signer_infos.len()));
    };
    Ok(SignedData { content_type, content, signer: signer_info(signer)? })
}

/// eContentType and the (joined) eContent, if attached.
type Encapsulated<'a> = (&'a [u8], Option<Cow<'a, [u8]>>);

fn encapsulated_content<'a>(encap: &Tlv<'a>) -> Result<Encapsulated<'a>, IdentityError> {
    let parts = encap.universal_children(TAG_SEQUENCE, "encapContentInfo is not a SEQUENCE")?;
    let (ct, explicit) = match parts.as_slice() {
        [ct] => (ct, None),
        [ct, explicit] => (ct, Some(explicit)),
        _ => return Err(malformed("encapContentInfo has unexpected elements")),
    };
    let ct = ct.primitive(TAG_OID, "eContentType is not an OID")?;
    let content = match explicit {
        None => None,
        Some(explicit) => {
            if !explicit.is_context(0) {
                return Err(malformed("eContent is not [0]"));
            }
            let kids = explicit.children()?;
            let [octets] = kids.as_slice() else {
                return Err(malformed("eContent [0] must hold one OCTET STRING"));
            };
            if !octets.is_universal(TAG_OCTET_STRING) {
                return Err(malformed("eContent is not an OCTET STRING"));
            }
            Some(octets.octet_string()?)
        }
    };
    Ok((ct, content))
}

fn signer_info<'a>(t: &Tlv<'a>) -> Result<SignerInfo<'a>, IdentityError> {
    let fields = t.universal_children(TAG_SEQUENCE, "SignerInfo is not a SEQUENCE")?;
    let mut it = fields.iter();
    let mut next = |what: &'static str| it.next().ok_or_else(|| malformed(what));
    next("SignerInfo version missing")?.primitive(TAG_INTEGER, "SignerInfo version is not an INTEGER")?;
    let sid = next("SignerInfo sid missing")?;
    if sid.is_context(0) {
        return Err(IdentityError::UnsupportedSignerIdentifier);
    }
    let ias = sid.universal_children(TAG_SEQUENCE, "IssuerAndSerialNumber is not a SEQUENCE")?;
    let [issuer, serial] = ias.as_slice() else {
        return Err(malformed("IssuerAndSerialNumber must have issuer and serial"));
    };
    if !issuer.is_universal(TAG_SEQUENCE) || !issuer.constructed {
        return Err(malformed("issuer is not a Name"));
    }
    let issuer_der = issuer.to_definite()?;
    let serial = serial.primitive(TAG_INTEGER, "serialNumber is not an INTEGER")?;
    let digest_algorithm = algorithm(next("digestAlgorithm missing")?, "digestAlgorithm is malformed")?;

    let mut el = next("signatureAlgorithm missing")?;
    let mut signed_attrs = None;
    if el.is_context(0) {
        if !el.constructed {
            return Err(malformed("signedAttrs is not constructed"));
        }
        signed_attrs = Some(*el);
        el = next("signatureAlgorithm missing")?;
    }
    let signature_algorithm = algorithm(el, "signatureAlgorithm is malformed")?;
    let signature = next("signature missing")?;
    if !signature.is_universal(TAG_OCTET_STRING) {
        return Err(malformed("signature is not an OCTET STRING"));
    }
    let signature = signature.octet_string()?;
    match it.next() {
        None => {}
        Some(u) if u.is_context(1) => {}
        Some(_) => return Err(malformed("unexpected element in SignerInfo")),
    }
    if it.next().is_some() {
        return Err(malformed("unexpected element after unsignedAttrs"));
    }
    Ok(SignerInfo { issuer_der, serial, digest_algorithm, signed_attrs, signature_algorithm, signature })
}
