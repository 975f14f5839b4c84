//! Property tests over every reader and hash parser: exports made by other tools,
//! mutated at random (bytes flipped, inserted, cut out, the file truncated), and
//! arbitrary text never make one panic; and no error or unreadable-field reason ever
//! quotes a value of the export. The test command runs the default number of cases;
//! `scripts/fuzz.sh` runs many more. A failure proptest finds is kept under
//! `proptest-regressions/` and tried first on every later run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::{
    import::{
        csv_reader::CsvUsers,
        detect,
        json_stream::JsonLayout,
        json_users::{self, JsonProfile},
        ldif::LdifReader,
    },
    passwords::{self, FirebaseParams, SaltPosition},
};
use proptest::prelude::*;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/import/auth0_export.ndjson"),
    include_bytes!("fixtures/import/auth0_import.json"),
    include_bytes!("fixtures/import/bad.csv"),
    include_bytes!("fixtures/import/cognito.csv"),
    include_bytes!("fixtures/import/directory.ldif"),
    include_bytes!("fixtures/import/entra.csv"),
    include_bytes!("fixtures/import/firebase.json"),
    include_bytes!("fixtures/import/generic.csv"),
    include_bytes!("fixtures/import/generic.json"),
    include_bytes!("fixtures/import/keycloak_realm.json"),
    include_bytes!("fixtures/import/okta.csv"),
    include_bytes!("fixtures/import/truncated.json"),
];

/// Enough of any reader's output to read a mutated fixture whole.
const MOST: usize = 10_000;

fn firebase() -> FirebaseParams {
    FirebaseParams {
        signer_key: vec![7; 64],
        salt_separator: vec![1],
        rounds: 8,
        mem_cost: 14,
    }
}

/// Every reader over `bytes`, collecting every message a person could see: record
/// errors, document errors, unreadable-field reasons.
fn read_everything(bytes: &[u8]) -> Vec<String> {
    let mut seen = Vec::new();
    if let Err(reason) = detect::detect(bytes) {
        seen.push(reason);
    }
    for delimiter in [b',', b';', b'\t', b'|'] {
        match CsvUsers::new(bytes, delimiter) {
            Ok(users) => {
                for item in users.take(MOST) {
                    match item {
                        Ok(user) => seen.extend(user.unreadable.into_iter().map(|u| u.reason)),
                        Err(err) => seen.push(err.to_string()),
                    }
                }
            }
            Err(err) => seen.push(err.to_string()),
        }
    }
    for layout in [
        JsonLayout::Array,
        JsonLayout::Ndjson,
        JsonLayout::Nested("users"),
    ] {
        for profile in [
            JsonProfile::Generic,
            JsonProfile::Auth0,
            JsonProfile::Keycloak,
            JsonProfile::Firebase(firebase()),
        ] {
            let mut each = |item: Result<domain::import::NormalizedUser, _>| match item {
                Ok(user) => seen.extend(user.unreadable.into_iter().map(|u| u.reason)),
                Err(err) => seen.push(format!("{err}")),
            };
            if let Err(err) = json_users::read(bytes, layout, &profile, &mut each) {
                seen.push(err.to_string());
            }
        }
    }
    for item in LdifReader::new(bytes).take(MOST) {
        if let Err(err) = item {
            seen.push(err.to_string());
        }
    }
    seen
}

/// One change to a file.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Cut { at: usize, len: usize },
    Truncate { at: usize },
    Repeat { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Flip { at, byte }),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Cut { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1usize..256).prop_map(|(at, len)| Mutation::Repeat { at, len }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: usize| if bytes.is_empty() { 0 } else { i % bytes.len() };
        match m {
            Mutation::Flip { at: i, byte } => {
                let i = at(*i);
                if let Some(b) = bytes.get_mut(i) {
                    *b = *byte;
                }
            }
            Mutation::Insert {
                at: i,
                bytes: extra,
            } => {
                let i = at(*i);
                bytes.splice(i..i, extra.iter().copied());
            }
            Mutation::Cut { at: i, len } => {
                let i = at(*i);
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Truncate { at: i } => {
                let i = at(*i);
                bytes.truncate(i);
            }
            Mutation::Repeat { at: i, len } => {
                let i = at(*i);
                let end = (i + len).min(bytes.len());
                let copy = bytes[i..end].to_vec();
                bytes.splice(i..i, copy);
            }
        }
    }
    bytes
}

/// A value no message may quote: letters and digits no field name or reason holds.
fn marker() -> impl Strategy<Value = String> {
    "[Q-Z]{4}[0-9]{6}[q-z]{4}"
}

/// A cell of a CSV: the marker inside a value of some kind, or another value.
fn cell(marker: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(marker.clone()),
        Just(format!("{marker}@example.com")),
        Just(format!("$2b$10${marker}")),
        Just(format!("{{SSHA}}{marker}")),
        Just(format!("$argon2id$v=19$m={marker}")),
        Just(format!("2024-{marker}")),
        "[a-z0-9@.$ -]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn mutated_exports_never_panic_a_reader(
        fixture in 0..FIXTURES.len(),
        mutations in proptest::collection::vec(mutation(), 0..6),
    ) {
        let bytes = mutate(FIXTURES[fixture].to_vec(), &mutations);
        read_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&bytes);
    }

    /// CSV rows with and without a header, every kind of value in every column, some
    /// rows short: whatever is refused or unreadable, no message quotes a value.
    #[test]
    fn no_message_quotes_a_value_of_the_export(
        marker in marker(),
        header in any::<bool>(),
        rows in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..8), 1..6),
        seed in proptest::collection::vec(marker().prop_flat_map(cell), 8),
    ) {
        let columns = ["id", "email", "created_at", "password_hash", "enabled", "last_login", "email_verified", "name"];
        let mut text = String::new();
        if header {
            text.push_str(&columns.join(","));
            text.push('\n');
        }
        for (r, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, pick)| {
                    if usize::from(*pick) % 3 == 0 {
                        marker.clone()
                    } else {
                        seed[(i + r) % seed.len()].clone()
                    }
                })
                .collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        for message in read_everything(text.as_bytes()) {
            prop_assert!(!message.contains(&marker), "{message}");
            for value in &seed {
                if value.len() >= 14 {
                    prop_assert!(!message.contains(value.as_str()), "{message}");
                }
            }
        }
    }

    /// Hash parsers: arbitrary stored values, and values shaped like each scheme, give a
    /// credential or a reason that never quotes the value.
    #[test]
    fn hash_parsers_never_panic_nor_quote_the_hash(
        marker in marker(),
        prefix in prop_oneof![
            Just(""), Just("$2b$10$"), Just("$argon2id$v=19$"), Just("$pbkdf2-sha256$"),
            Just("$scrypt$ln=4,r=8,p=1$"), Just("$6$"), Just("$1$"), Just("{SSHA}"),
            Just("{CRYPT}$5$"), Just("{MD5}"), Just("$money$"),
        ],
        tail in "[ -~]{0,40}",
    ) {
        let stored = format!("{prefix}{marker}{tail}");
        if let Err(err) = passwords::parse(&stored) {
            prop_assert!(!err.to_string().contains(&marker), "{err}");
        }
        let secret = format!(r#"{{"value":"{marker}","salt":"{marker}"}}"#);
        for data in [
            r#"{"algorithm":"argon2","hashIterations":3,"additionalParameters":{"memory":["64"]}}"#.to_string(),
            r#"{"algorithm":"pbkdf2-sha256","hashIterations":1000}"#.to_string(),
            format!(r#"{{"algorithm":"{marker}","hashIterations":1}}"#),
            tail.clone(),
        ] {
            if let Err(err) = passwords::keycloak(&secret, &data) {
                prop_assert!(!err.to_string().contains(&marker), "{err}");
            }
            let _ = passwords::keycloak(&tail, &data);
        }
        for digest in ["sha256", "md5", marker.as_str()] {
            if let Err(err) = passwords::salted_digest(digest, tail.as_bytes().to_vec(), vec![], SaltPosition::Prefix) {
                prop_assert!(!err.to_string().contains(&marker), "{err}");
            }
        }
        if let Err(err) = passwords::firebase(&stored, &tail, firebase()) {
            prop_assert!(!err.to_string().contains(&marker), "{err}");
        }
    }
}
