//! `ferry gen-export`: synthetic exports in every supported format, for benchmarks and
//! demos. People, groups, sign-in times and password hashes are realistic, and so are
//! their flaws: a few duplicate, invalid or missing emails, unusable phone numbers and
//! user names that differ only by case. The same seed gives the same people; times are
//! relative to the moment of generation.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use clap::ValueEnum;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};
use std::io::{self, Write};

/// The export formats the generator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Generic CSV with a mix of password hashes.
    Csv,
    /// A generic JSON array with a mix of password hashes.
    Json,
    /// Okta's user report (CSV).
    Okta,
    /// AWS Cognito's user CSV.
    Cognito,
    /// Microsoft Entra ID's bulk user download (CSV).
    EntraId,
    /// Auth0's user export (NDJSON).
    Auth0,
    /// A Keycloak realm export with PBKDF2 credentials.
    Keycloak,
    /// An OpenLDAP directory (LDIF) with salted SHA-2 passwords and group entries.
    Ldif,
}

/// How many distinct passwords the generated hashes stand for: user hashes are made
/// from `ferry-demo-0` … `ferry-demo-15`, so a demo can sign in with them.
pub const DEMO_PASSWORDS: usize = 16;

const GIVEN: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Linus",
    "Frances",
    "Dennis",
    "Radia",
    "Ken",
    "Sophie",
    "John",
    "Katherine",
    "Tim",
    "Hedy",
    "Niklaus",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "Aiko",
    "Chidi",
    "Priya",
    "Mateo",
    "Amélie",
    "Jürgen",
    "Ingrid",
    "Omar",
    "Yuki",
    "Fatima",
    "Liam",
    "Noor",
    "Elena",
    "Kwame",
    "Mei",
    "Raúl",
    "Anya",
    "Tomás",
];
const FAMILY: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Torvalds",
    "Allen",
    "Ritchie",
    "Perlman",
    "Thompson",
    "Wilson",
    "Backus",
    "Johnson",
    "Berners-Lee",
    "Lamarr",
    "Wirth",
    "Müller",
    "García",
    "Kowalski",
    "Nørgaard",
    "Tanaka",
    "Okafor",
    "Sharma",
    "Rossi",
    "Dubois",
    "O'Brien",
    "Nguyen",
    "Haddad",
    "Mensah",
    "Chen",
    "Ivanova",
    "Silva",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example",
    "example.co.uk",
];
const GROUPS: &[&str] = &[
    "engineering",
    "sales",
    "support",
    "finance",
    "marketing",
    "admins",
    "contractors",
    "legal",
    "hr",
    "operations",
    "partners",
    "beta-testers",
];
const DEPARTMENTS: &[&str] = &["R&D", "Sales", "Support", "Finance", "Marketing", "Legal"];

/// One synthetic person.
struct Person {
    uuid: String,
    username: String,
    given: &'static str,
    family: &'static str,
    email: String,
    email_verified: bool,
    phone: Option<String>,
    groups: Vec<&'static str>,
    created: DateTime<Utc>,
    last_login: Option<DateTime<Utc>>,
    active: bool,
    department: &'static str,
    /// Which demo password the credential hashes.
    password: usize,
    has_password: bool,
}

/// Hashes made once and shared: slow algorithms cannot be run a million times for a
/// benchmark file, and a pool per demo password is as realistic to a reader.
#[derive(Default)]
struct Pool {
    bcrypt: Vec<String>,
    argon2: Vec<String>,
    pbkdf2_phc: Vec<String>,
    /// Keycloak's `secretData` and `credentialData` JSON strings.
    keycloak: Vec<(String, String)>,
}

impl Pool {
    fn new(rng: &mut StdRng, size: usize) -> anyhow::Result<Self> {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(19_456, 2, 1, None)
                .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?,
        );
        let mut pool = Pool {
            bcrypt: Vec::new(),
            argon2: Vec::new(),
            pbkdf2_phc: Vec::new(),
            keycloak: Vec::new(),
        };
        for i in 0..size {
            let password = demo_password(i);
            let salt: [u8; 16] = rng.random();
            pool.bcrypt.push(
                bcrypt::hash_with_salt(&password, 10, salt)
                    .map_err(|e| anyhow::anyhow!("bcrypt: {e}"))?
                    .format_for_version(bcrypt::Version::TwoB),
            );
            let salt =
                SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("argon2 salt: {e}"))?;
            pool.argon2.push(
                argon
                    .hash_password(password.as_bytes(), &salt)
                    .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
                    .to_string(),
            );
            let salt: [u8; 16] = rng.random();
            let mut hash = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, 27_500, &mut hash);
            let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
            pool.pbkdf2_phc.push(format!(
                "$pbkdf2-sha256$i=27500,l=32${}${}",
                b64(&salt).trim_end_matches('='),
                b64(&hash).trim_end_matches('=')
            ));
            let mut hash = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), &salt, 27_500, &mut hash);
            pool.keycloak.push((
                json!({"value": b64(&hash), "salt": b64(&salt), "additionalParameters": {}})
                    .to_string(),
                json!({"hashIterations": 27500, "algorithm": "pbkdf2-sha512", "additionalParameters": {}})
                    .to_string(),
            ));
        }
        Ok(pool)
    }
}

pub fn demo_password(i: usize) -> String {
    format!("ferry-demo-{i}")
}

/// Folds a name into the ASCII letters a user name or mailbox would use.
fn ascii(name: &str) -> String {
    name.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' => Some(c),
            'à' | 'á' | 'â' | 'ä' | 'å' => Some('a'),
            'é' | 'è' | 'ë' | 'ê' => Some('e'),
            'í' | 'ï' => Some('i'),
            'ó' | 'ö' | 'ø' => Some('o'),
            'ú' | 'ü' => Some('u'),
            'ł' => Some('l'),
            'ñ' => Some('n'),
            'ç' => Some('c'),
            _ => None,
        })
        .collect()
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

struct People {
    rng: StdRng,
    now: DateTime<Utc>,
    n: u64,
    /// How many demo passwords there are hashes for.
    passwords: usize,
    /// Recent emails and user names, to copy from for duplicates.
    recent_emails: Vec<String>,
    recent_usernames: Vec<String>,
}

impl People {
    fn new(seed: u64, users: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            now: Utc::now(),
            n: 0,
            passwords: DEMO_PASSWORDS
                .min(usize::try_from(users).unwrap_or(usize::MAX))
                .max(1),
            recent_emails: Vec::new(),
            recent_usernames: Vec::new(),
        }
    }

    fn remember(list: &mut Vec<String>, value: &str) {
        if list.len() < 64 {
            list.push(value.to_string());
        } else {
            let i = list.len() - 1;
            list[i] = value.to_string();
            list.rotate_right(1);
        }
    }

    /// A time of day weighted toward office hours, which is when people sign in.
    fn sign_in_time(&mut self, ago_days: i64) -> DateTime<Utc> {
        let rng = &mut self.rng;
        let hour = if rng.random_bool(0.8) {
            rng.random_range(7..19)
        } else {
            rng.random_range(0..24)
        };
        let day = (self.now - Duration::days(ago_days))
            .date_naive()
            .and_hms_opt(hour, rng.random_range(0..60), rng.random_range(0..60))
            .map(|t| t.and_utc())
            .unwrap_or(self.now);
        day.min(self.now)
    }

    fn next(&mut self) -> Person {
        self.n += 1;
        let n = self.n;
        let given = pick(&mut self.rng, GIVEN);
        let family = pick(&mut self.rng, FAMILY);
        let mut username = format!("{}.{}{n}", ascii(given), ascii(family));
        // SCIM user names are unique regardless of case; some legacy stores are not.
        if self.rng.random_bool(0.002)
            && let Some(earlier) = self.recent_usernames.first()
        {
            username = earlier.to_uppercase();
        }
        let domain = pick(&mut self.rng, DOMAINS);
        let roll: f64 = self.rng.random();
        let email = if roll < 0.01 && !self.recent_emails.is_empty() {
            let i = self.rng.random_range(0..self.recent_emails.len());
            self.recent_emails[i].clone()
        } else if roll < 0.015 {
            format!("{}.{}.{domain}", ascii(given), ascii(family))
        } else if roll < 0.018 {
            String::new()
        } else {
            format!("{}@{domain}", username.to_lowercase())
        };
        Self::remember(&mut self.recent_emails, &email);
        Self::remember(&mut self.recent_usernames, &username);
        let phone = match self.rng.random_range(0..100) {
            0..40 => None,
            40..42 => Some("call the front desk".to_string()),
            42..70 => Some(format!(
                "+1 415 555 {:04}",
                self.rng.random_range(0..10_000)
            )),
            _ => Some(format!(
                "+44 20 7946 {:04}",
                self.rng.random_range(0..10_000)
            )),
        };
        let group_count = match self.rng.random_range(0..100) {
            0..15 => 0,
            15..70 => 1,
            70..92 => 2,
            _ => 3,
        };
        let mut groups: Vec<&'static str> = Vec::with_capacity(group_count);
        while groups.len() < group_count {
            let group = pick(&mut self.rng, GROUPS);
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        let created_days = self.rng.random_range(1..6 * 365);
        let created = self.sign_in_time(created_days);
        let last_login = match self.rng.random_range(0..100) {
            0..12 => None,
            12..62 => Some(self.rng.random_range(0..30)),
            62..77 => Some(self.rng.random_range(30..90)),
            77..90 => Some(self.rng.random_range(90..365)),
            _ => Some(self.rng.random_range(365..6 * 365)),
        }
        .map(|days: i64| self.sign_in_time(days.min(created_days)));
        let uuid = uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string();
        Person {
            uuid,
            username,
            given,
            family,
            email,
            email_verified: self.rng.random_bool(0.8),
            phone,
            groups,
            created,
            last_login,
            active: self.rng.random_bool(0.92),
            department: pick(&mut self.rng, DEPARTMENTS),
            password: self.rng.random_range(0..self.passwords),
            has_password: self.rng.random_bool(0.9),
        }
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A salted SHA-2 hash in LDAP form, made per user: it is fast enough.
fn ssha(rng: &mut StdRng, password: &str, long: bool) -> String {
    let salt: [u8; 8] = rng.random();
    let mut bytes = if long {
        Sha512::new()
            .chain_update(password)
            .chain_update(salt)
            .finalize()
            .to_vec()
    } else {
        Sha256::new()
            .chain_update(password)
            .chain_update(salt)
            .finalize()
            .to_vec()
    };
    bytes.extend_from_slice(&salt);
    let scheme = if long { "SSHA512" } else { "SSHA256" };
    format!("{{{scheme}}}{}", STANDARD.encode(bytes))
}

/// The mixed hash a generic export carries: mostly bcrypt, some argon2id, PBKDF2 and
/// salted SHA-256.
fn mixed_hash(rng: &mut StdRng, pool: &Pool, person: &Person) -> String {
    if !person.has_password {
        return String::new();
    }
    let i = person.password;
    match rng.random_range(0..100) {
        0..45 => pool.bcrypt.get(i).cloned().unwrap_or_default(),
        45..65 => pool.argon2.get(i).cloned().unwrap_or_default(),
        65..85 => pool.pbkdf2_phc.get(i).cloned().unwrap_or_default(),
        _ => ssha(rng, &demo_password(i), false),
    }
}

fn csv_writer<W: Write>(out: W, delimiter: u8) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(out)
}

fn io_err(e: csv::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// Writes `users` synthetic users in `format` to `out`.
pub fn write(
    format: ExportFormat,
    users: u64,
    seed: u64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut people = People::new(seed, users);
    // Only these formats carry slow hashes.
    let pool = match format {
        ExportFormat::Csv | ExportFormat::Json | ExportFormat::Keycloak => {
            let size = people.passwords;
            Pool::new(&mut people.rng, size)?
        }
        _ => Pool::default(),
    };
    match format {
        ExportFormat::Csv => {
            let mut w = csv_writer(&mut *out, b',');
            w.write_record([
                "id",
                "email",
                "email_verified",
                "first_name",
                "last_name",
                "phone",
                "groups",
                "created_at",
                "last_login",
                "status",
                "password_hash",
                "department",
            ])
            .map_err(io_err)?;
            for _ in 0..users {
                let p = people.next();
                let hash = mixed_hash(&mut people.rng, &pool, &p);
                w.write_record([
                    p.uuid.as_str(),
                    &p.email,
                    if p.email_verified { "true" } else { "false" },
                    p.given,
                    p.family,
                    p.phone.as_deref().unwrap_or(""),
                    &p.groups.join(";"),
                    &iso(p.created),
                    &p.last_login.map(iso).unwrap_or_default(),
                    if p.active { "active" } else { "disabled" },
                    &hash,
                    p.department,
                ])
                .map_err(io_err)?;
            }
            w.flush()?;
        }
        ExportFormat::Okta => {
            let mut w = csv_writer(&mut *out, b',');
            w.write_record([
                "Id",
                "Username",
                "First name",
                "Last name",
                "Primary email",
                "Secondary email",
                "Mobile phone",
                "Status",
                "Created",
                "Last login",
            ])
            .map_err(io_err)?;
            for _ in 0..users {
                let p = people.next();
                let id = format!("00u{}", &p.uuid.replace('-', "")[..17]);
                let status = if p.active { "ACTIVE" } else { "SUSPENDED" };
                w.write_record([
                    id.as_str(),
                    &p.username,
                    p.given,
                    p.family,
                    &p.email,
                    "",
                    p.phone.as_deref().unwrap_or(""),
                    status,
                    &iso(p.created),
                    &p.last_login.map(iso).unwrap_or_default(),
                ])
                .map_err(io_err)?;
            }
            w.flush()?;
        }
        ExportFormat::Cognito => {
            let mut w = csv_writer(&mut *out, b',');
            w.write_record([
                "cognito:username",
                "sub",
                "name",
                "given_name",
                "family_name",
                "email",
                "email_verified",
                "phone_number",
                "phone_number_verified",
                "UserStatus",
                "Enabled",
                "UserCreateDate",
            ])
            .map_err(io_err)?;
            for _ in 0..users {
                let p = people.next();
                let status = if p.last_login.is_some() {
                    "CONFIRMED"
                } else {
                    "FORCE_CHANGE_PASSWORD"
                };
                w.write_record([
                    p.username.as_str(),
                    &p.uuid,
                    &format!("{} {}", p.given, p.family),
                    p.given,
                    p.family,
                    &p.email,
                    if p.email_verified { "true" } else { "false" },
                    &p.phone
                        .as_deref()
                        .map(|x| x.replace(' ', ""))
                        .unwrap_or_default(),
                    "false",
                    status,
                    if p.active { "true" } else { "false" },
                    &iso(p.created),
                ])
                .map_err(io_err)?;
            }
            w.flush()?;
        }
        ExportFormat::EntraId => {
            let mut w = csv_writer(&mut *out, b',');
            w.write_record([
                "userPrincipalName",
                "displayName",
                "surname",
                "mail",
                "givenName",
                "objectId",
                "userType",
                "jobTitle",
                "department",
                "accountEnabled",
                "mobilePhone",
                "createdDateTime",
            ])
            .map_err(io_err)?;
            for _ in 0..users {
                let p = people.next();
                w.write_record([
                    format!("{}@contoso.onmicrosoft.com", p.username.to_lowercase()).as_str(),
                    &format!("{} {}", p.given, p.family),
                    p.family,
                    &p.email,
                    p.given,
                    &p.uuid,
                    "Member",
                    "",
                    p.department,
                    if p.active { "True" } else { "False" },
                    p.phone.as_deref().unwrap_or(""),
                    &iso(p.created),
                ])
                .map_err(io_err)?;
            }
            w.flush()?;
        }
        ExportFormat::Json => {
            out.write_all(b"[\n")?;
            for i in 0..users {
                let p = people.next();
                let hash = mixed_hash(&mut people.rng, &pool, &p);
                let mut user = json!({
                    "id": p.uuid,
                    "username": p.username,
                    "email": p.email,
                    "email_verified": p.email_verified,
                    "given_name": p.given,
                    "family_name": p.family,
                    "groups": p.groups,
                    "created_at": iso(p.created),
                    "last_login": p.last_login.map(iso),
                    "status": if p.active { "active" } else { "disabled" },
                    "department": p.department,
                });
                if let Some(phone) = &p.phone {
                    user["phone_number"] = json!(phone);
                }
                if !hash.is_empty() {
                    user["password_hash"] = json!(hash);
                }
                if i > 0 {
                    out.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut *out, &user)?;
            }
            out.write_all(b"\n]\n")?;
        }
        ExportFormat::Auth0 => {
            for _ in 0..users {
                let p = people.next();
                let id = p.uuid.replace('-', "")[..24].to_string();
                let mut user = json!({
                    "user_id": format!("auth0|{id}"),
                    "email": p.email,
                    "email_verified": p.email_verified,
                    "username": p.username,
                    "given_name": p.given,
                    "family_name": p.family,
                    "name": format!("{} {}", p.given, p.family),
                    "nickname": p.username,
                    "created_at": iso(p.created),
                    "updated_at": iso(p.last_login.unwrap_or(p.created)),
                    "logins_count": if p.last_login.is_some() { 1 + id.len() % 40 } else { 0 },
                    "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0", "user_id": id, "isSocial": false}],
                    "app_metadata": {"roles": p.groups},
                    "user_metadata": {"department": p.department},
                });
                if let Some(at) = p.last_login {
                    user["last_login"] = json!(iso(at));
                }
                if let Some(phone) = &p.phone {
                    user["phone_number"] = json!(phone);
                }
                if !p.active {
                    user["blocked"] = json!(true);
                }
                serde_json::to_writer(&mut *out, &user)?;
                out.write_all(b"\n")?;
            }
        }
        ExportFormat::Keycloak => {
            let groups: Vec<_> = GROUPS
                .iter()
                .map(|g| json!({"name": g, "path": format!("/{g}")}))
                .collect();
            writeln!(
                out,
                "{{\"id\":\"bench\",\"realm\":\"bench\",\"enabled\":true,\"groups\":{},\"users\":[",
                serde_json::to_string(&groups)?
            )?;
            for i in 0..users {
                let p = people.next();
                let created = p.created.timestamp_millis();
                let mut user = json!({
                    "id": p.uuid,
                    "createdTimestamp": created,
                    "username": p.username.to_lowercase(),
                    "enabled": p.active,
                    "totp": false,
                    "emailVerified": p.email_verified,
                    "firstName": p.given,
                    "lastName": p.family,
                    "attributes": {"department": [p.department]},
                    "credentials": [],
                    "disableableCredentialTypes": [],
                    "requiredActions": [],
                    "realmRoles": ["default-roles-bench"],
                    "notBefore": 0,
                    "groups": p.groups.iter().map(|g| format!("/{g}")).collect::<Vec<_>>(),
                });
                if !p.email.is_empty() {
                    user["email"] = json!(p.email);
                }
                if let Some(phone) = &p.phone {
                    user["attributes"]["phoneNumber"] = json!([phone]);
                }
                if p.has_password
                    && let Some((secret, data)) = pool.keycloak.get(p.password)
                {
                    user["credentials"] = json!([{
                        "id": format!("c{i}"),
                        "type": "password",
                        "createdDate": created,
                        "secretData": secret,
                        "credentialData": data,
                    }]);
                }
                if i > 0 {
                    out.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut *out, &user)?;
            }
            out.write_all(b"\n]}\n")?;
        }
        ExportFormat::Ldif => write_ldif(&mut people, users, out)?,
    }
    out.flush()?;
    Ok(())
}

fn ldif_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%SZ").to_string()
}

/// Users under `ou=people`, then one `groupOfNames` per group listing its members'
/// DNs, as OpenLDAP's `slapcat` writes them.
fn write_ldif(people: &mut People, users: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    const BASE: &str = "dc=example,dc=org";
    writeln!(
        out,
        "version: 1\n\ndn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n"
    )?;
    let mut members: Vec<Vec<String>> = vec![Vec::new(); GROUPS.len()];
    for _ in 0..users {
        let p = people.next();
        let uid = p.username.to_lowercase();
        let dn = format!("uid={uid},ou=people,{BASE}");
        writeln!(out, "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}")?;
        // Non-ASCII values are written base64-encoded, as RFC 2849 requires.
        let value = |name: &str, text: &str| {
            if text.is_ascii() {
                format!("{name}: {text}\n")
            } else {
                format!("{name}:: {}\n", STANDARD.encode(text))
            }
        };
        out.write_all(value("cn", &format!("{} {}", p.given, p.family)).as_bytes())?;
        out.write_all(value("givenName", p.given).as_bytes())?;
        out.write_all(value("sn", p.family).as_bytes())?;
        if !p.email.is_empty() {
            out.write_all(value("mail", &p.email).as_bytes())?;
        }
        if let Some(phone) = &p.phone {
            writeln!(out, "telephoneNumber: {phone}")?;
        }
        writeln!(
            out,
            "departmentNumber: {}\nentryUUID: {}\ncreateTimestamp: {}",
            p.department,
            p.uuid,
            ldif_time(p.created)
        )?;
        if let Some(at) = p.last_login {
            writeln!(out, "authTimestamp: {}", ldif_time(at))?;
        }
        if p.has_password {
            let long = people.rng.random_bool(0.3);
            let hash = ssha(&mut people.rng, &demo_password(p.password), long);
            writeln!(out, "userPassword:: {}", STANDARD.encode(hash))?;
        }
        if !p.active {
            writeln!(out, "pwdAccountLockedTime: 000001010000Z")?;
        }
        writeln!(out)?;
        for group in &p.groups {
            if let Some(i) = GROUPS.iter().position(|g| g == group) {
                members[i].push(dn.clone());
            }
        }
    }
    for (group, dns) in GROUPS.iter().zip(members) {
        writeln!(
            out,
            "dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {group}"
        )?;
        for dn in dns {
            writeln!(out, "member: {dn}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::import::detect::{self, Format, Source};

    fn generate(format: ExportFormat, users: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write(format, users, 7, &mut out).unwrap();
        out
    }

    #[test]
    fn every_format_is_detected_as_what_it_is() {
        for (format, source) in [
            (ExportFormat::Csv, Source::Generic),
            (ExportFormat::Json, Source::Generic),
            (ExportFormat::Okta, Source::Okta),
            (ExportFormat::Cognito, Source::Cognito),
            (ExportFormat::EntraId, Source::EntraId),
            (ExportFormat::Auth0, Source::Auth0),
            (ExportFormat::Keycloak, Source::Keycloak),
            (ExportFormat::Ldif, Source::Ldap),
        ] {
            let bytes = generate(format, 6);
            let found = detect::detect(&bytes).unwrap();
            assert_eq!(found.source, source, "{format:?}");
            if format == ExportFormat::Ldif {
                assert_eq!(found.format, Format::Ldif);
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_people() {
        let a = People::new(3, 10).next();
        let b = People::new(3, 10).next();
        assert_eq!((a.uuid, a.username, a.email), (b.uuid, b.username, b.email));
    }
}
