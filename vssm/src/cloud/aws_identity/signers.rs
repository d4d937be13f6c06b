//! The set of certificates trusted to sign identity documents, per region.

use std::fmt;

use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use super::published::AWS_RSA2048_CERTS;
use super::IdentityError;

/// One pinned signing certificate, reduced to what verification needs.
#[derive(Clone)]
pub(crate) struct Pinned {
    /// None = trusted for any region.
    region: Option<String>,
    issuer_der: Vec<u8>,
    serial: Vec<u8>,
    /// DER RSAPublicKey (the SPKI's subjectPublicKey bits).
    rsa_public_key: Vec<u8>,
}

/// Trusted signing certificates per region. `aws_published()` has AWS's
/// published RSA-2048 instance-identity certificates compiled in (PEM files
/// under `vssm/src/cloud/aws_certs/` named by region). `with_test_ca` / `add`
/// add one (for the fake IMDS used in tests; the node only does this when its
/// config names the certificate explicitly).
///
/// Only the public key, issuer and serial of a pinned certificate are used:
/// it is a pin, not a chain; validity dates and extensions are not checked.
#[derive(Clone, Default)]
pub struct TrustedSigners {
    pinned: Vec<Pinned>,
}

fn strip_zeros(serial: &[u8]) -> &[u8] {
    let skip = serial.iter().take_while(|&&b| b == 0).count();
    &serial[skip..]
}

impl Pinned {
    /// True when the SignerInfo's issuer and serial name this certificate.
    pub(crate) fn identifies(&self, issuer_der: &[u8], serial: &[u8]) -> bool {
        self.issuer_der == issuer_der && strip_zeros(&self.serial) == strip_zeros(serial)
    }

    /// RSA PKCS#1 v1.5 SHA-256 verification of `message` with this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.rsa_public_key,
        )
        .verify(message, signature)
        .is_ok()
    }
}

impl TrustedSigners {
    /// No trusted certificates: every verification fails with "no certificate pinned".
    pub fn empty() -> Self {
        Self::default()
    }

    /// AWS's published RSA-2048 certificates for the regions compiled in.
    pub fn aws_published() -> Self {
        let mut signers = Self::empty();
        for (region, pem, _) in AWS_RSA2048_CERTS {
            // Compiled-in data, checked by the `published_certificates_are_valid` test.
            signers.add_pem(Some(region), pem.as_bytes()).expect("compiled-in AWS certificate is valid");
        }
        signers
    }

    /// Trusts `cert_der` (an RSA 2048..8192-bit X.509 certificate) for
    /// `region`, or for any region when `None`.
    pub fn add(&mut self, region: Option<&str>, cert_der: &[u8]) -> Result<(), IdentityError> {
        let bad = |why: &str| IdentityError::InvalidCertificate(why.to_string());
        let (rest, cert) = X509Certificate::from_der(cert_der).map_err(|e| bad(&e.to_string()))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate"));
        }
        let spki = cert.public_key();
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) if (2048..=8192).contains(&rsa.key_size()) => {}
            Ok(PublicKey::RSA(_)) => return Err(bad("RSA key size must be 2048 to 8192 bits")),
            _ => return Err(bad("public key is not RSA")),
        }
        if region.is_some_and(str::is_empty) {
            return Err(bad("empty region name"));
        }
        self.pinned.push(Pinned {
            region: region.map(str::to_string),
            issuer_der: cert.tbs_certificate.issuer.as_raw().to_vec(),
            serial: cert.tbs_certificate.raw_serial().to_vec(),
            rsa_public_key: spki.subject_public_key.data.to_vec(),
        });
        Ok(())
    }

    /// As [`TrustedSigners::add`], from one PEM `CERTIFICATE` block.
    pub fn add_pem(&mut self, region: Option<&str>, pem: &[u8]) -> Result<(), IdentityError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem)
            .map_err(|e| IdentityError::InvalidCertificate(format!("bad PEM: {e}")))?;
        if pem.label != "CERTIFICATE" {
            return Err(IdentityError::InvalidCertificate(format!("PEM label is {}", pem.label)));
        }
        self.add(region, &pem.contents)
    }

    /// Builder form of [`TrustedSigners::add`], e.g.
    /// `TrustedSigners::aws_published().with_test_ca(None, &der)?`.
    pub fn with_test_ca(mut self, region: Option<&str>, cert_der: &[u8]) -> Result<Self, IdentityError> {
        self.add(region, cert_der)?;
        Ok(self)
    }

    /// Regions with a region-specific certificate, sorted (for logs and diagnostics).
    pub fn regions(&self) -> Vec<&str> {
        let mut r: Vec<&str> = self.pinned.iter().filter_map(|p| p.region.as_deref()).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    /// Certificates usable for `region`: its own plus the any-region ones.
    pub(crate) fn for_region<'s>(&'s self, region: &'s str) -> impl Iterator<Item = &'s Pinned> + 's {
        self.pinned.iter().filter(move |p| p.region.as_deref().is_none_or(|r| r == region))
    }
}

impl fmt::Debug for TrustedSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let any = self.pinned.iter().filter(|p| p.region.is_none()).count();
        f.debug_struct("TrustedSigners").field("regions", &self.regions()).field("any_region", &any).finish()
    }
}
