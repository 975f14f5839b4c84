//! Recognizing an export by its content, never its file name: the first bytes tell
//! compression, encoding, and which format and vendor layout the file has. The user
//! can override the result.

use super::{csv_reader::sniff_delimiter, json_stream::JsonLayout};

/// How many leading bytes detection looks at.
pub const SAMPLE_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// Not valid UTF-8 but plausible text: read as ISO-8859-1 unless the user says.
    Latin1,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Generic,
    Okta,
    Cognito,
    EntraId,
    Auth0,
    Keycloak,
    Firebase,
    Ldap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv { delimiter: u8 },
    Json(JsonLayout),
    Ldif,
}

/// What a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    pub format: Format,
    pub source: Source,
    pub encoding: TextEncoding,
}

/// The first step of reading: the container around the export.
pub fn compression(sample: &[u8]) -> Option<Compression> {
    match sample {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [b'P', b'K', 0x03, 0x04, ..] => Some(Compression::Zip),
        _ => None,
    }
}

fn encoding(sample: &[u8]) -> (TextEncoding, usize) {
    match sample {
        [0xef, 0xbb, 0xbf, ..] => (TextEncoding::Utf8, 3),
        [0xff, 0xfe, ..] => (TextEncoding::Utf16Le, 2),
        [0xfe, 0xff, ..] => (TextEncoding::Utf16Be, 2),
        // UTF-16 without a byte-order mark: every other byte of ASCII text is zero.
        [a, 0, b, 0, ..] if *a != 0 && *b != 0 => (TextEncoding::Utf16Le, 0),
        [0, a, 0, b, ..] if *a != 0 && *b != 0 => (TextEncoding::Utf16Be, 0),
        _ => match std::str::from_utf8(sample) {
            Ok(_) => (TextEncoding::Utf8, 0),
            // A sample may end inside a character: only earlier errors count.
            Err(e) if e.error_len().is_none() => (TextEncoding::Utf8, 0),
            Err(_) => (TextEncoding::Latin1, 0),
        },
    }
}

fn as_text(sample: &[u8], encoding: TextEncoding, skip: usize) -> String {
    let body = &sample[skip..];
    match encoding {
        TextEncoding::Utf8 => String::from_utf8_lossy(body).into_owned(),
        TextEncoding::Latin1 => body.iter().map(|b| char::from(*b)).collect(),
        TextEncoding::Utf16Le | TextEncoding::Utf16Be => {
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|p| {
                    if encoding == TextEncoding::Utf16Le {
                        u16::from_le_bytes([p[0], p[1]])
                    } else {
                        u16::from_be_bytes([p[0], p[1]])
                    }
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
    }
}

/// Recognizes an uncompressed export from its first bytes. `Err` is one sentence for
/// a file that is not an export Ferry can read.
pub fn detect(sample: &[u8]) -> Result<Detection, String> {
    if sample.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    if compression(sample).is_some() {
        return Err("the file is compressed; it is unpacked before detection".into());
    }
    let (encoding, skip) = encoding(sample);
    let text = as_text(sample, encoding, skip);
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        .count();
    if controls * 20 > text.chars().count().max(1) {
        return Err("the file is binary data, not a CSV, JSON or LDIF export".into());
    }
    let trimmed = text.trim_start();
    let found = |format, source| {
        Ok(Detection {
            format,
            source,
            encoding,
        })
    };
    if trimmed.starts_with('[') {
        return found(Format::Json(JsonLayout::Array), json_source(trimmed));
    }
    if trimmed.starts_with('{') {
        // NDJSON: most of the first lines are whole objects (a broken line among them
        // is that file's problem, reported later, not a sign of another format).
        let first: Vec<&str> = trimmed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(5)
            .collect();
        let whole = first
            .iter()
            .filter(|l| l.starts_with('{') && l.ends_with('}'))
            .count();
        let single_object = first.len() == 1 && !trimmed.contains("\"users\"");
        if whole >= 2 && whole * 2 > first.len() || single_object {
            return found(Format::Json(JsonLayout::Ndjson), json_source(trimmed));
        }
        if trimmed.contains("\"users\"") {
            let source = if trimmed.contains("\"localId\"") {
                Source::Firebase
            } else if trimmed.contains("\"realm\"") || trimmed.contains("\"createdTimestamp\"") {
                Source::Keycloak
            } else {
                Source::Generic
            };
            return found(Format::Json(JsonLayout::Nested("users")), source);
        }
        return Err(
            "a JSON document without a \"users\" array, and not one object per line".into(),
        );
    }
    let ldif = trimmed
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .take(2)
        .any(|l| l.starts_with("dn:") || l.starts_with("version: 1"));
    if ldif {
        return found(Format::Ldif, Source::Ldap);
    }
    let header = trimmed.lines().next().unwrap_or_default();
    let delimiter = sniff_delimiter(trimmed.as_bytes());
    if !header.contains(char::from(delimiter)) {
        return Err("not a CSV with a header row, JSON or LDIF: no delimiter, brace or dn: found at the start".into());
    }
    let normalized: Vec<String> = header
        .split(char::from(delimiter))
        .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has = |name: &str| normalized.iter().any(|h| h == name);
    let source = if has("cognito:username") {
        Source::Cognito
    } else if has("userprincipalname") && (has("objectid") || has("accountenabled")) {
        Source::EntraId
    } else if has("primary email") || has("login") && has("status") && trimmed.contains("00u") {
        Source::Okta
    } else {
        Source::Generic
    };
    found(Format::Csv { delimiter }, source)
}

/// A format the person chose instead of detection. Names as the API takes them;
/// `Err` says which value is wrong.
pub fn choose(
    format: &str,
    source: Option<&str>,
    delimiter: Option<&str>,
    encoding: Option<&str>,
) -> Result<Detection, (&'static str, String)> {
    let source = match source.unwrap_or("generic").to_ascii_lowercase().as_str() {
        "generic" => Source::Generic,
        "okta" => Source::Okta,
        "cognito" => Source::Cognito,
        "entra_id" | "entra" => Source::EntraId,
        "auth0" => Source::Auth0,
        "keycloak" => Source::Keycloak,
        "firebase" => Source::Firebase,
        "ldap" => Source::Ldap,
        other => return Err(("source", format!("unknown source {other:?}"))),
    };
    let format = match format.to_ascii_lowercase().as_str() {
        "csv" => {
            let delimiter = match delimiter.unwrap_or(",") {
                "\\t" | "tab" | "\t" => b'\t',
                d if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                other => return Err(("delimiter", format!("{other:?} is not one character"))),
            };
            Format::Csv { delimiter }
        }
        "json" if matches!(source, Source::Keycloak | Source::Firebase) => {
            Format::Json(JsonLayout::Nested("users"))
        }
        "json" => Format::Json(JsonLayout::Array),
        "ndjson" => Format::Json(JsonLayout::Ndjson),
        "ldif" => Format::Ldif,
        other => {
            return Err((
                "format",
                format!("unknown format {other:?}; expected csv, json, ndjson or ldif"),
            ));
        }
    };
    let encoding = match encoding
        .unwrap_or("utf-8")
        .to_ascii_lowercase()
        .replace('_', "-")
        .as_str()
    {
        "utf-8" | "utf8" => TextEncoding::Utf8,
        "utf-16" | "utf-16le" => TextEncoding::Utf16Le,
        "utf-16be" => TextEncoding::Utf16Be,
        "latin1" | "latin-1" | "iso-8859-1" | "windows-1252" => TextEncoding::Latin1,
        other => return Err(("encoding", format!("unknown encoding {other:?}"))),
    };
    Ok(Detection {
        format,
        source,
        encoding,
    })
}

fn json_source(text: &str) -> Source {
    if text.contains("\"user_id\"") || text.contains("\"custom_password_hash\"") {
        Source::Auth0
    } else if text.contains("\"localId\"") {
        Source::Firebase
    } else if text.contains("\"createdTimestamp\"") {
        Source::Keycloak
    } else {
        Source::Generic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import/");

    fn of(name: &str) -> Result<Detection, String> {
        detect(&std::fs::read(format!("{FIXTURES}{name}")).unwrap())
    }

    fn utf8(format: Format, source: Source) -> Result<Detection, String> {
        Ok(Detection {
            format,
            source,
            encoding: TextEncoding::Utf8,
        })
    }

    #[test]
    fn every_fixture_is_recognized_by_content() {
        let csv = |d| Format::Csv { delimiter: d };
        assert_eq!(of("generic.csv"), utf8(csv(b','), Source::Generic));
        assert_eq!(of("okta.csv"), utf8(csv(b';'), Source::Okta));
        assert_eq!(of("cognito.csv"), utf8(csv(b','), Source::Cognito));
        assert_eq!(of("entra.csv"), utf8(csv(b','), Source::EntraId));
        assert_eq!(
            of("auth0_export.ndjson"),
            utf8(Format::Json(JsonLayout::Ndjson), Source::Auth0)
        );
        assert_eq!(
            of("auth0_import.json"),
            utf8(Format::Json(JsonLayout::Array), Source::Auth0)
        );
        assert_eq!(
            of("keycloak_realm.json"),
            utf8(Format::Json(JsonLayout::Nested("users")), Source::Keycloak)
        );
        assert_eq!(
            of("firebase.json"),
            utf8(Format::Json(JsonLayout::Nested("users")), Source::Firebase)
        );
        assert_eq!(
            of("generic.json"),
            utf8(Format::Json(JsonLayout::Array), Source::Generic)
        );
        assert_eq!(of("directory.ldif"), utf8(Format::Ldif, Source::Ldap));
    }

    #[test]
    fn encodings_are_recognized() {
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "id,email\n1,a@b.c\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(detect(&utf16).unwrap().encoding, TextEncoding::Utf16Le);
        let bare16: Vec<u8> = "id;email\n1;a@b.c\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let found = detect(&bare16).unwrap();
        assert_eq!(
            (found.encoding, found.format),
            (TextEncoding::Utf16Be, Format::Csv { delimiter: b';' })
        );
        assert_eq!(
            detect(b"id,name\n1,Caf\xe9\n").unwrap().encoding,
            TextEncoding::Latin1
        );
        assert_eq!(compression(&[0x1f, 0x8b, 8, 0]), Some(Compression::Gzip));
        assert_eq!(compression(b"PK\x03\x04rest"), Some(Compression::Zip));
    }

    #[test]
    fn chosen_formats_are_checked() {
        let okta = choose("csv", Some("okta"), Some(";"), Some("latin1")).unwrap();
        assert_eq!(okta.format, Format::Csv { delimiter: b';' });
        assert_eq!(
            (okta.source, okta.encoding),
            (Source::Okta, TextEncoding::Latin1)
        );
        let keycloak = choose("json", Some("keycloak"), None, None).unwrap();
        assert_eq!(keycloak.format, Format::Json(JsonLayout::Nested("users")));
        assert_eq!(choose("xml", None, None, None).unwrap_err().0, "format");
        assert_eq!(
            choose("csv", None, Some(";;"), None).unwrap_err().0,
            "delimiter"
        );
        assert_eq!(
            choose("csv", Some("ping"), None, None).unwrap_err().0,
            "source"
        );
        assert_eq!(
            choose("csv", None, None, Some("ebcdic")).unwrap_err().0,
            "encoding"
        );
    }

    #[test]
    fn unreadable_files_get_one_sentence() {
        assert_eq!(detect(b"  \n"), Err("the file is empty".into()));
        assert!(
            detect(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 200, 201])
                .unwrap_err()
                .contains("binary")
        );
        assert!(
            detect(b"just some words\n")
                .unwrap_err()
                .contains("not a CSV")
        );
        assert!(
            detect(b"{\"a\": 1,\n \"b\": 2}")
                .unwrap_err()
                .contains("\"users\"")
        );
    }
}
