//! JSON exports into normalized users: generic JSON objects (flat keys matched like CSV
//! columns), Auth0 (the user-export NDJSON and the bulk-import JSON with
//! `password_hash` / `custom_password_hash`), Keycloak realm exports (`users` with
//! `credentials`), and Firebase `auth:export` (with the project's scrypt parameters).

use super::{
    fields::{Field, NOT_A_FLAG, NOT_A_TIME, apply, assign, finish, parse_bool},
    json_stream::{self, JsonLayout},
    record::{Email, Location, NormalizedUser, Phone, RecordError, UserStatus, parse_time},
};
use crate::passwords::{self, Encoding, FirebaseParams, SaltPosition};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::{collections::BTreeMap, fmt, io::BufRead};

/// A user object's fields, in the map the record keeps them in.
type Object = BTreeMap<String, Value>;

/// One element of an export: a user object's fields, read straight into the map the
/// record keeps (no `Value` tree to take apart and copy), or anything else, which is
/// not a user.
enum Element {
    Object(Object),
    Other,
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Any;
        impl<'de> Visitor<'de> for Any {
            type Value = Element;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
                // Collected, then built in one go: inserting key by key compared each
                // key with every key of its node. As in a `Value`, a key given twice
                // keeps its last value.
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(field) = map.next_entry::<String, Value>()? {
                    fields.push(field);
                }
                Ok(Element::Object(fields.into_iter().collect()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Element::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element, E> {
                Ok(Element::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element, E> {
                Ok(Element::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element, E> {
                Ok(Element::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element, E> {
                Ok(Element::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Element, E> {
                Ok(Element::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
                Ok(Element::Other)
            }
        }
        deserializer.deserialize_any(Any)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonProfile {
    Generic,
    Auth0,
    Keycloak,
    /// Reading password hashes needs the project's parameters.
    Firebase(FirebaseParams),
}

impl JsonProfile {
    /// Keys that hold secrets: read into the credential, never kept as attributes.
    fn secret_keys(&self) -> &'static [&'static str] {
        match self {
            JsonProfile::Generic => &["password_hash", "passwordHash", "password"],
            JsonProfile::Auth0 => &["password_hash", "custom_password_hash", "password"],
            JsonProfile::Keycloak => &["credentials"],
            JsonProfile::Firebase(_) => &["passwordHash", "salt"],
        }
    }
}

/// Reads every user of a JSON export, calling `each` with the user or the reason it
/// could not be read. Returns `Err` only when the document itself cannot be read on.
pub fn read<R: BufRead>(
    input: R,
    layout: JsonLayout,
    profile: &JsonProfile,
    each: &mut dyn FnMut(Result<NormalizedUser, RecordError>),
) -> Result<(), RecordError> {
    read_located(input, layout, profile, &mut |item, _| each(item))
}

/// What a reader yields for one element: a user or why not.
pub type UserResult = Result<NormalizedUser, RecordError>;

/// As [`read`], with where each user was found (errors carry their own location).
pub fn read_located<R: BufRead>(
    input: R,
    layout: JsonLayout,
    profile: &JsonProfile,
    each: &mut dyn FnMut(UserResult, Option<&Location>),
) -> Result<(), RecordError> {
    json_stream::for_each(input, layout, &mut |item| match item {
        Ok((element, at)) => {
            let result = user(element, at.clone(), profile);
            each(result, Some(&at));
        }
        Err(err) => each(Err(err), None),
    })
}

type FieldResult = Result<(), (String, String)>;

fn fail(field: &str, reason: impl Into<String>) -> (String, String) {
    (field.to_string(), reason.into())
}

fn user(
    element: Element,
    at: Location,
    profile: &JsonProfile,
) -> Result<NormalizedUser, RecordError> {
    let Element::Object(mut object) = element else {
        return Err(RecordError::new(at, None, "not a JSON object"));
    };
    let mut user = NormalizedUser::default();
    // A generic export may name its hash column freely; the mapping says which it was.
    let mut hash_key = None;
    let mapped = match profile {
        JsonProfile::Generic => generic(&mut user, &object).map(|key| hash_key = key),
        JsonProfile::Auth0 => auth0(&mut user, &object),
        JsonProfile::Keycloak => keycloak(&mut user, &object),
        JsonProfile::Firebase(params) => firebase(&mut user, &object, params),
    };
    mapped.map_err(|(field, reason)| RecordError::new(at.clone(), Some(&field), reason))?;
    // The source's fields are kept as attributes, the very map they were read into,
    // less the secrets read into the credential; the flags the mapping left for
    // `finish` stay.
    for key in profile
        .secret_keys()
        .iter()
        .copied()
        .chain(hash_key.as_deref())
    {
        object.remove(key);
    }
    object.retain(|_, value| !value.is_null());
    let flags = std::mem::replace(&mut user.attributes, object);
    user.attributes.extend(flags);
    finish(&mut user).map_err(|reason| RecordError::new(at, None, reason))?;
    Ok(user)
}

fn text(object: &Object, key: &str) -> Option<String> {
    match object.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A true/false field; anything else is recorded as unreadable and read as absent.
fn flag(user: &mut NormalizedUser, object: &Object, key: &str) -> Option<bool> {
    match object.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(text)) if parse_bool(text.trim()).is_some() => parse_bool(text.trim()),
        Some(_) => {
            user.unreadable(key, NOT_A_FLAG);
            None
        }
    }
}

/// A date-and-time field; one in no known form is recorded as unreadable.
fn time(
    user: &mut NormalizedUser,
    object: &Object,
    key: &str,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = match object.get(key)? {
        Value::Null => return None,
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => {
            user.unreadable(key, NOT_A_TIME);
            return None;
        }
    };
    let at = parse_time(&value);
    if at.is_none() {
        user.unreadable(key, NOT_A_TIME);
    }
    at
}

/// A credential read from an export, or an unusable one recorded with its reason: a
/// user is never refused for the form of its password hash.
fn credential(
    user: &mut NormalizedUser,
    key: &str,
    read: Result<passwords::Credential, String>,
) -> Option<passwords::Credential> {
    match read {
        Ok(credential) => Some(credential),
        Err(reason) => {
            user.unreadable(key, reason.clone());
            Some(passwords::Credential::Unusable { reason })
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn primary_email(user: &mut NormalizedUser, value: Option<String>, verified: Option<bool>) {
    if let Some(value) = value {
        user.emails.insert(
            0,
            Email {
                value,
                primary: true,
                verified,
            },
        );
    }
}

/// Maps a generic user object by its keys' names; returns the key the password hash
/// was read from, if any.
fn generic(user: &mut NormalizedUser, object: &Object) -> Result<Option<String>, (String, String)> {
    let keys: Vec<String> = object.keys().cloned().collect();
    let mut hash_key = None;
    for (key, field) in keys.iter().zip(assign(&keys)) {
        let Some(field) = field else { continue };
        if field == Field::PasswordHash {
            hash_key = Some(key.clone());
        }
        match (&object[key], field) {
            (Value::Null, _) => {}
            (Value::Array(_), Field::Groups) => user.groups = strings(object.get(key)),
            (Value::Array(_), Field::Roles) => user.roles = strings(object.get(key)),
            (Value::String(s), _) if s.trim().is_empty() => {}
            (Value::String(s), _) => apply(user, field, key, s.trim()),
            (Value::Number(n), _) => apply(user, field, key, &n.to_string()),
            (Value::Bool(b), _) => apply(user, field, key, &b.to_string()),
            // Only a field that identifies the user refuses it.
            (other, Field::Id | Field::Username | Field::Email) => {
                return Err(fail(key, format!("expected text, found {}", kind(other))));
            }
            (other, _) => user.unreadable(key, format!("expected text, found {}", kind(other))),
        }
    }
    Ok(hash_key)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn auth0(user: &mut NormalizedUser, object: &Object) -> FieldResult {
    user.source_id = text(object, "user_id").ok_or_else(|| fail("user_id", "is missing"))?;
    let verified = flag(user, object, "email_verified");
    primary_email(user, text(object, "email"), verified);
    user.username = text(object, "username");
    user.given_name = text(object, "given_name");
    user.family_name = text(object, "family_name");
    user.display_name = text(object, "name");
    if let Some(phone) = text(object, "phone_number") {
        user.phones.push(Phone {
            value: phone,
            kind: None,
            primary: true,
        });
    }
    user.created_at = time(user, object, "created_at");
    user.last_login_at = time(user, object, "last_login");
    user.status = if flag(user, object, "blocked") == Some(true) {
        UserStatus::Disabled
    } else {
        UserStatus::Active
    };
    if let Some(meta) = object.get("app_metadata").and_then(Value::as_object) {
        let authorization = meta.get("authorization").and_then(Value::as_object);
        user.roles = strings(meta.get("roles"));
        user.roles
            .extend(strings(authorization.and_then(|a| a.get("roles"))));
        user.groups = strings(meta.get("groups"));
        user.groups
            .extend(strings(authorization.and_then(|a| a.get("groups"))));
    }
    if let Some(hash) = text(object, "password_hash") {
        let read = passwords::parse(&hash).map_err(|e| e.to_string());
        user.credential = credential(user, "password_hash", read);
    }
    if let Some(custom) = object.get("custom_password_hash") {
        let read = auth0_custom_hash(custom);
        user.credential = credential(user, "custom_password_hash", read);
    }
    Ok(())
}

/// Auth0's `custom_password_hash`: `{algorithm, hash: {value, encoding}, salt: {value,
/// encoding, position}}`. The salt is a sibling of `hash` in Auth0's schema; it is
/// also taken from inside `hash`, where some tools put it.
fn auth0_custom_hash(custom: &Value) -> Result<passwords::Credential, String> {
    let algorithm = custom["algorithm"].as_str().ok_or("algorithm is missing")?;
    let hash = &custom["hash"];
    let value = hash["value"].as_str().ok_or("hash.value is missing")?;
    let encoding = |v: &Value, default: Encoding| match v.as_str() {
        None => Ok(default),
        Some(name) => Encoding::parse(name).ok_or(format!(
            "{} is not read",
            passwords::named("encoding", name)
        )),
    };
    match algorithm {
        "bcrypt" | "argon2" | "pbkdf2" | "ldap" => {
            passwords::parse(value).map_err(|e| e.to_string())
        }
        "md5" | "sha1" | "sha256" | "sha512" => {
            let hash_bytes = encoding(&hash["encoding"], Encoding::Hex)?
                .decode("hash", value)
                .map_err(|e| e.to_string())?;
            let salt = if custom["salt"].is_object() {
                &custom["salt"]
            } else {
                &hash["salt"]
            };
            let salt_bytes = match salt["value"].as_str() {
                None => Vec::new(),
                Some(text) => encoding(&salt["encoding"], Encoding::Utf8)?
                    .decode("salt", text)
                    .map_err(|e| e.to_string())?,
            };
            let position = match salt["position"].as_str() {
                Some("suffix") => SaltPosition::Suffix,
                _ => SaltPosition::Prefix,
            };
            passwords::salted_digest(algorithm, hash_bytes, salt_bytes, position)
                .map_err(|e| e.to_string())
        }
        other => Err(format!(
            "{} is not supported",
            passwords::named("algorithm", other)
        )),
    }
}

fn keycloak(user: &mut NormalizedUser, object: &Object) -> FieldResult {
    user.source_id = text(object, "id").ok_or_else(|| fail("id", "is missing"))?;
    user.username = text(object, "username");
    let verified = flag(user, object, "emailVerified");
    primary_email(user, text(object, "email"), verified);
    user.given_name = text(object, "firstName");
    user.family_name = text(object, "lastName");
    user.status = match flag(user, object, "enabled") {
        Some(true) => UserStatus::Active,
        Some(false) => UserStatus::Disabled,
        None => UserStatus::Unknown,
    };
    user.created_at = time(user, object, "createdTimestamp");
    let attributes = object.get("attributes").and_then(Value::as_object);
    for key in ["phoneNumber", "phone", "mobile"] {
        if let Some(phone) = strings(attributes.and_then(|a| a.get(key)))
            .into_iter()
            .next()
        {
            user.phones.push(Phone {
                value: phone,
                kind: None,
                primary: user.phones.is_empty(),
            });
        }
    }
    user.groups = strings(object.get("groups"));
    user.roles = strings(object.get("realmRoles"));
    if let Some(clients) = object.get("clientRoles").and_then(Value::as_object) {
        for (client, roles) in clients {
            user.roles.extend(
                strings(Some(roles))
                    .into_iter()
                    .map(|r| format!("{client}:{r}")),
            );
        }
    }
    let password = object
        .get("credentials")
        .and_then(Value::as_array)
        .and_then(|list| list.iter().find(|c| c["type"] == "password"));
    if let Some(stored) = password {
        let read = match (
            stored["secretData"].as_str(),
            stored["credentialData"].as_str(),
        ) {
            (Some(secret), Some(data)) => {
                passwords::keycloak(secret, data).map_err(|e| e.to_string())
            }
            (None, _) => Err("secretData is missing".to_string()),
            (_, None) => Err("credentialData is missing".to_string()),
        };
        user.credential = credential(user, "credentials", read);
    }
    Ok(())
}

fn firebase(user: &mut NormalizedUser, object: &Object, params: &FirebaseParams) -> FieldResult {
    user.source_id = text(object, "localId").ok_or_else(|| fail("localId", "is missing"))?;
    let verified = flag(user, object, "emailVerified");
    primary_email(user, text(object, "email"), verified);
    user.display_name = text(object, "displayName");
    if let Some(phone) = text(object, "phoneNumber") {
        user.phones.push(Phone {
            value: phone,
            kind: None,
            primary: true,
        });
    }
    user.status = if flag(user, object, "disabled") == Some(true) {
        UserStatus::Disabled
    } else {
        UserStatus::Active
    };
    user.created_at = time(user, object, "createdAt");
    user.last_login_at = time(user, object, "lastSignedInAt");
    if let Some(hash) = text(object, "passwordHash") {
        let read = match text(object, "salt") {
            Some(salt) => {
                passwords::firebase(&hash, &salt, params.clone()).map_err(|e| e.to_string())
            }
            None => Err("the salt is missing beside passwordHash".to_string()),
        };
        user.credential = credential(user, "passwordHash", read);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
