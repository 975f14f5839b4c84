//! Every answer of a target turned into a domain outcome (DESIGN §3): the error
//! classes and what each means for the record and the run, the SCIM error body, the
//! `Retry-After` header and the back-off between attempts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// Why an operation did not succeed, as far as what to do next is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 409 `uniqueness`: the user exists; the project's policy decides.
    AlreadyExists,
    /// 400 (and other 4xx about the data): goes to review with the target's words.
    InvalidData,
    /// 413: the request was too large; it is split and sent again.
    PayloadTooLarge,
    /// 429 or 503: back off, honouring `Retry-After`.
    Throttled,
    /// 401 or 403: the credentials are wrong or lack rights; the run stops.
    Unauthorized,
    /// 404 on a resource Ferry expected to exist.
    NotFound,
    /// The connection failed or timed out: retried after a lookup.
    Network,
    /// 5xx other than 503: retried a few times, then failed.
    ServerError,
    /// The answer broke the protocol (unreadable JSON, a bulk answer without an
    /// operation Ferry sent).
    Protocol,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyExists => "already_exists",
            Self::InvalidData => "invalid_data",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Throttled => "throttled",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Network => "network",
            Self::ServerError => "server_error",
            Self::Protocol => "protocol",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::AlreadyExists,
            Self::InvalidData,
            Self::PayloadTooLarge,
            Self::Throttled,
            Self::Unauthorized,
            Self::NotFound,
            Self::Network,
            Self::ServerError,
            Self::Protocol,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::AlreadyExists => "Already exists",
            Self::InvalidData => "Invalid data",
            Self::PayloadTooLarge => "Payload too large",
            Self::Throttled => "Throttled",
            Self::Unauthorized => "Unauthorized",
            Self::NotFound => "Not found",
            Self::Network => "Network error",
            Self::ServerError => "Server error",
            Self::Protocol => "Protocol error",
        }
    }

    /// Classes worth another attempt of the same request, after a pause.
    pub fn retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Network | Self::ServerError)
    }

    /// Classes that end the whole run, not just the record.
    pub fn stops_run(self) -> bool {
        matches!(self, Self::Unauthorized)
    }
}

/// Classifies an HTTP status (with the SCIM `scimType`, when the body had one).
pub fn classify(status: u16, scim_type: Option<&str>) -> ErrorClass {
    match status {
        409 => match scim_type {
            // RFC 7644 names `uniqueness`; some servers send 409 with no type at all.
            None | Some("uniqueness") | Some("") => ErrorClass::AlreadyExists,
            Some(_) => ErrorClass::InvalidData,
        },
        413 => ErrorClass::PayloadTooLarge,
        // RFC 7644 §3.12 lists `tooMany` under 400: too many results, not a rate limit.
        429 | 503 => ErrorClass::Throttled,
        401 | 403 => ErrorClass::Unauthorized,
        404 => ErrorClass::NotFound,
        400..=499 => ErrorClass::InvalidData,
        500..=599 => ErrorClass::ServerError,
        _ => ErrorClass::Protocol,
    }
}

/// The target's own account of a failure, kept for review.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScimFailure {
    pub class: ErrorClass,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    pub scim_type: Option<String>,
    pub detail: String,
}

/// Longest detail kept from a target: some servers put stack traces there.
const MAX_DETAIL_CHARS: usize = 1000;

impl ScimFailure {
    pub fn new(class: ErrorClass, status: Option<u16>, detail: impl Into<String>) -> Self {
        Self {
            class,
            status,
            scim_type: None,
            detail: truncate(detail.into()),
        }
    }

    /// Reads an error answer: an RFC 7644 §3.12 error body when there is one, else the
    /// first part of whatever text came back.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let (scim_type, detail) = match &parsed {
            Some(v) => (
                v.get("scimType")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                v.get("detail")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_default(),
            ),
            None => (None, String::from_utf8_lossy(body).trim().to_string()),
        };
        Self::from_parts(status, scim_type, detail)
    }

    pub fn from_parts(status: u16, scim_type: Option<String>, detail: String) -> Self {
        let scim_type = scim_type.filter(|t| !t.is_empty());
        let detail = if detail.is_empty() {
            "no detail given".to_string()
        } else {
            detail
        };
        Self {
            class: classify(status, scim_type.as_deref()),
            status: Some(status),
            scim_type,
            detail: truncate(detail),
        }
    }
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DETAIL_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Reads a SCIM status that servers write as `"201"`, `201` or `{"code": 201}` (WSO2).
pub fn status_code(value: &Value) -> Option<u16> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::Object(o) => o.get("code").and_then(status_code),
        _ => None,
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): seconds, or an HTTP date relative to `now`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// How long to wait before attempt `attempt` (1 for the first retry): exponential
/// from `base`, capped, with "full jitter" so that many workers do not return at once;
/// a `Retry-After` from the target is a floor. `jitter` is a number in [0, 1).
pub fn backoff(
    attempt: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exponential = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = exponential.min(cap);
    // Half fixed, half random: never zero, never in lock-step.
    let wait = ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(floor) => wait.max(floor.min(Duration::from_secs(3600))),
        None => wait,
    }
}

/// What became of one user sent to the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        id: String,
    },
    /// Existed as the same legacy user (by `externalId`) and was brought up to date
    /// (policy "update"); `changed` names the attributes replaced, never credentials
    /// or status.
    Updated {
        id: String,
        #[serde(default)]
        changed: Vec<String>,
    },
    /// Existed and was left alone (policy "skip").
    Skipped {
        id: String,
    },
    Failed(ScimFailure),
}

impl Outcome {
    pub fn scim_id(&self) -> Option<&str> {
        match self {
            Self::Created { id } | Self::Updated { id, .. } | Self::Skipped { id } => Some(id),
            Self::Failed(_) => None,
        }
    }
}
