//! The HTTP side of a SCIM target: one reqwest client per target (connections reused,
//! gzip, the target's CA and timeouts), authentication by Basic, bearer token or OAuth2
//! client credentials (the token cached and refreshed before it expires), and the
//! resource calls — create, get, filter, replace, patch, delete, bulk — each answer
//! turned into a classified failure when it is not a success. Retrying idempotent calls
//! lives here; deciding what a failed create means lives in `push`.

use domain::scim::{
    discovery::{DEFAULT_MAX_OPERATIONS, DEFAULT_MAX_PAYLOAD_SIZE, Discovery},
    outcome::{ErrorClass, ScimFailure, backoff, parse_retry_after},
    target::{TargetAuth, TargetSecrets, TargetSettings},
    urn,
};
use reqwest::{
    Method, StatusCode,
    header::{self, HeaderMap, HeaderName, HeaderValue},
};
use serde_json::Value;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Mutex;

const SCIM_JSON: &str = "application/scim+json";

/// A failed call: what the target (or the network) said, and how long it asked to wait.
#[derive(Clone, Debug)]
pub struct CallFailure {
    pub failure: ScimFailure,
    pub retry_after: Option<Duration>,
}

impl CallFailure {
    pub fn class(&self) -> ErrorClass {
        self.failure.class
    }

    fn network(err: &reqwest::Error) -> Self {
        let what = if err.is_timeout() {
            "the target did not answer in time"
        } else if err.is_connect() {
            "could not connect to the target"
        } else {
            "the connection to the target failed"
        };
        Self {
            failure: ScimFailure::new(ErrorClass::Network, None, format!("{what}: {}", chain(err))),
            retry_after: None,
        }
    }
}

/// The largest answer Ferry reads from a target: a bulk answer of 1,000 operations or a
/// page of users is a few megabytes; a target (or something posing as one) sending
/// without end must not fill the memory.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;
const MAX_TOKEN_ANSWER_BYTES: usize = 1 << 20;

/// An answer's body, refused once it passes `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, CallFailure> {
    let status = response.status().as_u16();
    let too_large = || CallFailure {
        failure: ScimFailure::new(
            ErrorClass::Protocol,
            Some(status),
            format!("the target's answer is larger than {} MiB", limit >> 20),
        ),
        retry_after: None,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| CallFailure::network(&e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// An error with its causes, which is where reqwest keeps the useful part (the TLS or
/// DNS reason).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: axum::body::Bytes,
}

impl Answer {
    pub fn json(&self) -> Result<Value, CallFailure> {
        serde_json::from_slice(&self.body).map_err(|e| CallFailure {
            failure: ScimFailure::new(
                ErrorClass::Protocol,
                Some(self.status),
                format!("the answer is not JSON: {e}"),
            ),
            retry_after: None,
        })
    }
}

/// How patiently idempotent calls are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        backoff(
            attempt,
            self.base,
            self.cap,
            retry_after,
            rand::random::<f64>(),
        )
    }
}

/// The bulk limits Ferry packs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub bulk: bool,
    pub max_operations: u32,
    pub max_payload_size: u64,
}

impl Limits {
    /// From discovery, capped by the settings; without discovery, single requests.
    pub fn new(settings: &TargetSettings, discovery: Option<&Discovery>) -> Self {
        match discovery {
            Some(d) => Self {
                bulk: d.config.bulk_supported,
                max_operations: settings.bulk_operations(d.config.max_operations),
                max_payload_size: d.config.max_payload_size,
            },
            None => Self {
                bulk: false,
                max_operations: settings.bulk_operations(DEFAULT_MAX_OPERATIONS),
                max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
            },
        }
    }
}

enum Auth {
    Static(HeaderValue),
    OAuth2(OAuth2),
}

/// OAuth2 client credentials (RFC 6749 §4.4) with the client authenticated by HTTP
/// Basic; the token is shared by every call and renewed shortly before it expires.
struct OAuth2 {
    token_url: String,
    client_id: String,
    secret: String,
    scope: String,
    cached: Mutex<Option<(HeaderValue, Instant)>>,
}

/// A renewal margin: a token is replaced this long before its stated expiry.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl OAuth2 {
    async fn header(&self, http: &reqwest::Client) -> Result<HeaderValue, CallFailure> {
        let mut cached = self.cached.lock().await;
        if let Some((value, valid_until)) = cached.as_ref()
            && Instant::now() < *valid_until
        {
            return Ok(value.clone());
        }
        let (value, lifetime) = self.fetch(http).await?;
        let margin = TOKEN_MARGIN.min(lifetime / 10);
        *cached = Some((
            value.clone(),
            Instant::now() + lifetime.saturating_sub(margin),
        ));
        Ok(value)
    }

    async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(HeaderValue, Duration), CallFailure> {
        let mut form = vec![("grant_type", "client_credentials")];
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.as_str()));
        }
        let response = http
            .post(&self.token_url)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(&self.secret)),
            )
            .form(&form)
            .send()
            .await
            .map_err(|e| CallFailure::network(&e))?;
        let status = response.status();
        let body = read_limited(response, MAX_TOKEN_ANSWER_BYTES).await?;
        let token_failure = |class, detail: String| CallFailure {
            failure: ScimFailure::new(class, Some(status.as_u16()), detail),
            retry_after: None,
        };
        if !status.is_success() {
            // RFC 6749 §5.2: `error` and `error_description`.
            let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let reason = [doc.get("error"), doc.get("error_description")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(": ");
            let class = match status.as_u16() {
                400 | 401 | 403 => ErrorClass::Unauthorized,
                code => domain::scim::outcome::classify(code, None),
            };
            return Err(token_failure(
                class,
                format!(
                    "the token endpoint refused the client credentials (HTTP {}){}",
                    status.as_u16(),
                    if reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {reason}")
                    }
                ),
            ));
        }
        let doc: Value = serde_json::from_slice(&body).map_err(|_| {
            token_failure(
                ErrorClass::Protocol,
                "the token endpoint's answer is not JSON".into(),
            )
        })?;
        let token = doc
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                token_failure(
                    ErrorClass::Protocol,
                    "the token endpoint gave no access_token".into(),
                )
            })?;
        let lifetime = doc
            .get("expires_in")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map_or(Duration::from_secs(3600), Duration::from_secs);
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            token_failure(
                ErrorClass::Protocol,
                "the access token is not a valid header value".into(),
            )
        })?;
        value.set_sensitive(true);
        Ok((value, lifetime))
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A target's client. Cheap to clone; clones share connections and the OAuth2 token.
#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base: Arc<str>,
    auth: Arc<Auth>,
    pub retry: RetryPolicy,
}

/// Why a client could not be built from settings (a bad certificate, a bad header).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

impl ScimClient {
    pub fn new(settings: &TargetSettings, secrets: &TargetSecrets) -> Result<Self, SetupError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static(SCIM_JSON));
        for extra in &secrets.headers {
            let name = HeaderName::from_bytes(extra.name.as_bytes())
                .map_err(|_| SetupError(format!("{:?} is not a header name", extra.name)))?;
            let mut value = HeaderValue::from_str(&extra.value)
                .map_err(|_| SetupError(format!("the value of {} is not valid", extra.name)))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("Ferry/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(settings.connect_timeout_secs.into()))
            .timeout(Duration::from_secs(settings.request_timeout_secs.into()))
            .pool_idle_timeout(Duration::from_secs(60))
            .gzip(true)
            // A redirect would resend credentials elsewhere; a SCIM root does not move.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &settings.ca_certificate {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| SetupError(format!("the CA certificate cannot be read: {e}")))?;
            if certificates.is_empty() {
                return Err(SetupError("the CA certificate holds no certificate".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| SetupError(format!("the HTTP client cannot be built: {}", chain(&e))))?;
        let secret = secrets
            .secret
            .clone()
            .ok_or_else(|| SetupError(format!("no {} is stored", settings.auth.secret_label())))?;
        let sensitive = |text: String| {
            HeaderValue::from_str(&text)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| SetupError("the credentials are not a valid header value".into()))
        };
        let auth = match &settings.auth {
            TargetAuth::Basic { username } => {
                use base64::Engine;
                let pair = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{secret}"));
                Auth::Static(sensitive(format!("Basic {pair}"))?)
            }
            TargetAuth::Bearer => Auth::Static(sensitive(format!("Bearer {secret}"))?),
            TargetAuth::OAuth2 {
                token_url,
                client_id,
                scope,
            } => Auth::OAuth2(OAuth2 {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                secret,
                scope: scope.clone(),
                cached: Mutex::new(None),
            }),
        };
        Ok(Self {
            http,
            base: settings.base_url.trim_end_matches('/').into(),
            auth: Arc::new(auth),
            retry: RetryPolicy::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The credentials' header; for OAuth2 this fetches a token when none is fresh.
    pub async fn authorization(&self) -> Result<HeaderValue, CallFailure> {
        match self.auth.as_ref() {
            Auth::Static(value) => Ok(value.clone()),
            Auth::OAuth2(oauth) => oauth.header(&self.http).await,
        }
    }

    /// A request without credentials, to learn whether the target answers at all (DNS,
    /// TCP, TLS): any HTTP status will do.
    pub async fn probe(&self, path: &str) -> Result<u16, CallFailure> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| CallFailure::network(&e))?;
        Ok(response.status().as_u16())
    }

    /// One request, once. Non-2xx answers come back as classified failures.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, CallFailure> {
        let mut renewed = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .header(header::AUTHORIZATION, self.authorization().await?);
            if let Some(body) = &body {
                request = request
                    .header(header::CONTENT_TYPE, SCIM_JSON)
                    .body(body.clone());
            }
            let response = request.send().await.map_err(|e| CallFailure::network(&e))?;
            let status = response.status();
            // An OAuth2 token may be revoked before it expires: fetch a new one once.
            if status == StatusCode::UNAUTHORIZED
                && !renewed
                && let Auth::OAuth2(oauth) = self.auth.as_ref()
            {
                oauth.forget().await;
                renewed = true;
                continue;
            }
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = read_limited(response, MAX_ANSWER_BYTES).await?;
            if status.is_success() {
                return Ok(Answer {
                    status: status.as_u16(),
                    location,
                    body: bytes,
                });
            }
            return Err(CallFailure {
                failure: ScimFailure::from_response(status.as_u16(), &bytes),
                retry_after,
            });
        }
    }

    /// A call that is safe to repeat (GET, PUT, PATCH, DELETE, a bulk of such), retried
    /// with back-off while the failure is worth retrying.
    pub async fn call_idempotent(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, CallFailure> {
        let mut attempt = 0;
        loop {
            match self.call(method.clone(), path, body.clone()).await {
                Err(failure)
                    if failure.class().retryable() && attempt + 1 < self.retry.attempts =>
                {
                    attempt += 1;
                    tokio::time::sleep(self.retry.delay(attempt, failure.retry_after)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, CallFailure> {
        self.call_idempotent(Method::GET, path, None).await?.json()
    }

    /// `POST` one resource; not retried (see `push` for what a failed create means).
    pub async fn create(&self, endpoint: &str, resource: &Value) -> Result<Value, CallFailure> {
        let body = serde_json::to_vec(resource).unwrap_or_default();
        self.call(Method::POST, endpoint, Some(body)).await?.json()
    }

    pub async fn replace(&self, path: &str, resource: &Value) -> Result<Value, CallFailure> {
        let body = serde_json::to_vec(resource).unwrap_or_default();
        self.call_idempotent(Method::PUT, path, Some(body))
            .await?
            .json()
    }

    /// `PATCH` with RFC 7644 §3.5.2 operations. Servers answer 200 with the resource
    /// or 204 without a body; both are success.
    pub async fn patch(&self, path: &str, operations: Vec<Value>) -> Result<(), CallFailure> {
        let body = serde_json::json!({ "schemas": [urn::PATCH_OP], "Operations": operations });
        self.call_idempotent(
            Method::PATCH,
            path,
            Some(serde_json::to_vec(&body).unwrap_or_default()),
        )
        .await
        .map(|_| ())
    }

    /// `DELETE`; a resource already gone counts as deleted.
    pub async fn delete(&self, path: &str) -> Result<(), CallFailure> {
        match self.call_idempotent(Method::DELETE, path, None).await {
            Ok(_) => Ok(()),
            Err(f) if f.class() == ErrorClass::NotFound => Ok(()),
            Err(f) => Err(f),
        }
    }

    /// The resources of `endpoint` whose `attribute` equals `value` (RFC 7644 §3.4.2.2).
    pub async fn filter_eq(
        &self,
        endpoint: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<Value>, CallFailure> {
        self.filter_any(endpoint, attribute, &[value]).await
    }

    /// Resources whose `attribute` equals any of `values`, in one request (`a eq "x" or
    /// a eq "y" …`), a page of at least 100 (a target filtering loosely may answer with
    /// others too, and the caller keeps only the resources whose attribute matches).
    pub async fn filter_any(
        &self,
        endpoint: &str,
        attribute: &str,
        values: &[&str],
    ) -> Result<Vec<Value>, CallFailure> {
        let filter = values
            .iter()
            .map(|v| format!("{attribute} eq \"{}\"", filter_escape(v)))
            .collect::<Vec<_>>()
            .join(" or ");
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("filter", &filter)
            .append_pair("count", &values.len().max(100).to_string())
            .finish();
        let doc = self.get(&format!("{endpoint}?{query}")).await?;
        Ok(doc
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Resources created at or after `since` (their `id` and `externalId`), page by
    /// page; `None` when there are more than `at_most` (the target may have ignored the
    /// filter). Also returns the number of requests made.
    pub async fn created_since(
        &self,
        endpoint: &str,
        since: chrono::DateTime<chrono::Utc>,
        at_most: usize,
    ) -> (Result<Option<Vec<Value>>, CallFailure>, u64) {
        const PAGE: usize = 1_000;
        let filter = format!(
            "meta.created ge \"{}\"",
            since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        let mut found: Vec<Value> = Vec::new();
        let mut requests = 0;
        loop {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filter", &filter)
                .append_pair("attributes", "externalId")
                .append_pair("startIndex", &(found.len() + 1).to_string())
                .append_pair("count", &PAGE.to_string())
                .finish();
            requests += 1;
            let doc = match self.get(&format!("{endpoint}?{query}")).await {
                Ok(doc) => doc,
                Err(call) => return (Err(call), requests),
            };
            let total = doc
                .get("totalResults")
                .and_then(Value::as_u64)
                .map_or(usize::MAX, |t| usize::try_from(t).unwrap_or(usize::MAX));
            if total > at_most {
                return (Ok(None), requests);
            }
            let page = doc
                .get("Resources")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let empty = page.is_empty();
            found.extend(page);
            // Users created while paging may shift the pages: one missed here is sent
            // again, and its 409 is settled by a look-up.
            if empty || found.len() >= total {
                return (Ok(Some(found)), requests);
            }
        }
    }

    /// Sends a bulk body (already packed within the limits); the answer is parsed by
    /// the caller, which matches operations by `bulkId`.
    pub async fn bulk(&self, body: Vec<u8>) -> Result<Answer, CallFailure> {
        self.call(Method::POST, "/Bulk", Some(body)).await
    }
}

/// A string inside a SCIM filter's double quotes (RFC 7644 §3.4.2.2 uses JSON strings).
fn filter_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}
