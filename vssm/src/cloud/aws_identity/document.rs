//! The instance identity document (JSON from IMDS) and its lenient parser.

use std::net::IpAddr;

use serde::Deserialize;

use super::IdentityError;

/// The fields VSSM uses from the identity document (JSON; parse leniently:
/// unknown fields ignored, but required ones must be present and well-formed
/// strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityDocument {
    /// `accountId`: the AWS account owning the instance.
    pub account_id: String,
    /// `region`, e.g. `ap-southeast-2`; selects the pinned certificate.
    pub region: String,
    /// `imageId`: the AMI the instance was launched from.
    pub image_id: String,
    /// `instanceId`, e.g. `i-0c5541936caf78c12`.
    pub instance_id: String,
    /// `privateIp`: the primary private address.
    pub private_ip: IpAddr,
    /// `availabilityZone`, e.g. `ap-southeast-2a`.
    pub availability_zone: String,
    /// `pendingTime` as sent (RFC 3339), if present and not null.
    pub pending_time: Option<String>,
    /// `architecture` (`x86_64`, `arm64`, ...), if present and not null.
    pub architecture: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    account_id: String,
    region: String,
    image_id: String,
    instance_id: String,
    private_ip: String,
    availability_zone: String,
    #[serde(default)]
    pending_time: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
}

impl IdentityDocument {
    /// Parses the exact document bytes. This does not authenticate anything:
    /// use [`verify_identity`](super::verify_identity).
    pub fn parse(document: &[u8]) -> Result<Self, IdentityError> {
        let raw: Raw = serde_json::from_slice(document).map_err(|e| IdentityError::MalformedDocument(e.to_string()))?;
        let required = [
            ("accountId", &raw.account_id),
            ("region", &raw.region),
            ("imageId", &raw.image_id),
            ("instanceId", &raw.instance_id),
            ("availabilityZone", &raw.availability_zone),
        ];
        for (name, value) in required {
            if value.is_empty() || value.trim() != value || value.chars().any(char::is_control) {
                return Err(IdentityError::MalformedDocument(format!("field {name} is empty or not a clean string")));
            }
        }
        let private_ip = raw
            .private_ip
            .parse::<IpAddr>()
            .map_err(|_| IdentityError::MalformedDocument("field privateIp is not an IP address".into()))?;
        Ok(Self {
            account_id: raw.account_id,
            region: raw.region,
            image_id: raw.image_id,
            instance_id: raw.instance_id,
            private_ip,
            availability_zone: raw.availability_zone,
            pending_time: raw.pending_time,
            architecture: raw.architecture,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"{"accountId":"1","region":"r","imageId":"ami","instanceId":"i","privateIp":"10.0.0.1","availabilityZone":"ra"}"#;

    #[test]
    fn lenient_about_unknown_and_optional_fields() {
        let d = IdentityDocument::parse(MIN.as_bytes()).unwrap();
        assert_eq!(d.pending_time, None);
        assert_eq!(d.architecture, None);
        let with_extra =
            MIN.replace("}", r#","kernelId":null,"billingProducts":["x"],"pendingTime":null,"architecture":"arm64"}"#);
        let d = IdentityDocument::parse(with_extra.as_bytes()).unwrap();
        assert_eq!(d.architecture.as_deref(), Some("arm64"));
    }

    #[test]
    fn strict_about_required_fields() {
        for bad in [
            MIN.replace(r#""accountId":"1","#, ""),
            MIN.replace(r#""accountId":"1""#, r#""accountId":1"#),
            MIN.replace(r#""accountId":"1""#, r#""accountId":"""#),
            MIN.replace(r#""region":"r""#, r#""region":null"#),
            MIN.replace("10.0.0.1", "10.0.0"),
            MIN.replace(r#""region":"r""#, r#""region":"r","region":"s""#),
            "[]".to_string(),
            "not json".to_string(),
        ] {
            let err = IdentityDocument::parse(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, IdentityError::MalformedDocument(_)), "{bad}: {err}");
        }
    }
}
