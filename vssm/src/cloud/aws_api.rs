//! Query-API clients (form-encoded POST, SigV4, XML responses) for the few AWS calls the cluster
//! needs: Auto Scaling group membership, EC2 instance addresses, and STS GetCallerIdentity with a
//! request pre-signed by a joining node.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use serde::{Deserialize, Serialize};

use super::credentials::AwsCredentials;
use super::http_client::{HttpClient, HttpError, Response, Url};
use super::imds::{ImdsClient, ImdsError};
use super::sigv4::{self, SigV4Error, SignedRequest, FORM_CONTENT_TYPE, STS_GET_CALLER_IDENTITY_BODY};
use super::xml::{self, Element};

const AUTOSCALING_VERSION: &str = "2011-01-01";
const EC2_VERSION: &str = "2016-11-15";
const MAX_RESPONSE: usize = 1024 * 1024;
const MAX_PAGES: usize = 100;
const EC2_IDS_PER_CALL: usize = 100;
/// Refresh instance-role credentials this long before they expire.
const CREDENTIAL_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Why an AWS API call failed.
#[derive(Debug)]
pub enum AwsApiError {
    /// Transport error (after retries if transient).
    Http(HttpError),
    /// Instance-role credentials could not be fetched.
    Credentials(ImdsError),
    /// The request could not be signed.
    Sign(SigV4Error),
    /// An AWS error response (`<Error><Code>..</Code><Message>..</Message></Error>`).
    Service {
        /// HTTP status.
        status: u16,
        /// AWS error code, e.g. `Throttling`.
        code: String,
        /// AWS error message.
        message: String,
    },
    /// Non-2xx without a parsable AWS error.
    UnexpectedStatus {
        /// HTTP status.
        status: u16,
        /// The first 200 bytes of the body, control characters blanked.
        body_start: String,
    },
    /// Malformed or unexpected response content.
    Response(String),
    /// Bad argument or a request refused before sending.
    InvalidInput(String),
    /// The named Auto Scaling group does not exist.
    GroupNotFound(String),
}

impl AwsApiError {
    /// AWS error code, for service errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsApiError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            AwsApiError::Http(e) => e.is_transient(),
            AwsApiError::Service { status, code, .. } => {
                *status >= 500 || matches!(code.as_str(), "Throttling" | "RequestLimitExceeded" | "ThrottlingException")
            }
            AwsApiError::UnexpectedStatus { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl fmt::Display for AwsApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsApiError::Http(e) => write!(f, "AWS API: {e}"),
            AwsApiError::Credentials(e) => write!(f, "AWS API credentials: {e}"),
            AwsApiError::Sign(e) => write!(f, "AWS API: {e}"),
            AwsApiError::Service { status, code, message } => write!(f, "AWS error {code} (HTTP {status}): {message}"),
            AwsApiError::UnexpectedStatus { status, body_start } => write!(f, "AWS API: HTTP {status}: {body_start}"),
            AwsApiError::Response(m) => write!(f, "AWS API: bad response: {m}"),
            AwsApiError::InvalidInput(m) => write!(f, "AWS API: invalid input: {m}"),
            AwsApiError::GroupNotFound(g) => write!(f, "Auto Scaling group {g:?} not found"),
        }
    }
}

impl std::error::Error for AwsApiError {}

impl From<HttpError> for AwsApiError {
    fn from(e: HttpError) -> Self {
        AwsApiError::Http(e)
    }
}

impl From<SigV4Error> for AwsApiError {
    fn from(e: SigV4Error) -> Self {
        AwsApiError::Sign(e)
    }
}

impl From<xml::XmlError> for AwsApiError {
    fn from(e: xml::XmlError) -> Self {
        AwsApiError::Response(e.to_string())
    }
}

/// Service endpoints (overridable for tests or VPC endpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsEndpoints {
    /// Auto Scaling endpoint.
    pub autoscaling: Url,
    /// EC2 endpoint.
    pub ec2: Url,
    /// STS endpoint.
    pub sts: Url,
}

impl AwsEndpoints {
    /// `https://{autoscaling,ec2,sts}.REGION.amazonaws.com/`.
    pub fn for_region(region: &str) -> Result<AwsEndpoints, AwsApiError> {
        if !valid_region(region) {
            return Err(AwsApiError::InvalidInput(format!("region {region:?}")));
        }
        let u = |svc: &str| Url::parse(&format!("https://{svc}.{region}.amazonaws.com/")).map_err(AwsApiError::Http);
        Ok(AwsEndpoints { autoscaling: u("autoscaling")?, ec2: u("ec2")?, sts: u("sts")? })
    }
}

/// Where API credentials come from.
#[derive(Debug)]
pub enum CredentialSource {
    /// Fixed credentials (tests, or keys from the config).
    Static(AwsCredentials),
    /// Instance-profile credentials, cached and refreshed before expiry.
    Imds(Arc<ImdsClient>),
}

/// An Auto Scaling group member as listed by `DescribeAutoScalingGroups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsgInstance {
    /// `i-…`
    pub instance_id: String,
    /// e.g. `InService`, `Pending`, `Terminating`.
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy`.
    pub health_status: String,
    /// e.g. `eu-west-1a`.
    pub availability_zone: String,
}

impl AsgInstance {
    /// True if its lifecycle state counts as a cluster member ([`is_member_state`]).
    pub fn is_member(&self) -> bool {
        is_member_state(&self.lifecycle_state)
    }
}

/// An instance's Auto Scaling membership as given by `DescribeAutoScalingInstances`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsgInstanceInfo {
    /// `i-…`
    pub instance_id: String,
    /// The Auto Scaling group.
    pub group_name: String,
    /// e.g. `InService`.
    pub lifecycle_state: String,
    /// `Healthy` or `Unhealthy`.
    pub health_status: String,
    /// e.g. `eu-west-1a`.
    pub availability_zone: String,
}

/// The fields of an EC2 instance the cluster uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Instance {
    /// `i-…`
    pub instance_id: String,
    /// Primary private address (none once terminated).
    pub private_ip: Option<std::net::IpAddr>,
    /// The AMI it was launched from.
    pub image_id: String,
    /// `pending | running | shutting-down | terminated | stopping | stopped`.
    pub state: String,
}

/// Result of STS GetCallerIdentity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    /// The caller's ARN (for an instance role: `…:assumed-role/ROLE/INSTANCE-ID`).
    pub arn: String,
    /// 12-digit account id.
    pub account: String,
    /// The unique id of the caller.
    pub user_id: String,
}

/// Auto Scaling lifecycle states that count as cluster members: `Pending`, `Pending:Wait`,
/// `Pending:Proceed`, `InService`.
pub fn is_member_state(state: &str) -> bool {
    matches!(state, "Pending" | "Pending:Wait" | "Pending:Proceed" | "InService")
}

/// Parts of `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssumedRoleArn<'a> {
    /// e.g. `aws`.
    pub partition: &'a str,
    /// 12-digit account id.
    pub account: &'a str,
    /// Role name.
    pub role: &'a str,
    /// Session name.
    pub session: &'a str,
}

/// Splits an STS assumed-role ARN; `None` unless every part is well-formed.
pub fn parse_assumed_role_arn(arn: &str) -> Option<AssumedRoleArn<'_>> {
    let mut it = arn.splitn(6, ':');
    let (prefix, partition, service, region, account, resource) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    if prefix != "arn" || service != "sts" || !region.is_empty() {
        return None;
    }
    if partition.is_empty() || partition.len() > 32 || !partition.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return None;
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (role, session) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
    let role_ok = super::imds::valid_role_name(role);
    let session_ok = (2..=64).contains(&session.len())
        && session.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    (role_ok && session_ok).then_some(AssumedRoleArn { partition, account, role, session })
}

/// Session name of an assumed-role ARN (for an EC2 instance role: the instance id).
pub fn assumed_role_session_name(arn: &str) -> Option<&str> {
    parse_assumed_role_arn(arn).map(|a| a.session)
}

fn valid_region(r: &str) -> bool {
    !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `i-` followed by 8 or 17 lowercase hex digits.
pub fn valid_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn valid_group_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 255 && !n.chars().any(|c| c.is_control())
}

fn text<'a>(e: &'a Element, name: &str) -> Result<&'a str, AwsApiError> {
    e.child_text(name).ok_or_else(|| AwsApiError::Response(format!("<{}> lacks <{name}>", e.name)))
}

/// Printable, bounded text field.
fn field(e: &Element, name: &str, max: usize) -> Result<String, AwsApiError> {
    let t = text(e, name)?;
    if t.len() > max || t.chars().any(|c| c.is_control()) {
        return Err(AwsApiError::Response(format!("<{name}> malformed")));
    }
    Ok(t.to_string())
}

fn expect_root<'a>(root: &'a Element, name: &str) -> Result<&'a Element, AwsApiError> {
    if root.name == name {
        Ok(root)
    } else {
        Err(AwsApiError::Response(format!("expected <{name}>, got <{}>", root.name)))
    }
}

fn next_token(e: Option<&Element>) -> Option<String> {
    e.map(|t| t.text.trim().to_string()).filter(|t| !t.is_empty())
}

/// Maps a non-2xx response to a readable error (AWS `<Error>` if present).
pub(crate) fn error_from_response(resp: &Response) -> AwsApiError {
    let status = resp.status.as_u16();
    if let Ok(root) = xml::parse(&resp.body) {
        if let Some(err) = root.find("Error") {
            let clean = |s: Option<&str>, max: usize| -> String {
                s.unwrap_or("").chars().filter(|c| !c.is_control()).take(max).collect()
            };
            let code = clean(err.child_text("Code"), 128);
            if !code.is_empty() {
                return AwsApiError::Service { status, code, message: clean(err.child_text("Message"), 1024) };
            }
        }
    }
    let body_start: String = String::from_utf8_lossy(&resp.body[..resp.body.len().min(200)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    AwsApiError::UnexpectedStatus { status, body_start }
}

/// Timeout and retry settings of [`AwsApiClient`].
#[derive(Debug, Clone)]
pub struct AwsApiConfig {
    /// Timeout of each attempt.
    pub timeout: Duration,
    /// Attempts per call (at least 1).
    pub attempts: u32,
    /// First backoff, doubled after each failed attempt.
    pub initial_backoff: Duration,
}

impl Default for AwsApiConfig {
    fn default() -> Self {
        AwsApiConfig { timeout: Duration::from_secs(10), attempts: 3, initial_backoff: Duration::from_millis(200) }
    }
}

/// Client for the Auto Scaling, EC2 and STS calls, with cached credentials.
pub struct AwsApiClient {
    http: HttpClient,
    region: String,
    endpoints: AwsEndpoints,
    source: CredentialSource,
    cached: tokio::sync::Mutex<Option<AwsCredentials>>,
    cfg: AwsApiConfig,
}

impl fmt::Debug for AwsApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsApiClient")
            .field("region", &self.region)
            .field("endpoints", &self.endpoints)
            .field("source", &self.source)
            .finish()
    }
}

impl AwsApiClient {
    /// `http` must carry a TLS configuration for real (`https://`) endpoints.
    pub fn new(
        http: HttpClient,
        region: &str,
        endpoints: AwsEndpoints,
        source: CredentialSource,
        cfg: AwsApiConfig,
    ) -> Result<AwsApiClient, AwsApiError> {
        if !valid_region(region) {
            return Err(AwsApiError::InvalidInput(format!("region {region:?}")));
        }
        if cfg.attempts == 0 {
            return Err(AwsApiError::InvalidInput("attempts must be >= 1".into()));
        }
        Ok(AwsApiClient {
            http,
            region: region.to_string(),
            endpoints,
            source,
            cached: tokio::sync::Mutex::new(None),
            cfg,
        })
    }

    /// The endpoints it calls.
    pub fn endpoints(&self) -> &AwsEndpoints {
        &self.endpoints
    }

    async fn credentials(&self) -> Result<AwsCredentials, AwsApiError> {
        match &self.source {
            CredentialSource::Static(c) => Ok(c.clone()),
            CredentialSource::Imds(imds) => {
                let mut cached = self.cached.lock().await;
                if let Some(c) = cached.as_ref() {
                    if !c.expires_within(SystemTime::now(), CREDENTIAL_REFRESH_MARGIN) {
                        return Ok(c.clone());
                    }
                }
                let fresh = imds.role_credentials().await.map_err(AwsApiError::Credentials)?;
                *cached = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    /// Sends with bounded retries on transport errors, 5xx and throttling.
    async fn send_with_retries(&self, url: &Url, headers: &HeaderMap, body: &Bytes) -> Result<Element, AwsApiError> {
        let mut backoff = self.cfg.initial_backoff;
        let mut attempt = 1;
        loop {
            let result =
                match self.http.request(Method::POST, url, headers, body.clone(), self.cfg.timeout, MAX_RESPONSE).await
                {
                    Ok(resp) if resp.status.is_success() => return Ok(xml::parse(&resp.body)?),
                    Ok(resp) => error_from_response(&resp),
                    Err(e) => AwsApiError::Http(e),
                };
            if attempt >= self.cfg.attempts || !result.retryable() {
                return Err(result);
            }
            attempt += 1;
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }

    /// One signed query-API call; returns the parsed XML document.
    async fn query(&self, endpoint: &Url, service: &str, params: &[(&str, &str)]) -> Result<Element, AwsApiError> {
        let creds = self.credentials().await?;
        let body = sigv4::form_encode(params);
        let base = [("content-type", FORM_CONTENT_TYPE)];
        let added = sigv4::sign(
            "POST",
            endpoint,
            &base,
            body.as_bytes(),
            service,
            &self.region,
            &creds,
            SystemTime::now(),
            false,
        )?;
        let mut headers = HeaderMap::new();
        headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(FORM_CONTENT_TYPE));
        for (n, v) in &added {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| AwsApiError::InvalidInput(n.clone()))?;
            let value = HeaderValue::from_str(v).map_err(|_| AwsApiError::InvalidInput(format!("value of {n}")))?;
            headers.insert(name, value);
        }
        self.send_with_retries(endpoint, &headers, &Bytes::from(body)).await
    }

    /// Instances of the Auto Scaling group `group_name` (all lifecycle states; filter with
    /// [`is_member_state`]). Follows `NextToken`.
    pub async fn describe_auto_scaling_instances_of_group(
        &self,
        group_name: &str,
    ) -> Result<Vec<AsgInstance>, AwsApiError> {
        if !valid_group_name(group_name) {
            return Err(AwsApiError::InvalidInput(format!("group name {group_name:?}")));
        }
        let mut out: Vec<AsgInstance> = Vec::new();
        let mut found = false;
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![
                ("Action", "DescribeAutoScalingGroups"),
                ("Version", AUTOSCALING_VERSION),
                ("AutoScalingGroupNames.member.1", group_name),
            ];
            if let Some(t) = &token {
                params.push(("NextToken", t));
            }
            let root = self.query(&self.endpoints.autoscaling, "autoscaling", &params).await?;
            match read_groups_page(&root, group_name, &mut out, &mut found)? {
                Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                Some(_) => return Err(AwsApiError::Response("NextToken repeated".into())),
                None => {
                    return if found { Ok(out) } else { Err(AwsApiError::GroupNotFound(group_name.to_string())) };
                }
            }
        }
        Err(AwsApiError::Response("too many pages".into()))
    }

    /// The Auto Scaling group (and lifecycle state) of an instance; `None` if it is in no group.
    pub async fn find_group_of_instance(&self, instance_id: &str) -> Result<Option<AsgInstanceInfo>, AwsApiError> {
        if !valid_instance_id(instance_id) {
            return Err(AwsApiError::InvalidInput(format!("instance id {instance_id:?}")));
        }
        let params = [
            ("Action", "DescribeAutoScalingInstances"),
            ("Version", AUTOSCALING_VERSION),
            ("InstanceIds.member.1", instance_id),
        ];
        let root = self.query(&self.endpoints.autoscaling, "autoscaling", &params).await?;
        read_group_of_instance(&root, instance_id)
    }

    /// EC2 DescribeInstances for these ids (chunks of 100, follows `nextToken`). Only requested
    /// instances are returned; unknown ids make EC2 fail with `InvalidInstanceID.NotFound`.
    pub async fn describe_instances(&self, ids: &[&str]) -> Result<Vec<Ec2Instance>, AwsApiError> {
        let mut wanted: Vec<&str> = Vec::new();
        for id in ids {
            if !valid_instance_id(id) {
                return Err(AwsApiError::InvalidInput(format!("instance id {id:?}")));
            }
            if !wanted.contains(id) {
                wanted.push(id);
            }
        }
        let mut out: Vec<Ec2Instance> = Vec::new();
        for chunk in wanted.chunks(EC2_IDS_PER_CALL) {
            let keys: Vec<String> = (1..=chunk.len()).map(|i| format!("InstanceId.{i}")).collect();
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                if pages > MAX_PAGES {
                    return Err(AwsApiError::Response("too many pages".into()));
                }
                let mut params: Vec<(&str, &str)> = vec![("Action", "DescribeInstances"), ("Version", EC2_VERSION)];
                params.extend(keys.iter().map(String::as_str).zip(chunk.iter().copied()));
                if let Some(t) = &token {
                    params.push(("NextToken", t));
                }
                let root = self.query(&self.endpoints.ec2, "ec2", &params).await?;
                match read_instances_page(&root, chunk, &mut out)? {
                    Some(t) if token.as_deref() != Some(t.as_str()) => token = Some(t),
                    Some(_) => return Err(AwsApiError::Response("nextToken repeated".into())),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// Sends a GetCallerIdentity request signed by someone else (a joining node) verbatim to
    /// *our* configured STS endpoint and returns the identity it proves. The request is refused
    /// locally unless it is exactly `POST /` with the GetCallerIdentity body, addressed (URL and
    /// `host` header) to our STS endpoint, with a SigV4 `authorization` for service `sts`.
    /// The caller must still check which headers the signature binds
    /// (`signed_request.authorization()`) and their values.
    pub async fn sts_get_caller_identity(&self, signed_request: &SignedRequest) -> Result<CallerIdentity, AwsApiError> {
        let refuse = |m: &str| AwsApiError::InvalidInput(format!("signed STS request refused: {m}"));
        let r = signed_request;
        if r.method != "POST" {
            return Err(refuse("method"));
        }
        if r.body != STS_GET_CALLER_IDENTITY_BODY {
            return Err(refuse("body"));
        }
        let ep = &self.endpoints.sts;
        let url = Url::parse(&r.url).map_err(|_| refuse("url"))?;
        if url.scheme() != ep.scheme()
            || url.host_header() != ep.host_header()
            || url.path() != "/"
            || url.query().is_some()
        {
            return Err(refuse("url is not our STS endpoint"));
        }
        if r.headers.len() > 32 {
            return Err(refuse("too many headers"));
        }
        let mut headers = HeaderMap::new();
        for (n, v) in &r.headers {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| refuse("header name"))?;
            if matches!(
                name.as_str(),
                "connection"
                    | "content-length"
                    | "transfer-encoding"
                    | "te"
                    | "trailer"
                    | "upgrade"
                    | "keep-alive"
                    | "expect"
            ) || name.as_str().starts_with("proxy-")
            {
                return Err(refuse("hop-by-hop header"));
            }
            if v.len() > 8192 {
                return Err(refuse("header too long"));
            }
            let value = HeaderValue::from_str(v).map_err(|_| refuse("header value"))?;
            headers.append(name, value);
        }
        if headers.get_all("host").iter().count() != 1 || r.header("host") != Some(ep.host_header().as_str()) {
            return Err(refuse("host header"));
        }
        let auth = r.authorization().ok_or_else(|| refuse("authorization"))?;
        if auth.service != "sts" || !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(refuse("authorization scope"));
        }
        let root = self.send_with_retries(ep, &headers, &Bytes::from(r.body.clone())).await?;
        read_caller_identity(&root)
    }
}

// The readers of the responses: pure functions of the parsed XML, apart from
// the client so that the fuzz targets (`fuzz/`, feature `fuzzing`) reach them.

/// One DescribeAutoScalingGroups page: adds the instances of `group_name` to
/// `out` (sets `found` when the group is listed); returns the NextToken.
pub(crate) fn read_groups_page(
    root: &Element,
    group_name: &str,
    out: &mut Vec<AsgInstance>,
    found: &mut bool,
) -> Result<Option<String>, AwsApiError> {
    let result = expect_root(root, "DescribeAutoScalingGroupsResponse")?
        .child("DescribeAutoScalingGroupsResult")
        .ok_or_else(|| AwsApiError::Response("missing DescribeAutoScalingGroupsResult".into()))?;
    if let Some(groups) = result.child("AutoScalingGroups") {
        for g in groups.children_named("member") {
            if text(g, "AutoScalingGroupName")? != group_name {
                continue;
            }
            *found = true;
            let Some(instances) = g.child("Instances") else { continue };
            for m in instances.children_named("member") {
                let inst = AsgInstance {
                    instance_id: field(m, "InstanceId", 64)?,
                    lifecycle_state: field(m, "LifecycleState", 64)?,
                    health_status: m.child_text("HealthStatus").unwrap_or("").chars().take(64).collect(),
                    availability_zone: m.child_text("AvailabilityZone").unwrap_or("").chars().take(64).collect(),
                };
                if !valid_instance_id(&inst.instance_id) {
                    return Err(AwsApiError::Response(format!("bad instance id {:?}", inst.instance_id)));
                }
                if !out.iter().any(|o| o.instance_id == inst.instance_id) {
                    out.push(inst);
                }
            }
        }
    }
    Ok(next_token(result.child("NextToken")))
}

/// A DescribeAutoScalingInstances answer: the group of `instance_id`, if any.
pub(crate) fn read_group_of_instance(
    root: &Element,
    instance_id: &str,
) -> Result<Option<AsgInstanceInfo>, AwsApiError> {
    let result = expect_root(root, "DescribeAutoScalingInstancesResponse")?
        .child("DescribeAutoScalingInstancesResult")
        .ok_or_else(|| AwsApiError::Response("missing DescribeAutoScalingInstancesResult".into()))?;
    let Some(list) = result.child("AutoScalingInstances") else { return Ok(None) };
    for m in list.children_named("member") {
        if text(m, "InstanceId")? != instance_id {
            continue;
        }
        let group_name = field(m, "AutoScalingGroupName", 255)?;
        if !valid_group_name(&group_name) {
            return Err(AwsApiError::Response("bad group name".into()));
        }
        return Ok(Some(AsgInstanceInfo {
            instance_id: instance_id.to_string(),
            group_name,
            lifecycle_state: field(m, "LifecycleState", 64)?,
            health_status: m.child_text("HealthStatus").unwrap_or("").chars().take(64).collect(),
            availability_zone: m.child_text("AvailabilityZone").unwrap_or("").chars().take(64).collect(),
        }));
    }
    Ok(None)
}

/// One DescribeInstances page: adds the instances of `wanted` to `out`;
/// returns the nextToken.
pub(crate) fn read_instances_page(
    root: &Element,
    wanted: &[&str],
    out: &mut Vec<Ec2Instance>,
) -> Result<Option<String>, AwsApiError> {
    let root = expect_root(root, "DescribeInstancesResponse")?;
    if let Some(rs) = root.child("reservationSet") {
        for r in rs.children_named("item") {
            let Some(is) = r.child("instancesSet") else { continue };
            for i in is.children_named("item") {
                let inst = parse_ec2_instance(i)?;
                if wanted.contains(&inst.instance_id.as_str()) && !out.iter().any(|o| o.instance_id == inst.instance_id)
                {
                    out.push(inst);
                }
            }
        }
    }
    Ok(next_token(root.child("nextToken")))
}

/// A GetCallerIdentity answer.
pub(crate) fn read_caller_identity(root: &Element) -> Result<CallerIdentity, AwsApiError> {
    let result = expect_root(root, "GetCallerIdentityResponse")?
        .child("GetCallerIdentityResult")
        .ok_or_else(|| AwsApiError::Response("missing GetCallerIdentityResult".into()))?;
    let id = CallerIdentity {
        arn: field(result, "Arn", 2048)?,
        account: field(result, "Account", 12)?,
        user_id: field(result, "UserId", 256)?,
    };
    if id.account.len() != 12 || !id.account.bytes().all(|b| b.is_ascii_digit()) || !id.arn.starts_with("arn:") {
        return Err(AwsApiError::Response("malformed caller identity".into()));
    }
    Ok(id)
}

fn parse_ec2_instance(i: &Element) -> Result<Ec2Instance, AwsApiError> {
    let instance_id = field(i, "instanceId", 64)?;
    if !valid_instance_id(&instance_id) {
        return Err(AwsApiError::Response(format!("bad instance id {instance_id:?}")));
    }
    let private_ip = match i.child_text("privateIpAddress") {
        None | Some("") => None,
        Some(s) => {
            Some(s.parse().map_err(|_| AwsApiError::Response(format!("bad privateIpAddress for {instance_id}")))?)
        }
    };
    let state = i
        .child("instanceState")
        .ok_or_else(|| AwsApiError::Response("missing instanceState".into()))
        .and_then(|s| field(s, "name", 32))?;
    Ok(Ec2Instance { instance_id, private_ip, image_id: field(i, "imageId", 64)?, state })
}

#[cfg(test)]
mod tests;
