//! The cluster's use of AWS: membership of this instance's Auto Scaling
//! group (discovery and the join's membership check) and the strong-mode
//! STS proof, on top of the hand-written clients in [`crate::cloud`].

use super::discovery::Peer;
use crate::cloud::aws_api::{
    parse_assumed_role_arn, AwsApiClient, AwsApiConfig, AwsApiError, AwsEndpoints, CredentialSource,
};
use crate::cloud::aws_identity::IdentityDocument;
use crate::cloud::http_client::{HttpClient, HttpError, Url};
use crate::cloud::imds::{ImdsClient, ImdsError};
use crate::cloud::sigv4::{signed_request_for_sts_get_caller_identity, SigV4Error, SignedRequest};
use crate::config;
use crate::crypto::quote;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Discovery answers are reused this long (join and sync ask often).
const MEMBERS_CACHE: Duration = Duration::from_secs(2);
/// A membership miss re-asks AWS when the answer is older than this (a
/// new instance must not wait for the cache to expire).
const MISS_REFRESH: Duration = Duration::from_millis(200);
/// While AWS cannot be asked, sync keeps using the last answer for this
/// long; after that it serves and calls nobody (bounded staleness: with
/// the peer-list refresh of at most 10 s, a detached instance stops
/// receiving updates within 30 s even then).
pub const MEMBERSHIP_MAX_AGE: Duration = Duration::from_secs(15);
/// A signed STS request older (or newer) than this is refused.
const STS_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// A failed AWS call, or a strong-mode STS proof that does not hold.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No AWS endpoints for this region.
    #[error("{0}")]
    Region(AwsApiError),
    /// A configured endpoint override is not a URL.
    #[error("{url}: {reason}")]
    EndpointUrl {
        /// The configured value (from the operator's config).
        url: String,
        /// Why it is not a URL.
        reason: HttpError,
    },
    /// An Auto Scaling, EC2 or STS call failed.
    #[error("{0}")]
    Api(AwsApiError),
    /// This instance is in no Auto Scaling group.
    #[error("instance {0} is not in an Auto Scaling group")]
    NotInGroup(String),
    /// The instance role's credentials are not available from IMDS.
    #[error("role credentials: {0}")]
    Credentials(ImdsError),
    /// The STS request could not be signed.
    #[error("{0}")]
    Sign(SigV4Error),
    /// The STS request carries no SigV4 Authorization header.
    #[error("stsRequest has no SigV4 Authorization")]
    NoAuthorization,
    /// The STS request does not sign a header that binds it to this join.
    #[error("stsRequest does not sign {0}")]
    HeaderNotSigned(&'static str),
    /// A bound header has another value than this join's.
    #[error("stsRequest {0} does not match this join")]
    HeaderMismatch(&'static str),
    /// No parsable x-amz-date.
    #[error("stsRequest has no valid x-amz-date")]
    NoDate,
    /// Signed too long ago (or in the future).
    #[error("stsRequest is not fresh")]
    Stale,
    /// STS refused the forwarded request.
    #[error("STS: {0}")]
    Sts(AwsApiError),
    /// STS names another account than the identity document.
    #[error("STS account {0} is not the document's")]
    WrongAccount(String),
    /// STS names a caller other than the instance's role session.
    #[error("STS caller {arn} is not the instance role session of {instance_id}")]
    WrongCaller {
        /// The caller STS reported, quoted and bounded.
        arn: String,
        /// The instance of the identity document.
        instance_id: String,
    },
    /// The caller's session is named after the instance but belongs to
    /// another role than the cluster's instance role.
    #[error("STS caller is a session of role {role}, not of the cluster's instance role {expected}")]
    WrongRole {
        /// The caller's role (a valid IAM role name: parsed from the ARN).
        role: String,
        /// This node's own role (from its IMDS).
        expected: String,
    },
    /// Strong attestation is on but this node's own role is unknown.
    #[error("this node's instance role is unknown: strong attestation cannot check the caller's role")]
    NoOwnRole,
}

/// An HTTP client for AWS endpoints: public WebPKI roots for https, the
/// node's own address as source.
fn aws_http(source: IpAddr) -> HttpClient {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let source = if source.is_unspecified() { None } else { Some(source) };
    HttpClient::with_tls(Arc::new(tls)).source_ip(source)
}

fn endpoints(region: &str, overrides: &config::AwsEndpoints) -> Result<AwsEndpoints, AwsError> {
    let mut endpoints = AwsEndpoints::for_region(region).map_err(AwsError::Region)?;
    let parse = |u: &String| Url::parse(u).map_err(|reason| AwsError::EndpointUrl { url: u.clone(), reason });
    if let Some(u) = &overrides.autoscaling {
        endpoints.autoscaling = parse(u)?;
    }
    if let Some(u) = &overrides.ec2 {
        endpoints.ec2 = parse(u)?;
    }
    if let Some(u) = &overrides.sts {
        endpoints.sts = parse(u)?;
    }
    Ok(endpoints)
}

/// Members of this instance's Auto Scaling group.
#[derive(Clone)]
pub struct AwsDiscovery {
    inner: Arc<DiscoveryInner>,
}

struct DiscoveryInner {
    api: AwsApiClient,
    instance_id: String,
    group: Mutex<Option<String>>,
    cache: Mutex<Option<(Instant, Vec<Peer>)>>,
}

impl AwsDiscovery {
    /// Discovery with the instance-role credentials from `imds`.
    pub fn new(
        imds: &Arc<ImdsClient>,
        own: &IdentityDocument,
        overrides: &config::AwsEndpoints,
        source: IpAddr,
    ) -> Result<Self, AwsError> {
        let api = AwsApiClient::new(
            aws_http(source),
            &own.region,
            endpoints(&own.region, overrides)?,
            CredentialSource::Imds(Arc::clone(imds)),
            AwsApiConfig::default(),
        )
        .map_err(AwsError::Api)?;
        Ok(AwsDiscovery {
            inner: Arc::new(DiscoveryInner {
                api,
                instance_id: own.instance_id.clone(),
                group: Mutex::new(None),
                cache: Mutex::new(None),
            }),
        })
    }

    /// Pending/InService instances of the group with their private
    /// addresses; when AWS cannot be asked, the last answer if it is not
    /// older than [`MEMBERSHIP_MAX_AGE`].
    pub async fn members(&self) -> Result<Vec<Peer>, AwsError> {
        match self.members_newer_than(MEMBERS_CACHE).await {
            Ok(peers) => Ok(peers),
            Err(e) => self.cached(MEMBERSHIP_MAX_AGE).ok_or(e),
        }
    }

    /// Whether a member has the private address `ip` (the sync port's
    /// check). A hit may come from an answer up to [`MEMBERSHIP_MAX_AGE`]
    /// old (the cluster loop refreshes it at least every 10 s, so sync
    /// requests do not wait for AWS); a miss re-asks AWS once, and counts
    /// as a miss if AWS cannot answer. Err when no answer is recent enough.
    pub async fn is_member_ip(&self, ip: IpAddr) -> Result<bool, AwsError> {
        let has = |peers: &[Peer]| peers.iter().any(|p| p.ip == ip);
        let cached = self.cached(MEMBERSHIP_MAX_AGE);
        if cached.as_deref().is_some_and(has) {
            return Ok(true);
        }
        match self.members_newer_than(MISS_REFRESH).await {
            Ok(peers) => Ok(has(&peers)),
            Err(_) if cached.is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether `instance_id` is a member at `ip`, from an answer at most
    /// [`MEMBERS_CACHE`] old (the join's check: never a stale answer); a
    /// miss on a cached answer re-asks AWS once.
    pub async fn is_member(&self, instance_id: &str, ip: IpAddr) -> Result<bool, AwsError> {
        let found = |peers: &[Peer]| peers.iter().any(|p| p.ip == ip && p.instance_id.as_deref() == Some(instance_id));
        if found(&self.members_newer_than(MEMBERS_CACHE).await?) {
            return Ok(true);
        }
        Ok(found(&self.members_newer_than(MISS_REFRESH).await?))
    }

    /// The last answer AWS gave, if younger than `max_age`.
    fn cached(&self, max_age: Duration) -> Option<Vec<Peer>> {
        match &*self.inner.cache.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((at, peers)) if at.elapsed() < max_age => Some(peers.clone()),
            _ => None,
        }
    }

    async fn members_newer_than(&self, max_age: Duration) -> Result<Vec<Peer>, AwsError> {
        if let Some(peers) = self.cached(max_age) {
            return Ok(peers);
        }
        let group = self.group().await?;
        let api = &self.inner.api;
        let instances = api.describe_auto_scaling_instances_of_group(&group).await.map_err(AwsError::Api)?;
        let ids: Vec<&str> = instances.iter().filter(|i| i.is_member()).map(|i| i.instance_id.as_str()).collect();
        let peers: Vec<Peer> = if ids.is_empty() {
            Vec::new()
        } else {
            api.describe_instances(&ids)
                .await
                .map_err(AwsError::Api)?
                .into_iter()
                .filter(|i| i.state == "pending" || i.state == "running")
                .filter_map(|i| i.private_ip.map(|ip| Peer { ip, instance_id: Some(i.instance_id) }))
                .collect()
        };
        *self.inner.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), peers.clone()));
        Ok(peers)
    }

    async fn group(&self) -> Result<String, AwsError> {
        if let Some(group) = &*self.inner.group.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(group.clone());
        }
        let info = self
            .inner
            .api
            .find_group_of_instance(&self.inner.instance_id)
            .await
            .map_err(AwsError::Api)?
            .ok_or_else(|| AwsError::NotInGroup(self.inner.instance_id.clone()))?;
        *self.inner.group.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.group_name.clone());
        Ok(info.group_name)
    }
}

/// Strong attestation: STS GetCallerIdentity signed by the joining
/// instance's role, forwarded by the peer to the configured STS endpoint.
pub struct StsVerifier {
    api: AwsApiClient,
    region: String,
    sts_endpoint: Url,
    /// This node's own role (from its IMDS): a joiner's STS caller must be
    /// a session of the same role. None when it could not be read.
    instance_role: Option<String>,
}

impl StsVerifier {
    /// A verifier for this instance's region and endpoints; joiners must
    /// be sessions of `instance_role`, this instance's own role.
    pub fn new(
        imds: &Arc<ImdsClient>,
        own: &IdentityDocument,
        overrides: &config::AwsEndpoints,
        source: IpAddr,
        instance_role: Option<String>,
    ) -> Result<Self, AwsError> {
        let endpoints = endpoints(&own.region, overrides)?;
        let sts_endpoint = endpoints.sts.clone();
        let api = AwsApiClient::new(
            aws_http(source),
            &own.region,
            endpoints,
            CredentialSource::Imds(Arc::clone(imds)),
            AwsApiConfig::default(),
        )
        .map_err(AwsError::Api)?;
        Ok(StsVerifier { api, region: own.region.clone(), sts_endpoint, instance_role })
    }

    /// Signs GetCallerIdentity with this instance's role, binding `bound` headers.
    pub async fn sign_for_join(
        &self,
        imds: &ImdsClient,
        bound: &[(&'static str, String)],
    ) -> Result<SignedRequest, AwsError> {
        let credentials = imds.role_credentials().await.map_err(AwsError::Credentials)?;
        let headers: Vec<(&str, &str)> = bound.iter().map(|(n, v)| (*n, v.as_str())).collect();
        signed_request_for_sts_get_caller_identity(
            &credentials,
            &self.region,
            &headers,
            SystemTime::now(),
            Some(&self.sts_endpoint),
        )
        .map_err(AwsError::Sign)
    }

    /// Checks that `request` signs the `expected` headers with their values,
    /// is fresh, and that STS says it was signed in `doc`'s account by a
    /// session of this node's own instance role named after `doc`'s
    /// instance (anyone allowed to assume some role can pick a session name).
    pub async fn verify_instance(
        &self,
        request: &SignedRequest,
        expected: &[(&'static str, String)],
        doc: &IdentityDocument,
    ) -> Result<(), AwsError> {
        let authorization = request.authorization().ok_or(AwsError::NoAuthorization)?;
        for (name, value) in expected {
            if !authorization.signed_headers.iter().any(|h| h == name) {
                return Err(AwsError::HeaderNotSigned(name));
            }
            if request.header(name) != Some(value.as_str()) {
                return Err(AwsError::HeaderMismatch(name));
            }
        }
        let own_role = self.instance_role.as_deref().ok_or(AwsError::NoOwnRole)?;
        let signed_at = request.header("x-amz-date").and_then(parse_amz_date).ok_or(AwsError::NoDate)?;
        let now = SystemTime::now();
        let skew = now.duration_since(signed_at).unwrap_or_else(|e| e.duration());
        if skew > STS_MAX_SKEW {
            return Err(AwsError::Stale);
        }
        let identity = self.api.sts_get_caller_identity(request).await.map_err(AwsError::Sts)?;
        if identity.account != doc.account_id {
            return Err(AwsError::WrongAccount(quote(&identity.account)));
        }
        let caller = parse_assumed_role_arn(&identity.arn)
            .filter(|caller| caller.session == doc.instance_id)
            .ok_or_else(|| AwsError::WrongCaller { arn: quote(&identity.arn), instance_id: doc.instance_id.clone() })?;
        if caller.role != own_role {
            return Err(AwsError::WrongRole { role: caller.role.to_string(), expected: own_role.to_string() });
        }
        Ok(())
    }
}

/// `20150830T123600Z` to a time.
pub(crate) fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm); year >= 1970
    // keeps every step non-negative.
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(days * 86_400 + hour * 3600 + minute * 60 + second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse_to_the_right_instant() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_440_938_160);
        for bad in
            ["", "20150830T123600", "2015083OT123600Z", "20151330T123600Z", "00010101T000000Z", "19691231T235959Z"]
        {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
