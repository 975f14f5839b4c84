//! Live password checks against the legacy identity provider, for users whose export
//! carried no hash: an LDAP simple bind as the user, OAuth2's password grant, Okta's
//! primary authentication and Cognito's `InitiateAuth`. Each check is bounded in time
//! and in number (a flood of logins cannot pile up connections to the legacy
//! provider), follows no redirect (a password goes only to the address configured),
//! and reports failures in words that quote no value: not the password, not the
//! secret, not the user name.

use base64::{Engine, engine::general_purpose::STANDARD};
use domain::{
    legacy::{LegacyLogin, LegacyOutcome, LegacySettings},
    password_service::Secret,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::{sync::Arc, time::Duration};
use tokio::sync::Semaphore;

/// Live checks under way at once; beyond, a login is answered "try again".
pub const MAX_LIVE_CHECKS: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// WSO2's waiting page gives up after 20 s; a check must end well before.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer larger than this is not read (a token response is a few kilobytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct LegacyClient {
    /// `None` when the client could not be built: every HTTP check then says so (a
    /// default client would follow redirects, and a password with them).
    http: Option<reqwest::Client>,
    running: Arc<Semaphore>,
}

impl LegacyClient {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CHECK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok();
        Self {
            http,
            running: Arc::new(Semaphore::new(MAX_LIVE_CHECKS)),
        }
    }

    /// Checks a password; `None` when too many checks are under way.
    pub async fn check(
        &self,
        settings: &LegacySettings,
        secret: Option<&Secret>,
        login: &LegacyLogin,
        password: &Secret,
    ) -> Option<LegacyOutcome> {
        let _permit = self.running.clone().try_acquire_owned().ok()?;
        // An empty password would make an LDAP bind anonymous, which succeeds.
        if password.is_empty() {
            return Some(LegacyOutcome::Invalid);
        }
        Some(self.ask(settings, secret, login, password).await)
    }

    fn http(&self) -> Result<&reqwest::Client, LegacyOutcome> {
        self.http.as_ref().ok_or_else(|| {
            LegacyOutcome::Unavailable("Ferry's HTTP client could not be built".into())
        })
    }

    async fn ask(
        &self,
        settings: &LegacySettings,
        secret: Option<&Secret>,
        login: &LegacyLogin,
        password: &Secret,
    ) -> LegacyOutcome {
        match settings {
            LegacySettings::Ldap {
                url,
                dn_template,
                starttls,
            } => {
                let Some(dn) = login.bind_dn(dn_template.as_deref()) else {
                    return LegacyOutcome::Unavailable(
                        "the export gave this user no DN and no DN template is set".into(),
                    );
                };
                ldap_bind(url, *starttls, &dn, password).await
            }
            LegacySettings::OAuth2Password {
                token_url,
                client_id,
                scope,
            } => {
                let mut form = vec![
                    ("grant_type", "password"),
                    ("username", login.login.as_str()),
                    ("password", password.expose()),
                    ("client_id", client_id.as_str()),
                ];
                if !scope.is_empty() {
                    form.push(("scope", scope.as_str()));
                }
                if let Some(secret) = secret {
                    form.push(("client_secret", secret.expose()));
                }
                let http = match self.http() {
                    Ok(http) => http,
                    Err(outcome) => return outcome,
                };
                let answer = http.post(token_url).form(&form).send().await;
                oauth2_outcome(read(answer).await)
            }
            LegacySettings::Okta { org_url } => {
                let http = match self.http() {
                    Ok(http) => http,
                    Err(outcome) => return outcome,
                };
                let answer = http
                    .post(format!("{org_url}/api/v1/authn"))
                    .header(reqwest::header::ACCEPT, "application/json")
                    .json(&json!({"username": login.login, "password": password.expose()}))
                    .send()
                    .await;
                okta_outcome(read(answer).await)
            }
            LegacySettings::Cognito { client_id, .. } => {
                let mut parameters =
                    json!({"USERNAME": login.login, "PASSWORD": password.expose()});
                if let Some(secret) = secret {
                    parameters["SECRET_HASH"] = secret_hash(secret, &login.login, client_id).into();
                }
                let http = match self.http() {
                    Ok(http) => http,
                    Err(outcome) => return outcome,
                };
                let answer = http
                    .post(settings.destination())
                    .header("Content-Type", "application/x-amz-json-1.1")
                    .header(
                        "X-Amz-Target",
                        "AWSCognitoIdentityProviderService.InitiateAuth",
                    )
                    .body(
                        json!({
                            "AuthFlow": "USER_PASSWORD_AUTH",
                            "ClientId": client_id,
                            "AuthParameters": parameters,
                        })
                        .to_string(),
                    )
                    .send()
                    .await;
                cognito_outcome(read(answer).await)
            }
        }
    }

    /// Asks about a made-up user and password; a working connection refuses them.
    pub async fn probe(&self, settings: &LegacySettings, secret: Option<&Secret>) -> LegacyOutcome {
        let made_up = format!("ferry-connection-test-{}", uuid::Uuid::now_v7().simple());
        let login = LegacyLogin {
            login: made_up.clone(),
            dn: Some(format!("cn={made_up}")),
        };
        let password = Secret::new(uuid::Uuid::now_v7().simple().to_string());
        self.ask(settings, secret, &login, &password).await
    }
}

impl Default for LegacyClient {
    fn default() -> Self {
        Self::new()
    }
}

async fn ldap_bind(url: &str, starttls: bool, dn: &str, password: &Secret) -> LegacyOutcome {
    use ldap3::{LdapConnAsync, LdapConnSettings};
    let settings = LdapConnSettings::new()
        .set_conn_timeout(CONNECT_TIMEOUT)
        .set_starttls(starttls);
    let (conn, mut ldap) = match LdapConnAsync::with_settings(settings, url).await {
        Ok(pair) => pair,
        Err(e) => return LegacyOutcome::Unavailable(ldap_error(&e)),
    };
    ldap3::drive!(conn);
    let bound = ldap
        .with_timeout(CHECK_TIMEOUT)
        .simple_bind(dn, password.expose())
        .await;
    let _ = ldap.unbind().await;
    match bound {
        Ok(result) => match result.rc {
            0 => LegacyOutcome::Valid,
            // invalidCredentials, and noSuchObject from directories that say so
            // for an unknown DN; unwillingToPerform for a locked or disabled account.
            49 | 32 | 53 => LegacyOutcome::Invalid,
            rc => LegacyOutcome::Unavailable(format!("the directory answered result code {rc}")),
        },
        Err(e) => LegacyOutcome::Unavailable(ldap_error(&e)),
    }
}

/// The kind of an LDAP failure, without the DN or anything else it may quote.
fn ldap_error(e: &ldap3::LdapError) -> String {
    use ldap3::LdapError as E;
    match e {
        E::Io { .. } => "the directory could not be reached".into(),
        E::Timeout { .. } => "the directory did not answer in time".into(),
        E::UrlParsing { .. } | E::UnknownScheme(_) => "the directory's address is not valid".into(),
        E::Rustls { .. } | E::DNSName { .. } => "the TLS connection to the directory failed".into(),
        _ => "the directory's answer could not be read".into(),
    }
}

/// The status and JSON body of an answer, or why there is none.
async fn read(answer: reqwest::Result<reqwest::Response>) -> Result<(u16, Value), String> {
    let response = answer.map_err(|e| {
        if e.is_timeout() {
            "the identity provider did not answer in time".to_string()
        } else if e.is_connect() {
            "the identity provider could not be reached".to_string()
        } else {
            "the request to the identity provider failed".to_string()
        }
    })?;
    let status = response.status().as_u16();
    if (300..400).contains(&status) {
        return Err(format!(
            "the identity provider answered a redirect ({status}); enter the address it redirects to"
        ));
    }
    if status == 429 {
        return Err("the identity provider is rate-limiting Ferry (429)".into());
    }
    let mut body = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "the identity provider's answer broke off".to_string())?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err("the identity provider's answer is too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// A code from an answer, kept only when it looks like one (never a value).
fn code(value: &Value) -> String {
    value
        .as_str()
        .filter(|c| {
            c.len() <= 64
                && c.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-#".contains(c))
        })
        .unwrap_or("none")
        .to_string()
}

fn oauth2_outcome(answer: Result<(u16, Value), String>) -> LegacyOutcome {
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(why) => return LegacyOutcome::Unavailable(why),
    };
    if status == 200 && body.get("access_token").is_some() {
        return LegacyOutcome::Valid;
    }
    let error = code(&body["error"]);
    if (400..500).contains(&status) && error == "invalid_grant" {
        // Entra ID accepts the password, then asks for a second factor (AADSTS50076,
        // 50079) or a new password: the password itself was right.
        let codes: Vec<i64> = body["error_codes"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if codes.iter().any(|c| matches!(c, 50076 | 50079 | 50158)) {
            return LegacyOutcome::Valid;
        }
        // Auth0 answers a wrong password with 403, Keycloak with 401, others 400.
        return LegacyOutcome::Invalid;
    }
    LegacyOutcome::Unavailable(format!(
        "the token endpoint answered {status} (error: {error})"
    ))
}

fn okta_outcome(answer: Result<(u16, Value), String>) -> LegacyOutcome {
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(why) => return LegacyOutcome::Unavailable(why),
    };
    match (status, body["status"].as_str()) {
        // The password was accepted; Okta would next ask for a factor or a new one.
        (
            200,
            Some(
                "SUCCESS" | "MFA_REQUIRED" | "MFA_ENROLL" | "MFA_CHALLENGE" | "PASSWORD_WARN"
                | "PASSWORD_EXPIRED",
            ),
        ) => LegacyOutcome::Valid,
        (200, Some("LOCKED_OUT")) => LegacyOutcome::Invalid,
        (401, _) => LegacyOutcome::Invalid,
        (status, _) => LegacyOutcome::Unavailable(format!(
            "Okta answered {status} ({})",
            code(&body["errorCode"])
        )),
    }
}

fn cognito_outcome(answer: Result<(u16, Value), String>) -> LegacyOutcome {
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(why) => return LegacyOutcome::Unavailable(why),
    };
    if status == 200
        && (body.get("AuthenticationResult").is_some() || body.get("ChallengeName").is_some())
    {
        return LegacyOutcome::Valid;
    }
    let kind = code(&body["__type"]);
    let kind = kind.rsplit('#').next().unwrap_or_default();
    match kind {
        "NotAuthorizedException"
        | "UserNotFoundException"
        | "PasswordResetRequiredException"
        | "UserNotConfirmedException" => LegacyOutcome::Invalid,
        kind => LegacyOutcome::Unavailable(format!("Cognito answered {status} ({kind})")),
    }
}

/// Cognito's `SECRET_HASH`: HMAC-SHA256 of the user name and client id under the
/// client secret, in Base64.
fn secret_hash(secret: &Secret, username: &str, client_id: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    mac.update(client_id.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_each_provider_means_them() {
        let ok = |status: u16, body: Value| Ok((status, body));
        assert_eq!(
            oauth2_outcome(ok(200, json!({"access_token": "t"}))),
            LegacyOutcome::Valid
        );
        assert_eq!(
            oauth2_outcome(ok(403, json!({"error": "invalid_grant"}))),
            LegacyOutcome::Invalid
        );
        assert_eq!(
            oauth2_outcome(ok(
                400,
                json!({"error": "invalid_grant", "error_codes": [50076]})
            )),
            LegacyOutcome::Valid
        );
        assert!(matches!(
            oauth2_outcome(ok(401, json!({"error": "invalid_client"}))),
            LegacyOutcome::Unavailable(why) if why.contains("invalid_client")
        ));
        assert_eq!(
            okta_outcome(ok(200, json!({"status": "MFA_REQUIRED"}))),
            LegacyOutcome::Valid
        );
        assert_eq!(okta_outcome(ok(401, json!({}))), LegacyOutcome::Invalid);
        assert_eq!(
            cognito_outcome(ok(
                400,
                json!({"__type": "com.amazonaws#NotAuthorizedException"})
            )),
            LegacyOutcome::Invalid
        );
        assert!(matches!(
            cognito_outcome(ok(400, json!({"__type": "ResourceNotFoundException"}))),
            LegacyOutcome::Unavailable(why) if why.contains("ResourceNotFound")
        ));
        // A code that is really a value is not repeated.
        assert_eq!(code(&json!("ada@example.org is locked")), "none");
    }

    /// The value Python's `hmac` and `base64` give for the same three strings.
    #[test]
    fn the_secret_hash_is_an_hmac_of_name_and_client() {
        assert_eq!(
            secret_hash(&Secret::new("s3cret".into()), "ada", "client"),
            "IhZJKaHnrsHeuInjApEXcZIZhebNVsKqBUkU0TSKACQ="
        );
    }
}
