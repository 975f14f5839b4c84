//! Target secrets sealed under the server key, and the connection test: reachability
//! and TLS, authentication, then discovery of `/ServiceProviderConfig`, `/ResourceTypes`
//! and `/Schemas`, each step timed and explained in words an administrator can act on.

use super::client::{CallFailure, ScimClient};
use crate::keyring::Keyring;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    ids::ProjectId,
    ports::TargetConnector,
    scim::{
        discovery::{
            ConnectionReport, Discovery, StepStatus, TestStep, TestStepKind, parse_resource_types,
            parse_schemas, parse_service_provider_config,
        },
        outcome::ErrorClass,
        target::{TargetAuth, TargetRole, TargetSecrets, TargetSettings},
    },
};
use std::time::Instant;

/// The server's side of target connections.
#[derive(Clone)]
pub struct Targets {
    keys: Keyring,
}

impl Targets {
    pub fn new(keys: Keyring) -> Self {
        Self { keys }
    }

    fn context(project: ProjectId, role: TargetRole) -> Vec<u8> {
        format!("target:{}:{}", project.0, role.as_str()).into_bytes()
    }
}

#[async_trait]
impl TargetConnector for Targets {
    async fn seal_secrets(
        &self,
        project: ProjectId,
        role: TargetRole,
        secrets: &TargetSecrets,
    ) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(secrets).unwrap_or_default();
        Ok(self
            .keys
            .vault(project)
            .await?
            .seal(&plain, &Self::context(project, role)))
    }

    async fn open_secrets(
        &self,
        project: ProjectId,
        role: TargetRole,
        sealed: &[u8],
    ) -> Result<TargetSecrets> {
        let plain = self
            .keys
            .vault(project)
            .await?
            .open(sealed, &Self::context(project, role))
            .map_err(|_| {
                DomainError::Internal(
                    "the target's secrets cannot be opened with this server key".into(),
                )
            })?;
        serde_json::from_slice(&plain)
            .map_err(|e| DomainError::Internal(format!("the target's secrets are unreadable: {e}")))
    }

    async fn test_connection(
        &self,
        settings: &TargetSettings,
        secrets: &TargetSecrets,
        started_at: DateTime<Utc>,
    ) -> ConnectionReport {
        let mut steps = Vec::new();
        let discovery = run_test(settings, secrets, &mut steps).await;
        ConnectionReport::new(started_at, steps, discovery)
    }

    async fn get_user(
        &self,
        settings: &TargetSettings,
        secrets: &TargetSecrets,
        scim_id: &str,
    ) -> std::result::Result<serde_json::Value, String> {
        let client = ScimClient::new(settings, secrets).map_err(|e| e.0)?;
        client
            .get(&user_path(scim_id))
            .await
            .map_err(|call| failed(&call))
    }

    async fn patch_user(
        &self,
        settings: &TargetSettings,
        secrets: &TargetSecrets,
        scim_id: &str,
        operations: Vec<serde_json::Value>,
    ) -> std::result::Result<(), String> {
        let client = ScimClient::new(settings, secrets).map_err(|e| e.0)?;
        client
            .patch(&user_path(scim_id), operations)
            .await
            .map_err(|call| failed(&call))
    }
}

/// `/Users/{id}`, the id escaped as one path segment.
fn user_path(scim_id: &str) -> String {
    let escaped: String = url::form_urlencoded::byte_serialize(scim_id.as_bytes()).collect();
    format!("/Users/{}", escaped.replace('+', "%20"))
}

struct Timer(Instant);

impl Timer {
    fn start() -> Self {
        Self(Instant::now())
    }

    fn step(&self, kind: TestStepKind, status: StepStatus, detail: impl Into<String>) -> TestStep {
        TestStep {
            kind,
            status,
            detail: detail.into(),
            millis: u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

fn failed(call: &CallFailure) -> String {
    match call.failure.status {
        Some(status) => format!("HTTP {status}: {}", call.failure.detail),
        None => call.failure.detail.clone(),
    }
}

/// Runs the steps in order, stopping at the first failure; returns what discovery found
/// when every step passed.
async fn run_test(
    settings: &TargetSettings,
    secrets: &TargetSecrets,
    steps: &mut Vec<TestStep>,
) -> Option<Discovery> {
    // Reach: any HTTP answer proves DNS, TCP and TLS.
    let timer = Timer::start();
    let client = match ScimClient::new(settings, secrets) {
        Ok(client) => client,
        Err(e) => {
            steps.push(timer.step(TestStepKind::Reach, StepStatus::Failed, e.0));
            return None;
        }
    };
    match client.probe("/ServiceProviderConfig").await {
        Ok(status) => {
            let transport = if settings.base_url.starts_with("https://") {
                "over TLS"
            } else {
                "over plain http"
            };
            steps.push(timer.step(
                TestStepKind::Reach,
                StepStatus::Passed,
                format!("the target answered {transport} (HTTP {status})"),
            ));
        }
        Err(call) => {
            steps.push(timer.step(TestStepKind::Reach, StepStatus::Failed, failed(&call)));
            return None;
        }
    }

    // Authenticate: a token for OAuth2, then a request that needs the credentials.
    let timer = Timer::start();
    if let TargetAuth::OAuth2 { .. } = settings.auth
        && let Err(call) = client.authorization().await
    {
        steps.push(timer.step(
            TestStepKind::Authenticate,
            StepStatus::Failed,
            failed(&call),
        ));
        return None;
    }
    match client.get("/Users?startIndex=1&count=1").await {
        Ok(doc) => {
            let total = doc.get("totalResults").and_then(serde_json::Value::as_u64);
            steps.push(timer.step(
                TestStepKind::Authenticate,
                StepStatus::Passed,
                match total {
                    Some(n) => format!("the credentials were accepted; the target holds {n} users"),
                    None => "the credentials were accepted".to_string(),
                },
            ));
        }
        Err(call) => {
            let detail = match call.class() {
                ErrorClass::Unauthorized => format!(
                    "the target refused the credentials ({}); check the {} and its rights to \
                     read and create users",
                    failed(&call),
                    settings.auth.secret_label()
                ),
                ErrorClass::NotFound => format!(
                    "{}; is {} the SCIM root (for WSO2 it ends in /scim2)?",
                    failed(&call),
                    settings.base_url
                ),
                _ => failed(&call),
            };
            steps.push(timer.step(TestStepKind::Authenticate, StepStatus::Failed, detail));
            return None;
        }
    }

    let timer = Timer::start();
    let config = match client.get("/ServiceProviderConfig").await {
        Ok(doc) => match parse_service_provider_config(&doc) {
            Ok(config) => {
                let yes = |b: bool| if b { "yes" } else { "no" };
                let bulk = if config.bulk_supported {
                    format!(
                        "bulk up to {} operations and {} bytes",
                        config.max_operations, config.max_payload_size
                    )
                } else {
                    "no bulk (users are sent one by one)".to_string()
                };
                let filter = match (config.filter_supported, config.filter_max_results) {
                    (true, Some(max)) => format!("filter up to {max} results"),
                    (true, None) => "filter".to_string(),
                    (false, _) => "no filter (existing users cannot be looked up)".to_string(),
                };
                steps.push(timer.step(
                    TestStepKind::ServiceProviderConfig,
                    StepStatus::Passed,
                    format!(
                        "{bulk}; {filter}; patch: {}; etag: {}",
                        yes(config.patch_supported),
                        yes(config.etag_supported)
                    ),
                ));
                config
            }
            Err(e) => {
                steps.push(timer.step(
                    TestStepKind::ServiceProviderConfig,
                    StepStatus::Failed,
                    e.to_string(),
                ));
                return None;
            }
        },
        Err(call) => {
            steps.push(timer.step(
                TestStepKind::ServiceProviderConfig,
                StepStatus::Failed,
                failed(&call),
            ));
            return None;
        }
    };

    let timer = Timer::start();
    let resource_types = match client.get("/ResourceTypes").await {
        Ok(doc) => match parse_resource_types(&doc) {
            Ok(types) if types.iter().any(|t| t.name.eq_ignore_ascii_case("User")) => {
                let names: Vec<String> = types
                    .iter()
                    .map(|t| match t.extensions.len() {
                        0 => t.name.clone(),
                        1 => format!("{} (1 extension)", t.name),
                        n => format!("{} ({n} extensions)", t.name),
                    })
                    .collect();
                steps.push(timer.step(
                    TestStepKind::ResourceTypes,
                    StepStatus::Passed,
                    names.join(", "),
                ));
                types
            }
            Ok(_) => {
                steps.push(timer.step(
                    TestStepKind::ResourceTypes,
                    StepStatus::Failed,
                    "the target offers no User resource type",
                ));
                return None;
            }
            Err(e) => {
                steps.push(timer.step(
                    TestStepKind::ResourceTypes,
                    StepStatus::Failed,
                    e.to_string(),
                ));
                return None;
            }
        },
        Err(call) => {
            steps.push(timer.step(
                TestStepKind::ResourceTypes,
                StepStatus::Failed,
                failed(&call),
            ));
            return None;
        }
    };

    let timer = Timer::start();
    let schemas = match client.get("/Schemas").await {
        Ok(doc) => match parse_schemas(&doc) {
            Ok(schemas) => {
                let total: usize = schemas.iter().map(|s| s.attributes.len()).sum();
                steps.push(timer.step(
                    TestStepKind::Schemas,
                    StepStatus::Passed,
                    format!("{} schemas with {total} attributes", schemas.len()),
                ));
                schemas
            }
            Err(e) => {
                steps.push(timer.step(TestStepKind::Schemas, StepStatus::Failed, e.to_string()));
                return None;
            }
        },
        Err(call) => {
            steps.push(timer.step(TestStepKind::Schemas, StepStatus::Failed, failed(&call)));
            return None;
        }
    };
    Some(Discovery {
        config,
        resource_types,
        schemas,
    })
}
