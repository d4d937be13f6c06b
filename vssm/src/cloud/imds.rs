//! IMDSv2 client: session token (PUT /latest/api/token) cached and re-fetched once on 401,
//! short per-attempt timeouts, bounded retries with exponential backoff on transport errors and
//! 5xx. Every response is treated as hostile: size limits, UTF-8 and charset checks.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::Method;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use super::credentials::AwsCredentials;
use super::http_client::{header_map, HttpClient, HttpError, Url};

/// The instance metadata service address.
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";
const TOKEN_PATH: &str = "/latest/api/token";
const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";

const MAX_TOKEN: usize = 1024;
const MAX_IDENTITY_DOCUMENT: usize = 16 * 1024;
const MAX_SIGNATURE: usize = 16 * 1024;
const MAX_USER_DATA: usize = 64 * 1024;
const MAX_ROLE_LIST: usize = 4 * 1024;
const MAX_ROLE_CREDENTIALS: usize = 16 * 1024;

/// Why IMDS gave no usable answer.
#[derive(Debug)]
pub enum ImdsError {
    /// Transport error (after retries if transient).
    Http(HttpError),
    /// Still 401 after re-fetching the token.
    Unauthorized,
    /// Unexpected HTTP status (after retries for 5xx).
    Status {
        /// The HTTP status.
        status: u16,
        /// The path asked for.
        path: String,
    },
    /// The resource does not exist (404) where it must.
    NotFound(String),
    /// The response content is malformed or outside limits.
    Invalid(String),
}

impl fmt::Display for ImdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImdsError::Http(e) => write!(f, "IMDS: {e}"),
            ImdsError::Unauthorized => write!(f, "IMDS: unauthorized even with a fresh token"),
            ImdsError::Status { status, path } => write!(f, "IMDS: HTTP {status} for {path}"),
            ImdsError::NotFound(p) => write!(f, "IMDS: {p} not found"),
            ImdsError::Invalid(m) => write!(f, "IMDS: invalid response: {m}"),
        }
    }
}

impl std::error::Error for ImdsError {}

/// Retry and timeout settings of [`ImdsClient`].
#[derive(Debug, Clone)]
pub struct ImdsConfig {
    /// Maximum attempts per call (transport errors and 5xx are retried).
    pub attempts: u32,
    /// Timeout of each HTTP attempt.
    pub attempt_timeout: Duration,
    /// First backoff; doubled after each failure up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Token TTL requested from IMDS (1..=21600).
    pub token_ttl_secs: u32,
}

impl Default for ImdsConfig {
    fn default() -> ImdsConfig {
        ImdsConfig {
            attempts: 5,
            attempt_timeout: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            token_ttl_secs: 21600,
        }
    }
}

struct CachedToken {
    value: Zeroizing<String>,
    refresh_at: Instant,
}

/// IMDSv2 client with a cached session token.
pub struct ImdsClient {
    base: Url,
    http: HttpClient,
    cfg: ImdsConfig,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl fmt::Debug for ImdsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImdsClient").field("base", &self.base).field("cfg", &self.cfg).finish()
    }
}

enum Failure {
    Retry(ImdsError),
    Fatal(ImdsError),
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Failure {
        if e.is_transient() {
            Failure::Retry(ImdsError::Http(e))
        } else {
            Failure::Fatal(ImdsError::Http(e))
        }
    }
}

impl ImdsClient {
    /// Client for `base_url` (e.g. [`DEFAULT_IMDS_URL`]) with default settings.
    pub fn new(base_url: &str) -> Result<ImdsClient, ImdsError> {
        ImdsClient::with_config(base_url, ImdsConfig::default(), HttpClient::new())
    }

    /// Client for `base_url` with these settings and HTTP client.
    pub fn with_config(base_url: &str, cfg: ImdsConfig, http: HttpClient) -> Result<ImdsClient, ImdsError> {
        let base = Url::parse(base_url).map_err(|e| ImdsError::Invalid(e.to_string()))?;
        if base.path() != "/" || base.query().is_some() {
            return Err(ImdsError::Invalid("IMDS base URL must have no path".into()));
        }
        if cfg.attempts == 0 || cfg.token_ttl_secs == 0 || cfg.token_ttl_secs > 21600 {
            return Err(ImdsError::Invalid("bad IMDS configuration".into()));
        }
        Ok(ImdsClient { base, http, cfg, token: tokio::sync::Mutex::new(None) })
    }

    /// Exact bytes of the instance identity document (JSON).
    pub async fn identity_document(&self) -> Result<Vec<u8>, ImdsError> {
        let path = "/latest/dynamic/instance-identity/document";
        let b = self.get(path, MAX_IDENTITY_DOCUMENT).await?.ok_or_else(|| ImdsError::NotFound(path.into()))?;
        std::str::from_utf8(&b).map_err(|_| ImdsError::Invalid("identity document is not UTF-8".into()))?;
        Ok(b)
    }

    /// The PKCS#7 (RSA-2048) signature over the identity document, base64-decoded.
    pub async fn identity_signature_rsa2048(&self) -> Result<Vec<u8>, ImdsError> {
        let path = "/latest/dynamic/instance-identity/rsa2048";
        let b = self.get(path, MAX_SIGNATURE).await?.ok_or_else(|| ImdsError::NotFound(path.into()))?;
        let compact: Vec<u8> = b.into_iter().filter(|c| !matches!(c, b'\n' | b'\r' | b' ' | b'\t')).collect();
        base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|e| ImdsError::Invalid(format!("rsa2048 signature is not base64: {e}")))
    }

    /// User data, `None` if the instance has none (404).
    pub async fn user_data(&self) -> Result<Option<Vec<u8>>, ImdsError> {
        self.get("/latest/user-data", MAX_USER_DATA).await
    }

    /// Name of the instance profile's role (the first role listed), as STS
    /// names it in the instance's assumed-role ARN.
    pub async fn role_name(&self) -> Result<String, ImdsError> {
        let list =
            self.get(ROLES_PATH, MAX_ROLE_LIST).await?.ok_or_else(|| ImdsError::NotFound("instance role".into()))?;
        let list = String::from_utf8(list).map_err(|_| ImdsError::Invalid("role list is not UTF-8".into()))?;
        let role = list
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| ImdsError::NotFound("instance role".into()))?;
        if !valid_role_name(role) {
            return Err(ImdsError::Invalid(format!("role name {:?}", role.escape_debug().to_string())));
        }
        Ok(role.to_string())
    }

    /// Credentials of the instance profile role (first role listed).
    pub async fn role_credentials(&self) -> Result<AwsCredentials, ImdsError> {
        let role = self.role_name().await?;
        let path = format!("{ROLES_PATH}{role}");
        let mut body = self.get(&path, MAX_ROLE_CREDENTIALS).await?.ok_or_else(|| ImdsError::NotFound(path.clone()))?;
        let parsed = parse_role_credentials(&body);
        body.zeroize();
        parsed
    }

    /// GET `path` (absolute, starting with `/`) with the session token; `None` on 404.
    pub async fn get(&self, path: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, ImdsError> {
        let url = self.base.with_path_and_query(path).map_err(|e| ImdsError::Invalid(e.to_string()))?;
        let mut backoff = self.cfg.initial_backoff;
        let mut failures = 0u32;
        let mut refetched = false;
        loop {
            let failure = match self.attempt(&url, max_bytes).await {
                Ok(resp) => match resp.status.as_u16() {
                    200 => return Ok(Some(resp.body.to_vec())),
                    404 => return Ok(None),
                    401 if !refetched => {
                        refetched = true;
                        *self.token.lock().await = None;
                        continue;
                    }
                    401 => return Err(ImdsError::Unauthorized),
                    s if s >= 500 => ImdsError::Status { status: s, path: path.to_string() },
                    s => return Err(ImdsError::Status { status: s, path: path.to_string() }),
                },
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) => e,
            };
            failures += 1;
            if failures >= self.cfg.attempts {
                return Err(failure);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
    }

    async fn attempt(&self, url: &Url, max_bytes: usize) -> Result<super::http_client::Response, Failure> {
        let token = self.token().await?;
        let headers = header_map([(TOKEN_HEADER, token.as_str())]).map_err(|e| Failure::Fatal(ImdsError::Http(e)))?;
        Ok(self.http.request(Method::GET, url, &headers, Bytes::new(), self.cfg.attempt_timeout, max_bytes).await?)
    }

    async fn token(&self) -> Result<Zeroizing<String>, Failure> {
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            if Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        let url = self.base.with_path_and_query(TOKEN_PATH).map_err(|e| Failure::Fatal(ImdsError::Http(e)))?;
        let ttl = self.cfg.token_ttl_secs.to_string();
        let headers: HeaderMap =
            header_map([(TOKEN_TTL_HEADER, ttl.as_str())]).map_err(|e| Failure::Fatal(ImdsError::Http(e)))?;
        let resp =
            self.http.request(Method::PUT, &url, &headers, Bytes::new(), self.cfg.attempt_timeout, MAX_TOKEN).await?;
        match resp.status.as_u16() {
            200 => {}
            s if s >= 500 => return Err(Failure::Retry(ImdsError::Status { status: s, path: TOKEN_PATH.into() })),
            s => return Err(Failure::Fatal(ImdsError::Status { status: s, path: TOKEN_PATH.into() })),
        }
        let value = std::str::from_utf8(&resp.body)
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| Failure::Fatal(ImdsError::Invalid("session token".into())))?;
        let value = Zeroizing::new(value.to_string());
        // Refresh a minute early (or at half-life for very short TTLs).
        let ttl = Duration::from_secs(self.cfg.token_ttl_secs.into());
        let margin = Duration::from_secs(60).min(ttl / 2);
        *guard = Some(CachedToken { value: value.clone(), refresh_at: Instant::now() + ttl - margin });
        Ok(value)
    }
}

/// IAM role names: 1..=64 of `A-Za-z0-9+=,.@_-`.
pub fn valid_role_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentialsJson {
    code: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

pub(crate) fn parse_role_credentials(body: &[u8]) -> Result<AwsCredentials, ImdsError> {
    let bad = |m: &str| ImdsError::Invalid(format!("role credentials: {m}"));
    let j: RoleCredentialsJson = serde_json::from_slice(body).map_err(|_| bad("not the expected JSON"))?;
    let secret = Zeroizing::new(j.secret_access_key.unwrap_or_default());
    let token = Zeroizing::new(j.token.unwrap_or_default());
    if j.code.as_deref() != Some("Success") {
        return Err(bad(&format!("Code is {:?}", j.code.as_deref().unwrap_or("<missing>").escape_debug().to_string())));
    }
    let akid = j.access_key_id.unwrap_or_default();
    if !(16..=128).contains(&akid.len()) || !akid.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        return Err(bad("AccessKeyId"));
    }
    if secret.is_empty() || secret.len() > 256 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("SecretAccessKey"));
    }
    if token.is_empty() || token.len() > 8192 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("Token"));
    }
    let exp = j.expiration.ok_or_else(|| bad("Expiration missing"))?;
    let expiration = humantime::parse_rfc3339_weak(&exp).map_err(|_| bad("Expiration"))?;
    Ok(AwsCredentials {
        access_key_id: akid,
        secret_access_key: secret,
        session_token: Some(token),
        expiration: Some(expiration),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::test_server::{TestResponse, TestServer};
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Fake {
        valid_tokens: HashSet<String>,
        puts: u32,
        gets: u32,
        /// Answer the next N GETs with 500.
        fail_next: u32,
        always_401: bool,
        role_list: String,
        role_json: String,
        user_data: Option<Vec<u8>>,
    }

    const DOC: &[u8] = b"{\n  \"accountId\" : \"123456789012\",\n  \"instanceId\" : \"i-1234567890abcdef0\",\n  \"region\" : \"us-east-1\"\n}";
    const CREDS: &str = r#"{
  "Code" : "Success",
  "LastUpdated" : "2012-04-26T16:39:16Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAIOSFODNN7EXAMPLE",
  "SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  "Token" : "IQoJb3JpZ2luX2VjEXAMPLETOKEN==",
  "Expiration" : "2017-05-17T15:09:54Z"
}"#;

    async fn fake(state: Arc<Mutex<Fake>>) -> TestServer {
        TestServer::start(move |req| {
            let mut st = state.lock().unwrap();
            if req.uri == "/latest/api/token" {
                if req.method != "PUT" {
                    return TestResponse::new(405, "");
                }
                if req.header("x-aws-ec2-metadata-token-ttl-seconds") != Some("21600") {
                    return TestResponse::new(400, "missing or bad TTL");
                }
                st.puts += 1;
                let t = format!("TOKEN{}==", st.puts);
                st.valid_tokens.insert(t.clone());
                return TestResponse::new(200, t);
            }
            st.gets += 1;
            let tok = req.header("x-aws-ec2-metadata-token").unwrap_or("");
            if st.always_401 || !st.valid_tokens.contains(tok) {
                return TestResponse::new(401, "");
            }
            if st.fail_next > 0 {
                st.fail_next -= 1;
                return TestResponse::new(500, "");
            }
            match req.uri.as_str() {
                "/latest/dynamic/instance-identity/document" => TestResponse::new(200, DOC),
                "/latest/dynamic/instance-identity/rsa2048" => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 300]);
                    let wrapped: Vec<String> =
                        b64.as_bytes().chunks(64).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
                    TestResponse::new(200, wrapped.join("\n"))
                }
                "/latest/user-data" => match &st.user_data {
                    Some(d) => TestResponse::new(200, d.clone()),
                    None => TestResponse::new(404, "<html>404 - Not Found</html>"),
                },
                "/latest/meta-data/iam/security-credentials/" => TestResponse::new(200, st.role_list.clone()),
                "/latest/meta-data/iam/security-credentials/my-role" => TestResponse::new(200, st.role_json.clone()),
                _ => TestResponse::new(404, ""),
            }
        })
        .await
    }

    fn quick() -> ImdsConfig {
        ImdsConfig {
            attempts: 5,
            attempt_timeout: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_millis(200),
            token_ttl_secs: 21600,
        }
    }

    fn setup() -> Arc<Mutex<Fake>> {
        Arc::new(Mutex::new(Fake { role_list: "my-role\n".into(), role_json: CREDS.into(), ..Default::default() }))
    }

    fn client(server: &TestServer) -> ImdsClient {
        ImdsClient::with_config(&server.base_url().to_string(), quick(), HttpClient::new()).unwrap()
    }

    #[tokio::test]
    async fn token_cached_and_refetched_once_on_401() {
        let st = setup();
        let server = fake(st.clone()).await;
        let c = client(&server);
        assert_eq!(c.identity_document().await.unwrap(), DOC);
        assert_eq!(c.identity_document().await.unwrap(), DOC);
        assert_eq!(st.lock().unwrap().puts, 1, "token must be cached");
        // Server forgets its tokens (expiry): one 401, one new token, success.
        st.lock().unwrap().valid_tokens.clear();
        assert_eq!(c.identity_document().await.unwrap(), DOC);
        {
            let s = st.lock().unwrap();
            assert_eq!((s.puts, s.gets), (2, 4));
        }
        // Persistent 401: exactly one re-fetch, then Unauthorized.
        st.lock().unwrap().always_401 = true;
        let e = c.identity_document().await.unwrap_err();
        assert!(matches!(e, ImdsError::Unauthorized), "{e:?}");
        let s = st.lock().unwrap();
        assert_eq!((s.puts, s.gets), (3, 6));
    }

    #[tokio::test]
    async fn retries_5xx_with_backoff_then_gives_up() {
        let st = setup();
        let server = fake(st.clone()).await;
        let c = client(&server);
        st.lock().unwrap().fail_next = 2;
        let t0 = Instant::now();
        assert_eq!(c.identity_document().await.unwrap(), DOC);
        assert!(t0.elapsed() >= Duration::from_millis(40 + 80), "backoff too short: {:?}", t0.elapsed());
        assert_eq!(st.lock().unwrap().gets, 3);

        st.lock().unwrap().fail_next = 100;
        st.lock().unwrap().gets = 0;
        let e = c.identity_document().await.unwrap_err();
        assert!(matches!(e, ImdsError::Status { status: 500, .. }), "{e:?}");
        assert_eq!(st.lock().unwrap().gets, 5, "bounded attempts");
    }

    #[tokio::test]
    async fn connect_errors_are_retried_and_bounded() {
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        let c = ImdsClient::with_config(&format!("http://{addr}"), quick(), HttpClient::new()).unwrap();
        let t0 = Instant::now();
        let e = c.user_data().await.unwrap_err();
        assert!(matches!(e, ImdsError::Http(HttpError::Connect(_))), "{e:?}");
        // 4 backoffs: 40 + 80 + 160 + 200 ms.
        assert!(t0.elapsed() >= Duration::from_millis(480), "{:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn user_data_none_some_and_size_limit() {
        let st = setup();
        let server = fake(st.clone()).await;
        let c = client(&server);
        assert_eq!(c.user_data().await.unwrap(), None);
        st.lock().unwrap().user_data = Some(b"#!/bin/sh\necho hi\n".to_vec());
        assert_eq!(c.user_data().await.unwrap().as_deref(), Some(&b"#!/bin/sh\necho hi\n"[..]));
        st.lock().unwrap().user_data = Some(vec![b'x'; MAX_USER_DATA + 1]);
        let before = st.lock().unwrap().gets;
        let e = c.user_data().await.unwrap_err();
        assert!(matches!(e, ImdsError::Http(HttpError::BodyTooLarge { .. })), "{e:?}");
        assert_eq!(st.lock().unwrap().gets, before + 1, "size errors are not retried");
    }

    #[tokio::test]
    async fn signature_is_base64_decoded() {
        let st = setup();
        let server = fake(st.clone()).await;
        assert_eq!(client(&server).identity_signature_rsa2048().await.unwrap(), vec![7u8; 300]);
    }

    #[tokio::test]
    async fn role_credentials_parsed_and_validated() {
        let st = setup();
        let server = fake(st.clone()).await;
        let c = client(&server);
        let creds = c.role_credentials().await.unwrap();
        assert_eq!(creds.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(creds.secret_access_key.as_str(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(creds.session_token.as_deref().map(|s| s.as_str()), Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN=="));
        assert_eq!(creds.expiration, Some(humantime::parse_rfc3339("2017-05-17T15:09:54Z").unwrap()));
        assert!(!format!("{creds:?}").contains("EXAMPLEKEY"));

        for bad_list in ["../etc/passwd\n", "", "\n\n", "role with space", "x\u{0}y"] {
            st.lock().unwrap().role_list = bad_list.into();
            assert!(c.role_credentials().await.is_err(), "{bad_list:?}");
        }
        st.lock().unwrap().role_list = "my-role\nother-role\n".into();
        assert!(c.role_credentials().await.is_ok());
        for bad_json in [
            CREDS.replace("Success", "Failure"),
            CREDS.replace("ASIAIOSFODNN7EXAMPLE", "asia"),
            CREDS.replace("2017-05-17T15:09:54Z", "tomorrow"),
            CREDS.replace("\"Token\"", "\"NoToken\""),
            "[]".to_string(),
            "not json".to_string(),
        ] {
            st.lock().unwrap().role_json = bad_json.clone();
            assert!(c.role_credentials().await.is_err(), "{bad_json}");
        }
    }
}
