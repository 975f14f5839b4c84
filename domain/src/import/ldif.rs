//! LDIF (RFC 2849) exports of OpenLDAP and Active Directory: comments, continuation
//! lines, `::` base64 values, multi-valued attributes and `userPassword`. Person
//! entries become users; group entries (`member`, `uniqueMember`, `memberUid`) become
//! memberships, delivered as their own items because a group may come after its
//! members in the file.

use super::record::{Email, Location, NormalizedUser, Phone, RecordError, UserStatus, parse_time};
use crate::passwords;
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use std::{collections::BTreeMap, io::BufRead};

/// What one LDIF entry yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LdifItem {
    User(Box<NormalizedUser>),
    /// A group and the members it lists, as DNs or (for `memberUid`) user names.
    Group {
        name: String,
        dn: String,
        members: Vec<String>,
    },
    /// An entry that is neither (an organizational unit, the base entry, …).
    Other,
}

/// An entry as read: its DN, first line, and attributes with all their values.
struct Entry {
    line: u64,
    dn: String,
    attributes: Vec<(String, Vec<u8>)>,
}

pub struct LdifReader<R: BufRead> {
    input: R,
    line: u64,
    entry: u64,
    peeked: Option<(u64, String)>,
    done: bool,
    groups_only: bool,
    /// Where the last entry read starts.
    last: Location,
}

impl<R: BufRead> LdifReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            entry: 0,
            peeked: None,
            done: false,
            groups_only: false,
            last: Location::LdifEntry { entry: 0, line: 0 },
        }
    }

    /// Where the entry last returned starts.
    pub fn location(&self) -> Location {
        self.last.clone()
    }

    /// A reader that yields only group entries (everything else as `Other`, unread):
    /// the first of the two passes that give users the groups listed after them.
    pub fn groups_only(input: R) -> Self {
        Self {
            groups_only: true,
            ..Self::new(input)
        }
    }

    fn next_line(&mut self) -> Result<Option<(u64, String)>, RecordError> {
        if let Some(line) = self.peeked.take() {
            return Ok(Some(line));
        }
        let mut bytes = Vec::new();
        let read = self.input.read_until(b'\n', &mut bytes).map_err(|e| {
            RecordError::new(
                Location::Line {
                    line: self.line + 1,
                },
                None,
                format!("cannot read the file: {e}"),
            )
        })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            RecordError::new(
                Location::Line { line: self.line },
                None,
                "not valid UTF-8; LDIF carries other bytes as :: base64",
            )
        })?;
        Ok(Some((self.line, text)))
    }

    /// One logical line: a physical line plus its continuation lines (leading space).
    fn logical_line(&mut self) -> Result<Option<(u64, String)>, RecordError> {
        let Some((number, mut text)) = self.next_line()? else {
            return Ok(None);
        };
        loop {
            match self.next_line()? {
                Some((_, more)) if more.starts_with(' ') => text.push_str(&more[1..]),
                Some(other) => {
                    self.peeked = Some(other);
                    break;
                }
                None => break,
            }
        }
        Ok(Some((number, text)))
    }

    fn read_entry(&mut self) -> Result<Option<Entry>, RecordError> {
        let mut entry: Option<Entry> = None;
        while let Some((number, text)) = self.logical_line()? {
            if text.starts_with('#') {
                continue;
            }
            if text.trim().is_empty() {
                if entry.is_some() {
                    break;
                }
                continue;
            }
            let at = || Location::LdifEntry {
                entry: self.entry + 1,
                line: number,
            };
            let Some((name, rest)) = text.split_once(':') else {
                return Err(RecordError::new(
                    at(),
                    None,
                    "expected \"attribute: value\"",
                ));
            };
            let name = name.trim().to_string();
            let value = if let Some(encoded) = rest.strip_prefix(':') {
                STANDARD.decode(encoded.trim()).map_err(|_| {
                    RecordError::new(at(), Some(&name), "the :: value is not valid base64")
                })?
            } else if rest.starts_with('<') {
                return Err(RecordError::new(
                    at(),
                    Some(&name),
                    "values by URL (:<) are not read; inline the value",
                ));
            } else {
                rest.trim_start().as_bytes().to_vec()
            };
            if name.eq_ignore_ascii_case("version") && entry.is_none() {
                continue;
            }
            match &mut entry {
                None if name.eq_ignore_ascii_case("dn") => {
                    entry = Some(Entry {
                        line: number,
                        dn: String::from_utf8_lossy(&value).into_owned(),
                        attributes: Vec::new(),
                    });
                }
                None => {
                    return Err(RecordError::new(
                        at(),
                        Some(&name),
                        "an entry must start with dn:",
                    ));
                }
                Some(entry) => entry.attributes.push((name, value)),
            }
        }
        if entry.is_some() {
            self.entry += 1;
        }
        Ok(entry)
    }

    /// Skips the rest of a broken entry so reading can go on with the next one.
    fn skip_entry(&mut self) {
        while let Ok(Some((_, text))) = self.logical_line() {
            if text.trim().is_empty() {
                break;
            }
        }
        self.entry += 1;
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<LdifItem, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = self.read_entry();
        if let Ok(Some(entry)) = &read {
            self.last = Location::LdifEntry {
                entry: self.entry,
                line: entry.line,
            };
        }
        match read {
            Ok(Some(entry)) if self.groups_only && !is_class(&entry, GROUP_CLASSES) => {
                Some(Ok(LdifItem::Other))
            }
            Ok(Some(entry)) => Some(Ok(item(entry))),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                if matches!(err.location, Location::LdifEntry { .. }) {
                    self.skip_entry();
                } else {
                    self.done = true;
                }
                Some(Err(err))
            }
        }
    }
}

fn values<'a>(entry: &'a Entry, name: &str) -> impl Iterator<Item = &'a [u8]> + 'a {
    let name = name.to_ascii_lowercase();
    entry
        .attributes
        .iter()
        .filter(move |(n, _)| n.to_ascii_lowercase() == name)
        .map(|(_, v)| v.as_slice())
}

fn first(entry: &Entry, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        values(entry, name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
}

fn all(entry: &Entry, name: &str) -> Vec<String> {
    values(entry, name)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

/// `20240102030405Z`, `20240102030405.0Z` (LDAP generalized time).
fn generalized_time(text: &str) -> Option<DateTime<Utc>> {
    let digits = text.trim().trim_end_matches('Z');
    let digits = digits.split(['.', ',']).next()?;
    NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// Active Directory's FILETIME: 100-nanosecond ticks since 1601-01-01; 0 means never.
fn filetime(text: &str) -> Option<DateTime<Utc>> {
    const TICKS_TO_UNIX: i64 = 116_444_736_000_000_000;
    let ticks: i64 = text.trim().parse().ok()?;
    if ticks <= 0 {
        return None;
    }
    DateTime::from_timestamp_millis((ticks - TICKS_TO_UNIX) / 10_000)
}

const GROUP_CLASSES: &[&str] = &["groupOfNames", "groupOfUniqueNames", "group", "posixGroup"];

fn is_class(entry: &Entry, classes: &[&str]) -> bool {
    all(entry, "objectClass")
        .iter()
        .any(|c| classes.iter().any(|k| c.eq_ignore_ascii_case(k)))
}

/// One entry as a user, a group or neither. Nothing in a person entry refuses it: a
/// field that cannot be read is recorded as unreadable.
fn item(entry: Entry) -> LdifItem {
    if is_class(&entry, GROUP_CLASSES) {
        let mut members = all(&entry, "member");
        members.extend(all(&entry, "uniqueMember"));
        members.extend(all(&entry, "memberUid"));
        let name = first(&entry, &["cn"]).unwrap_or_else(|| group_name(&entry.dn));
        return LdifItem::Group {
            name,
            dn: entry.dn,
            members,
        };
    }
    if !is_class(
        &entry,
        &[
            "person",
            "inetOrgPerson",
            "organizationalPerson",
            "user",
            "posixAccount",
        ],
    ) {
        return LdifItem::Other;
    }
    let mut user = NormalizedUser {
        source_id: first(&entry, &["entryUUID", "nsUniqueId"])
            .or_else(|| values(&entry, "objectGUID").next().map(guid))
            .unwrap_or_else(|| entry.dn.clone()),
        username: first(&entry, &["uid", "sAMAccountName", "userPrincipalName"]),
        given_name: first(&entry, &["givenName"]),
        family_name: first(&entry, &["sn"]),
        display_name: first(&entry, &["displayName", "cn"]),
        groups: Vec::new(),
        status: UserStatus::Active,
        ..Default::default()
    };
    for (index, mail) in all(&entry, "mail").into_iter().enumerate() {
        user.emails.push(Email {
            value: mail,
            primary: index == 0,
            verified: None,
        });
    }
    for (name, kind) in [("telephoneNumber", None), ("mobile", Some("mobile"))] {
        for value in all(&entry, name) {
            let primary = user.phones.is_empty();
            user.phones.push(Phone {
                value,
                kind: kind.map(str::to_string),
                primary,
            });
        }
    }
    if let Some(control) = first(&entry, &["userAccountControl"]) {
        match control.parse::<u32>() {
            Ok(flags) if flags & 0x2 != 0 => user.status = UserStatus::Disabled,
            Ok(_) => {}
            Err(_) => user.unreadable("userAccountControl", "is not a number"),
        }
    }
    if first(&entry, &["nsAccountLock"]).is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || first(&entry, &["pwdAccountLockedTime"]).is_some()
    {
        user.status = UserStatus::Disabled;
    }
    for (name, target) in [
        ("createTimestamp", 0),
        ("whenCreated", 0),
        ("authTimestamp", 1),
        ("lastLogonTimestamp", 1),
    ] {
        let Some(text) = first(&entry, &[name]) else {
            continue;
        };
        let parsed = if name == "lastLogonTimestamp" {
            filetime(&text)
        } else {
            generalized_time(&text).or_else(|| parse_time(&text))
        };
        let Some(at) = parsed else {
            if !(name == "lastLogonTimestamp" && text.trim() == "0") {
                user.unreadable(name, "is not an LDAP time");
            }
            continue;
        };
        if target == 0 {
            user.created_at.get_or_insert(at);
        } else {
            user.last_login_at.get_or_insert(at);
        }
    }
    if let Some(raw) = values(&entry, "userPassword").next() {
        let read = match std::str::from_utf8(raw) {
            Ok(text) => passwords::parse(text),
            Err(_) => Err(passwords::CredentialError::Unrecognized { scheme: None }),
        };
        let credential = passwords::Credential::or_unusable(read);
        if let passwords::Credential::Unusable { reason } = &credential {
            user.unreadable("userPassword", reason.clone());
        }
        user.credential = Some(credential);
    }
    user.attributes = attributes(&entry);
    // A migration calls a group by its name (`cn`), not its DN; the DNs stay for rules
    // that need them, under `group_dns`.
    for dn in all(&entry, "memberOf") {
        join_group(&mut user, &group_name(&dn), &dn);
    }
    user.attributes.insert("dn".into(), Value::String(entry.dn));
    LdifItem::User(Box::new(user))
}

/// Every attribute but the password: one value as text, several as a list; values that
/// are not text are kept as base64.
fn attributes(entry: &Entry) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in &entry.attributes {
        if name.eq_ignore_ascii_case("userPassword") {
            continue;
        }
        let value = match std::str::from_utf8(value) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => Value::String(format!("base64:{}", STANDARD.encode(value))),
        };
        out.entry(name.clone()).or_default().push(value);
    }
    out.into_iter()
        .map(|(k, mut v)| {
            (
                k,
                if v.len() == 1 {
                    v.remove(0)
                } else {
                    Value::Array(v)
                },
            )
        })
        .collect()
}

/// The name a migration calls a group by: the value of the first RDN of its DN
/// (`cn=Engineering,ou=groups,…` → `Engineering`), unescaped; the whole DN when it has
/// no `=`.
pub fn group_name(dn: &str) -> String {
    let mut rdn = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        match c {
            _ if escaped => {
                rdn.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            ',' | '+' => break,
            _ => rdn.push(c),
        }
    }
    match rdn.split_once('=') {
        Some((_, value)) if !value.trim().is_empty() => value.trim().to_string(),
        _ => dn.trim().to_string(),
    }
}

/// Gives the user a group by name (once) and keeps its DN in `group_dns`.
fn join_group(user: &mut NormalizedUser, name: &str, dn: &str) {
    if !user.groups.iter().any(|g| g.eq_ignore_ascii_case(name)) {
        user.groups.push(name.to_string());
    }
    let dns = user
        .attributes
        .entry(GROUP_DNS.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = dns
        && !list
            .iter()
            .any(|d| d.as_str().is_some_and(|d| d.eq_ignore_ascii_case(dn)))
    {
        list.push(Value::String(dn.to_string()));
    }
}

/// The attribute that keeps the DNs of a user's groups.
pub const GROUP_DNS: &str = "group_dns";

/// Active Directory's `objectGUID`: 16 bytes, the first three fields little-endian.
fn guid(bytes: &[u8]) -> String {
    match <[u8; 16]>::try_from(bytes) {
        Ok(b) => uuid::Uuid::from_bytes_le(b).to_string(),
        Err(_) => STANDARD.encode(bytes),
    }
}

#[cfg(test)]
mod tests;

/// Group memberships gathered from group entries, to be given to users read later or
/// earlier in the same file. A member is a DN (`member`, `uniqueMember`) or a user name
/// (`memberUid`); both are kept as 64-bit hashes of their normalized form, so a million
/// memberships take about 16 MB and no personal value stays in memory.
#[derive(Debug, Default)]
pub struct Memberships {
    /// Each group's DN and name.
    groups: Vec<(String, String)>,
    links: Vec<(u64, u32)>,
    sorted: bool,
}

impl Memberships {
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// How many (member, group) pairs were gathered.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Adds a group entry's members.
    pub fn add_group(&mut self, dn: &str, name: &str, members: &[String]) {
        let index = match self
            .groups
            .iter()
            .position(|g| g.0.eq_ignore_ascii_case(dn))
        {
            Some(i) => i,
            None => {
                self.groups.push((dn.to_string(), name.to_string()));
                self.groups.len() - 1
            }
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.links
            .extend(members.iter().map(|member| (member_key(member), index)));
        self.sorted = false;
    }

    /// Sorts the pairs for lookups; call once all groups are added.
    pub fn seal(&mut self) {
        self.links.sort_unstable();
        self.links.dedup();
        self.sorted = true;
    }

    /// Adds to `user.groups` the name of every group that lists the user by DN (the
    /// `dn` attribute) or by user name, unless the user lists it already (`memberOf`),
    /// and its DN to the `group_dns` attribute.
    pub fn apply(&self, user: &mut NormalizedUser) {
        if self.links.is_empty() {
            return;
        }
        let dn = user.attributes.get("dn").and_then(Value::as_str);
        let keys: Vec<u64> = [dn, user.username.as_deref()]
            .into_iter()
            .flatten()
            .map(member_key)
            .collect();
        for key in keys {
            let start = if self.sorted {
                self.links.partition_point(|(k, _)| *k < key)
            } else {
                0
            };
            for &(k, group) in &self.links[start..] {
                if k != key {
                    if self.sorted {
                        break;
                    }
                    continue;
                }
                let Some((dn, name)) = self.groups.get(group as usize) else {
                    continue;
                };
                join_group(user, name, dn);
            }
        }
    }
}

/// DNs compare without case and without spaces around separators (RFC 4514 allows
/// `uid=ada, ou=people` and `UID=ada,ou=People` for the same entry).
fn member_key(value: &str) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    let mut last_separator = true;
    let mut pending_space = false;
    for c in value.trim().chars() {
        if c == ' ' {
            pending_space = !last_separator;
            continue;
        }
        let separator = matches!(c, ',' | '=' | '+');
        if pending_space && !separator {
            ' '.hash(&mut hasher);
        }
        pending_space = false;
        for lower in c.to_lowercase() {
            lower.hash(&mut hasher);
        }
        last_separator = separator;
    }
    hasher.finish()
}
