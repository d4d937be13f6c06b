//! AWS Signature Version 4 (header signing) and the pre-signed STS `GetCallerIdentity` request a
//! joining node hands to the cluster.
//!
//! Canonical URI: each path segment of the (wire-form) URL path is percent-decoded and re-encoded
//! with the RFC 3986 unreserved set (what the AWS test suite expects for non-S3 services; no
//! `.`/`..` normalization — the query APIs used here always use `/`).

use std::fmt;
use std::time::SystemTime;

use aws_lc_rs::{digest, hmac};
use serde::{Deserialize, Serialize};

use super::credentials::AwsCredentials;
use super::http_client::Url;

/// The SigV4 algorithm name in `Authorization`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Body of the STS GetCallerIdentity query call.
pub const STS_GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// Content type of query-API request bodies.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// A header name or value is unusable.
    InvalidHeader(String),
    /// The URL, time, region or service is unusable.
    InvalidInput(String),
}

impl fmt::Display for SigV4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigV4Error::InvalidHeader(m) => write!(f, "SigV4: invalid header: {m}"),
            SigV4Error::InvalidInput(m) => write!(f, "SigV4: invalid input: {m}"),
        }
    }
}

impl std::error::Error for SigV4Error {}

/// Lowercase hex SHA-256.
pub fn hex_sha256(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// `YYYYMMDDTHHMMSSZ` (UTC) for a time.
pub fn amz_date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// RFC 3986 percent-encoding of everything but unreserved characters (`A-Za-z0-9-._~`).
pub fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding (`+` is kept literally); malformed escapes are kept as-is.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hv = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hv(b[i + 1]), hv(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Form-encode parameters (`k=v&k2=v2`, RFC 3986 encoding, order kept).
pub fn form_encode(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k.as_bytes()), uri_encode(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical URI of a wire-form path (segments re-encoded).
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    path.split('/').map(|seg| uri_encode(&percent_decode(seg))).collect::<Vec<_>>().join("/")
}

/// The canonical query string: pairs re-encoded and sorted.
pub fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query else { return String::new() };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k)), uri_encode(&percent_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn valid_header_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 128 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_header_value(v: &str) -> bool {
    v.len() <= 16 * 1024 && v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Trim and collapse runs of spaces/tabs into one space.
fn canonical_header_value(v: &str) -> String {
    v.split([' ', '\t']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Canonical headers block and signed-headers list for exactly these headers.
fn canonical_headers(headers: &[(&str, &str)]) -> Result<(String, String), SigV4Error> {
    let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (n, v) in headers {
        if !valid_header_name(n) {
            return Err(SigV4Error::InvalidHeader(format!("name {n:?}")));
        }
        if !valid_header_value(v) {
            return Err(SigV4Error::InvalidHeader(format!("value of {n}")));
        }
        map.entry(n.to_ascii_lowercase()).or_default().push(canonical_header_value(v));
    }
    let block: String = map.iter().map(|(n, vs)| format!("{n}:{}\n", vs.join(","))).collect();
    let signed = map.keys().cloned().collect::<Vec<_>>().join(";");
    Ok((block, signed))
}

/// The canonical request string and the signed-headers list.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> Result<(String, String), SigV4Error> {
    let (block, signed) = canonical_headers(headers)?;
    let creq = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(path),
        canonical_query(query),
        block,
        signed,
        payload_hash
    );
    Ok((creq, signed))
}

/// `DATE/REGION/SERVICE/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign for a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex_sha256(canonical_request.as_bytes()))
}

/// HMAC-SHA256 of `data` under `key`, written into a buffer that is wiped when dropped
/// (an `hmac::Tag` is a `Copy` value that nothing wipes).
fn hmac_sign(key: &[u8], data: &[u8]) -> zeroize::Zeroizing<[u8; 32]> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    hmac::sign_to_buffer(&hmac::Key::new(hmac::HMAC_SHA256, key), data, &mut out[..])
        .expect("a 32-byte buffer holds an HMAC-SHA256 tag");
    out
}

/// The derived signing key for a date, region and service.
///
/// The secret and the intermediate keys are wiped; the result is an AWS-LC HMAC
/// key, whose state is wiped when dropped.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k0 = zeroize::Zeroizing::new(Vec::with_capacity(secret.len() + 4));
    k0.extend_from_slice(b"AWS4");
    k0.extend_from_slice(secret.as_bytes());
    let k_date = hmac_sign(&k0, date.as_bytes());
    let k_region = hmac_sign(&k_date[..], region.as_bytes());
    let k_service = hmac_sign(&k_region[..], service.as_bytes());
    let k_signing = hmac_sign(&k_service[..], b"aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, &k_signing[..])
}

/// Computes `(signed_headers, signature)` over exactly `headers` (which must include `host` and
/// `x-amz-date` for a valid AWS request). Used by [`sign`] and by verifiers that know the secret.
#[allow(clippy::too_many_arguments)]
pub fn compute_signature(
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> Result<(String, String), SigV4Error> {
    if amz_date.len() != 16 || !amz_date.is_ascii() {
        return Err(SigV4Error::InvalidInput(format!("bad amz date {amz_date:?}")));
    }
    let (creq, signed) = canonical_request(method, path, query, headers, payload_hash)?;
    let sts = string_to_sign(amz_date, &credential_scope(&amz_date[..8], region, service), &creq);
    let key = signing_key(secret, &amz_date[..8], region, service);
    Ok((signed, hex(hmac::sign(&key, sts.as_bytes()).as_ref())))
}

fn valid_scope_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Signs a request. `headers` are the request headers the caller will send (all of them are
/// signed); `Host` is taken from `headers` if present, else from `url`. Returns the headers to add:
/// `X-Amz-Date`, `X-Amz-Security-Token` (session credentials), `X-Amz-Content-Sha256` (if
/// `content_sha256_header`), and `Authorization`.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    region: &str,
    credentials: &AwsCredentials,
    time: SystemTime,
    content_sha256_header: bool,
) -> Result<Vec<(String, String)>, SigV4Error> {
    if !valid_scope_part(service) || !valid_scope_part(region) {
        return Err(SigV4Error::InvalidInput("service/region".into()));
    }
    if credentials.access_key_id.is_empty() || !credentials.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(SigV4Error::InvalidInput("access key id".into()));
    }
    for (n, _) in headers {
        let l = n.to_ascii_lowercase();
        if matches!(l.as_str(), "authorization" | "x-amz-date" | "x-amz-security-token" | "x-amz-content-sha256") {
            return Err(SigV4Error::InvalidHeader(format!("{n} is set by the signer")));
        }
    }
    let date = amz_date(time);
    let payload_hash = hex_sha256(body);
    let host = url.host_header();
    let mut to_sign: Vec<(&str, &str)> = headers.to_vec();
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        to_sign.push(("host", &host));
    }
    let mut added: Vec<(String, String)> = vec![("X-Amz-Date".into(), date.clone())];
    if let Some(tok) = &credentials.session_token {
        added.push(("X-Amz-Security-Token".into(), tok.to_string()));
    }
    if content_sha256_header {
        added.push(("X-Amz-Content-Sha256".into(), payload_hash.clone()));
    }
    to_sign.extend(added.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let (signed, signature) = compute_signature(
        &credentials.secret_access_key,
        &date,
        region,
        service,
        method,
        url.path(),
        url.query(),
        &to_sign,
        &payload_hash,
    )?;
    let auth = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={signed}, Signature={signature}",
        credentials.access_key_id,
        credential_scope(&date[..8], region, service)
    );
    added.push(("Authorization".into(), auth));
    Ok(added)
}

/// Parsed `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// Access key id of the credential.
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// Lowercase names of the signed headers.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses a SigV4 `Authorization` value; `None` if it is not one.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = cred?.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return None;
    }
    let sig = sig?;
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(ParsedAuthorization {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: sig.to_string(),
    })
}

/// A complete signed HTTP request, serializable so it can travel inside a JSON join request.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRequest {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// All headers to send, in order (including `host`).
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: String,
}

impl SignedRequest {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The parsed `Authorization` header (its signed-header list tells which headers the signature binds).
    pub fn authorization(&self) -> Option<ParsedAuthorization> {
        parse_authorization(self.header("authorization")?)
    }
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if n.eq_ignore_ascii_case("x-amz-security-token") {
                    (n.as_str(), "<redacted>")
                } else {
                    (n.as_str(), v.as_str())
                }
            })
            .collect();
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// `https://sts.REGION.amazonaws.com/`.
pub fn default_sts_endpoint(region: &str) -> Result<Url, SigV4Error> {
    if !valid_scope_part(region) {
        return Err(SigV4Error::InvalidInput(format!("region {region:?}")));
    }
    Url::parse(&format!("https://sts.{region}.amazonaws.com/")).map_err(|e| SigV4Error::InvalidInput(e.to_string()))
}

/// Headers that a caller may not put in `extra_signed_headers` (the signer or STS own them).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "authorization",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Signs `POST / Action=GetCallerIdentity&Version=2011-06-15` for STS in `region` (endpoint
/// `https://sts.REGION.amazonaws.com/` unless `endpoint` is given) with `credentials`. The
/// `extra_signed_headers` (lowercase names, e.g. `x-vssm-challenge`) are sent and covered by the
/// signature, binding them to the caller's identity.
pub fn signed_request_for_sts_get_caller_identity(
    credentials: &AwsCredentials,
    region: &str,
    extra_signed_headers: &[(&str, &str)],
    now: SystemTime,
    endpoint: Option<&Url>,
) -> Result<SignedRequest, SigV4Error> {
    let url = match endpoint {
        Some(u) => u.clone(),
        None => default_sts_endpoint(region)?,
    };
    let mut headers: Vec<(String, String)> =
        vec![("content-type".into(), FORM_CONTENT_TYPE.into()), ("host".into(), url.host_header())];
    for (n, v) in extra_signed_headers {
        if !valid_header_name(n) || n.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(SigV4Error::InvalidHeader(format!("extra header name {n:?} (lowercase token required)")));
        }
        if RESERVED_HEADERS.contains(n) || headers.iter().any(|(h, _)| h == n) {
            return Err(SigV4Error::InvalidHeader(format!("extra header {n:?} reserved or duplicated")));
        }
        if !valid_header_value(v) || v.len() > 1024 || v.trim() != *v || v.is_empty() {
            return Err(SigV4Error::InvalidHeader(format!("value of {n}")));
        }
        headers.push((n.to_string(), v.to_string()));
    }
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let added =
        sign("POST", &url, &borrowed, STS_GET_CALLER_IDENTITY_BODY.as_bytes(), "sts", region, credentials, now, false)?;
    headers.extend(added.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)));
    Ok(SignedRequest {
        method: "POST".into(),
        url: url.to_string(),
        headers,
        body: STS_GET_CALLER_IDENTITY_BODY.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T: u64 = 1_440_938_160; // 2015-08-30T12:36:00Z

    fn creds() -> AwsCredentials {
        AwsCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T)
    }

    fn authz(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> String {
        let url = Url::parse(url).unwrap();
        let added =
            sign(method, &url, headers, body.as_bytes(), "service", "us-east-1", &creds(), now(), false).unwrap();
        assert_eq!(added[0], ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()));
        added.into_iter().find(|(n, _)| n == "Authorization").unwrap().1
    }

    fn expected(signed: &str, sig: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={sig}"
        )
    }

    /// Vectors from AWS's aws-sig-v4-test-suite (header-signed Authorization values).
    #[test]
    fn aws_test_suite_vectors() {
        let h = "host;x-amz-date";
        let base = "https://example.amazonaws.com";
        type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str, String);
        let cases: &[Case] = &[
            ("GET", format!("{base}/"), vec![], "", expected(h, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")),
            ("POST", format!("{base}/"), vec![], "", expected(h, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")),
            (
                "GET",
                format!("{base}/?Param2=value2&Param1=value1"),
                vec![],
                "",
                expected(h, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
            ),
            (
                "GET",
                format!(
                    "{base}/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                ),
                vec![],
                "",
                expected(h, "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
            ),
            (
                "GET",
                format!("{base}/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
                vec![],
                "",
                expected(h, "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
            ),
            ("GET", format!("{base}/%E1%88%B4"), vec![], "", expected(h, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")),
            (
                "GET",
                format!("{base}/?%E1%88%B4=bar"),
                vec![],
                "",
                expected(h, "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
            ),
            ("POST", format!("{base}/?Param1=value1"), vec![], "", expected(h, "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")),
            (
                "POST",
                format!("{base}/"),
                vec![("My-Header1", "VALUE1")],
                "",
                expected("host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
            ),
            (
                "GET",
                format!("{base}/"),
                vec![("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
                "",
                expected("host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
            ),
            (
                "POST",
                format!("{base}/"),
                vec![("Content-Type", "application/x-www-form-urlencoded")],
                "Param1=value1",
                expected("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
            ),
        ];
        for (method, url, headers, body, want) in cases {
            assert_eq!(&authz(method, url, headers, body), want, "{method} {url}");
        }
    }

    #[test]
    fn canonical_request_of_get_vanilla() {
        let (creq, signed) = canonical_request(
            "GET",
            "/",
            None,
            &[("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            &hex_sha256(b""),
        )
        .unwrap();
        assert_eq!(signed, "host;x-amz-date");
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
    }

    #[test]
    fn session_token_and_content_sha_are_signed() {
        let mut c = creds();
        c.session_token = Some(zeroize::Zeroizing::new("TOKEN/+=".into()));
        let url = Url::parse("http://127.0.0.1:8080/").unwrap();
        let added = sign("POST", &url, &[], b"x", "ec2", "eu-west-1", &c, now(), true).unwrap();
        let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256", "Authorization"]);
        let a = parse_authorization(&added[3].1).unwrap();
        assert_eq!(a.signed_headers, ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"]);
        assert_eq!((a.region.as_str(), a.service.as_str(), a.date.as_str()), ("eu-west-1", "ec2", "20150830"));
        // Recompute independently of `sign` from what went on the wire.
        let (_, sig) = compute_signature(
            &c.secret_access_key,
            "20150830T123600Z",
            "eu-west-1",
            "ec2",
            "POST",
            "/",
            None,
            &[
                ("host", "127.0.0.1:8080"),
                ("x-amz-content-sha256", &hex_sha256(b"x")),
                ("x-amz-date", "20150830T123600Z"),
                ("x-amz-security-token", "TOKEN/+="),
            ],
            &hex_sha256(b"x"),
        )
        .unwrap();
        assert_eq!(a.signature, sig);
        // Caller may not set signer-owned headers.
        assert!(sign("GET", &url, &[("X-Amz-Date", "x")], b"", "ec2", "eu-west-1", &c, now(), false).is_err());
        assert!(sign("GET", &url, &[("bad header", "x")], b"", "ec2", "eu-west-1", &c, now(), false).is_err());
        assert!(sign("GET", &url, &[("h", "a\nb")], b"", "ec2", "eu-west-1", &c, now(), false).is_err());
        assert!(sign("GET", &url, &[], b"", "ec2", "EU/1", &c, now(), false).is_err());
    }

    #[test]
    fn sts_request_binds_extra_headers_and_serializes() {
        let mut c = creds();
        c.session_token = Some(zeroize::Zeroizing::new("SESSIONTOKEN".into()));
        let r = signed_request_for_sts_get_caller_identity(
            &c,
            "us-east-1",
            &[("x-vssm-challenge", "abc123"), ("x-vssm-ephemeral-key-sha256", "deadbeef")],
            now(),
            None,
        )
        .unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://sts.us-east-1.amazonaws.com/");
        assert_eq!(r.body, STS_GET_CALLER_IDENTITY_BODY);
        assert_eq!(r.header("Host"), Some("sts.us-east-1.amazonaws.com"));
        assert_eq!(r.header("x-vssm-challenge"), Some("abc123"));
        let a = r.authorization().unwrap();
        assert_eq!(
            a.signed_headers,
            [
                "content-type",
                "host",
                "x-amz-date",
                "x-amz-security-token",
                "x-vssm-challenge",
                "x-vssm-ephemeral-key-sha256"
            ]
        );
        assert_eq!((a.service.as_str(), a.region.as_str()), ("sts", "us-east-1"));
        // Signature verifies from the serialized form; changing a bound header breaks it.
        let json = serde_json::to_string(&r).unwrap();
        let back: SignedRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let verify = |req: &SignedRequest| {
            let hs: Vec<(&str, &str)> = a.signed_headers.iter().map(|n| (n.as_str(), req.header(n).unwrap())).collect();
            compute_signature(
                &c.secret_access_key,
                req.header("x-amz-date").unwrap(),
                "us-east-1",
                "sts",
                "POST",
                "/",
                None,
                &hs,
                &hex_sha256(req.body.as_bytes()),
            )
            .unwrap()
            .1
        };
        assert_eq!(verify(&back), a.signature);
        let mut tampered = back.clone();
        for h in tampered.headers.iter_mut() {
            if h.0 == "x-vssm-challenge" {
                h.1 = "other".into();
            }
        }
        assert_ne!(verify(&tampered), a.signature);
        assert!(!format!("{r:?}").contains("SESSIONTOKEN"));

        for bad in [("X-Vssm-Upper", "v"), ("host", "evil"), ("x-amz-date", "1"), ("x-ok", "a\r\nb"), ("x-ok", "")] {
            assert!(
                signed_request_for_sts_get_caller_identity(&c, "us-east-1", &[bad], now(), None).is_err(),
                "{bad:?}"
            );
        }
        let ep = Url::parse("http://127.0.0.1:9999").unwrap();
        let r = signed_request_for_sts_get_caller_identity(&c, "us-east-1", &[], now(), Some(&ep)).unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9999/");
        assert_eq!(r.header("host"), Some("127.0.0.1:9999"));
    }

    #[test]
    fn encoding_helpers() {
        assert_eq!(uri_encode(b"a b/+*~"), "a%20b%2F%2B%2A~");
        assert_eq!(percent_decode("%41%zz%4"), b"A%zz%4");
        assert_eq!(form_encode(&[("Action", "X"), ("A.member.1", "my group")]), "Action=X&A.member.1=my%20group");
        assert_eq!(canonical_query(Some("b=2&a=&c")), "a=&b=2&c=");
        assert!(parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=zz"
        )
        .is_none());
    }
}
