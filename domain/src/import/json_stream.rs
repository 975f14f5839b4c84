//! Streaming JSON: the elements of a top-level array, of an array under a key of the
//! top-level object (`{"users": [...]}`), or the lines of NDJSON, handed over one at a
//! time so memory stays bounded whatever the file size. Each element comes with its
//! location: its JSON path and the line it starts on.

use super::record::{Location, RecordError};
use serde::de::DeserializeOwned;
use std::io::BufRead;

/// Where the user objects sit in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonLayout {
    /// `[ {...}, {...} ]`
    Array,
    /// One object per line.
    Ndjson,
    /// `{ "...": ..., "<key>": [ {...} ] }`, other keys ignored.
    Nested(&'static str),
}

/// Calls `each` for every element, read as a `T` (a `serde_json::Value` takes any
/// element; a narrower type saves building what the caller would only take apart). A
/// break in the document's structure ends the reading (what follows cannot be trusted)
/// and is returned with its line and column; an element that is balanced but not valid
/// JSON, or not a user, is one bad record.
///
/// The document is cut into elements by a small scanner that only tracks nesting and
/// strings, and each element is parsed from memory: much faster than parsing the whole
/// document from a reader byte by byte, and the line of each element comes for free.
pub fn for_each<T: DeserializeOwned, R: BufRead>(
    input: R,
    layout: JsonLayout,
    each: &mut dyn FnMut(Result<(T, Location), RecordError>),
) -> Result<(), RecordError> {
    let mut scanner = Scanner {
        input,
        line: 1,
        column: 1,
    };
    match layout {
        JsonLayout::Ndjson => ndjson(scanner.input, each),
        JsonLayout::Array => {
            scanner.skip_bom()?;
            match scanner.next_token()? {
                Some(b'[') => scanner.bump(),
                Some(b'{') => {
                    return Err(
                        scanner.error("invalid type: an object, expected an array of user objects")
                    );
                }
                _ => return Err(scanner.syntax("expected `[`")),
            }
            scanner.elements("$", each)?;
            scanner.end()
        }
        JsonLayout::Nested(key) => {
            scanner.skip_bom()?;
            match scanner.next_token()? {
                Some(b'{') => scanner.bump(),
                _ => return Err(scanner.syntax("expected `{`")),
            }
            let mut found = false;
            let mut name = Vec::new();
            loop {
                match scanner.next_token()? {
                    Some(b'}') => {
                        scanner.bump();
                        break;
                    }
                    Some(b'"') => {}
                    Some(_) => return Err(scanner.syntax("expected a key or `}`")),
                    None => return Err(scanner.truncated()),
                }
                name.clear();
                scanner.value(Some(&mut name))?;
                let name: String = serde_json::from_slice(&name).map_err(|e| {
                    scanner.error(&format!("invalid JSON: {}", without_position(&e)))
                })?;
                match scanner.next_token()? {
                    Some(b':') => scanner.bump(),
                    _ => return Err(scanner.syntax("expected `:`")),
                }
                if name == key && !found && scanner.next_token()? == Some(b'[') {
                    found = true;
                    scanner.bump();
                    scanner.elements(&format!("$.{key}"), each)?;
                } else {
                    scanner.value(None)?;
                }
                match scanner.next_token()? {
                    Some(b',') => scanner.bump(),
                    Some(b'}') => {
                        scanner.bump();
                        break;
                    }
                    Some(_) => return Err(scanner.syntax("expected `,` or `}`")),
                    None => return Err(scanner.truncated()),
                }
            }
            if !found {
                return Err(scanner.error(&format!("expected a \"{key}\" array")));
            }
            scanner.end()
        }
    }
}

/// The reader's next bytes; an I/O error names the line it happened on.
fn fill<R: BufRead>(input: &mut R, line: u64) -> Result<&[u8], RecordError> {
    input.fill_buf().map_err(|e| {
        RecordError::new(
            Location::Line { line },
            None,
            format!("cannot read the file: {e}"),
        )
    })
}

/// A user object larger than this is not a user object.
const MAX_ELEMENT: usize = 16 << 20;

/// Walks a JSON document, tracking where it is.
struct Scanner<R> {
    input: R,
    line: u64,
    column: u64,
}

impl<R: BufRead> Scanner<R> {
    fn error(&self, reason: &str) -> RecordError {
        RecordError::new(Location::Line { line: self.line }, None, reason)
    }

    fn syntax(&self, expected: &str) -> RecordError {
        self.error(&format!(
            "invalid JSON at column {}: {expected}",
            self.column
        ))
    }

    fn truncated(&self) -> RecordError {
        self.error("the JSON ends early: the file is truncated")
    }

    fn skip_bom(&mut self) -> Result<(), RecordError> {
        if fill(&mut self.input, self.line)?.starts_with(b"\xEF\xBB\xBF") {
            self.input.consume(3);
        }
        Ok(())
    }

    /// The next byte that is not white space, left unread; `None` at the end.
    fn next_token(&mut self) -> Result<Option<u8>, RecordError> {
        loop {
            let (mut line, mut column) = (self.line, self.column);
            let buf = fill(&mut self.input, line)?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut skipped = 0;
            let mut found = None;
            for &b in buf {
                match b {
                    b'\n' => {
                        line += 1;
                        column = 1;
                    }
                    b' ' | b'\t' | b'\r' => column += 1,
                    other => {
                        found = Some(other);
                        break;
                    }
                }
                skipped += 1;
            }
            self.input.consume(skipped);
            (self.line, self.column) = (line, column);
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// Consumes the byte `next_token` returned.
    fn bump(&mut self) {
        self.input.consume(1);
        self.column += 1;
    }

    /// Reads one value (object, array, string or scalar), copying its bytes to `out`.
    fn value(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), RecordError> {
        let first = self.next_token()?.ok_or_else(|| self.truncated())?;
        let scalar = !matches!(first, b'{' | b'[' | b'"');
        let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
        let mut started = false;
        let mut copied = 0usize;
        loop {
            let (mut line, mut column) = (self.line, self.column);
            let buf = fill(&mut self.input, line)?;
            if buf.is_empty() {
                if scalar && started {
                    return Ok(());
                }
                return Err(self.truncated());
            }
            let mut end = None;
            let mut i = 0;
            while i < buf.len() {
                if in_string && !escaped {
                    // Most of a user object is string content: jump to the next quote,
                    // escape or (in a broken file) line break instead of looking at
                    // every byte. Columns count bytes, as below.
                    let skip =
                        memchr::memchr3(b'"', b'\\', b'\n', &buf[i..]).unwrap_or(buf.len() - i);
                    column += skip as u64;
                    i += skip;
                    if i == buf.len() {
                        break;
                    }
                }
                let b = buf[i];
                if scalar {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                        end = Some(i);
                        break;
                    }
                } else if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            end = Some(i + 1);
                        }
                    }
                } else {
                    match b {
                        b'"' => in_string = true,
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                }
                started = true;
                if b == b'\n' {
                    line += 1;
                    column = 1;
                } else {
                    column += 1;
                }
                i += 1;
                if end.is_some() {
                    break;
                }
            }
            // A scalar's delimiter stays unread (and was not counted).
            let taken = end.unwrap_or(buf.len());
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&buf[..taken]);
            }
            copied += taken;
            self.input.consume(taken);
            (self.line, self.column) = (line, column);
            if end.is_some() {
                return Ok(());
            }
            if copied > MAX_ELEMENT {
                return Err(self.error("a value is larger than 16 MiB: this is not a user export"));
            }
        }
    }

    /// The elements of an array whose `[` was just read, up to its `]`.
    fn elements<T: DeserializeOwned>(
        &mut self,
        path: &str,
        each: &mut dyn FnMut(Result<(T, Location), RecordError>),
    ) -> Result<(), RecordError> {
        if self.next_token()? == Some(b']') {
            self.bump();
            return Ok(());
        }
        let mut bytes = Vec::new();
        let mut index = 0u64;
        loop {
            if self.next_token()?.is_none() {
                return Err(self.truncated());
            }
            let at = Location::JsonPath {
                path: format!("{path}[{index}]"),
                line: self.line,
            };
            bytes.clear();
            self.value(Some(&mut bytes))?;
            each(match parse::<T>(&bytes) {
                Ok(value) => Ok((value, at)),
                Err(err) => Err(RecordError::new(
                    at,
                    None,
                    format!("invalid JSON: {}", without_position(&err)),
                )),
            });
            index += 1;
            match self.next_token()? {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(());
                }
                Some(_) => return Err(self.syntax("expected `,` or `]`")),
                None => return Err(self.truncated()),
            }
        }
    }

    /// Only white space may follow the document.
    fn end(&mut self) -> Result<(), RecordError> {
        match self.next_token()? {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters after the document")),
        }
    }
}

/// One element parsed from memory. Its text is checked as UTF-8 in one pass, which
/// is much faster than serde_json checking each string of it in turn; text that is not
/// UTF-8 goes the slow way, for serde_json's own words on what is wrong.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split(" at line").next().unwrap_or(&text).to_string()
}

fn ndjson<T: DeserializeOwned, R: BufRead>(
    input: R,
    each: &mut dyn FnMut(Result<(T, Location), RecordError>),
) -> Result<(), RecordError> {
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index as u64 + 1;
        let line = line.map_err(|e| {
            RecordError::new(
                Location::Line { line: number },
                None,
                format!("cannot read the file: {e}"),
            )
        })?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let at = Location::Line { line: number };
        // One bad line does not spoil the others in NDJSON: it is reported as a record.
        each(match serde_json::from_str::<T>(text) {
            Ok(value) => Ok((value, at)),
            Err(err) => Err(RecordError::new(
                at,
                None,
                format!("invalid JSON: {}", without_position(&err)),
            )),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    type Item = Result<(Value, Location), RecordError>;

    fn read(text: &str, layout: JsonLayout) -> (Vec<Item>, Result<(), RecordError>) {
        let mut items = Vec::new();
        let end = for_each(text.as_bytes(), layout, &mut |item| items.push(item));
        (items, end)
    }

    fn at(path: &str, line: u64) -> Location {
        Location::JsonPath {
            path: path.into(),
            line,
        }
    }

    #[test]
    fn elements_come_with_their_path_and_line_whatever_their_strings_hold() {
        let text = "\u{feff}[\n  {\"id\": \"a\", \"note\": \"braces } ] { and \\\"quotes\\\"\"},\n\n  {\"id\": \"b\",\n   \"tags\": [1, [2]]}\n]\n";
        let (items, end) = read(text, JsonLayout::Array);
        end.unwrap();
        let items: Vec<_> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(items[0].0["note"], "braces } ] { and \"quotes\"");
        assert_eq!(items[0].1, at("$[0]", 2));
        assert_eq!(items[1].0["tags"], serde_json::json!([1, [2]]));
        assert_eq!(items[1].1, at("$[1]", 4));
    }

    #[test]
    fn elements_cut_the_same_whatever_the_reads_boundaries() {
        // Escapes, quotes and line breaks fall on every position of a tiny buffer.
        let text = "[\n{\"a\": \"x\\\\\", \"b\": \"\\\"}{[\", \"c\": [\"\\u00e9\", {}]},\n\n {\"d\": \"line\nbreak\"},\n {\"e\": 1}\n]";
        let whole = read(text, JsonLayout::Array);
        for capacity in 1..8 {
            let mut items: Vec<Item> = Vec::new();
            let input = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            let end = for_each(input, JsonLayout::Array, &mut |item| items.push(item));
            assert_eq!(
                format!("{items:?}"),
                format!("{:?}", whole.0),
                "capacity {capacity}"
            );
            assert_eq!(end.is_ok(), whole.1.is_ok());
        }
        let items = whole.0;
        assert_eq!(items[0].as_ref().unwrap().0["b"], "\"}{[");
        assert!(
            items[1].is_err(),
            "a raw line break in a string is not JSON"
        );
        assert_eq!(items[2].as_ref().unwrap().1, at("$[2]", 6));
    }

    #[test]
    fn a_broken_element_is_one_bad_record_and_reading_goes_on() {
        let (items, end) = read(
            "[{\"id\": 1}, {\"id\": tru}, 7, {\"id\": 3}]",
            JsonLayout::Array,
        );
        end.unwrap();
        assert_eq!(items.len(), 4);
        let err = items[1].as_ref().unwrap_err();
        assert_eq!(err.location, at("$[1]", 1));
        assert!(err.reason.starts_with("invalid JSON"), "{}", err.reason);
        assert_eq!(
            items[2].as_ref().unwrap().0,
            7,
            "not a user: the profile says so"
        );
        assert_eq!(items[3].as_ref().unwrap().0["id"], 3);
    }

    #[test]
    fn the_nested_array_is_found_among_other_keys() {
        let text = "{\"realm\": \"acme\", \"groups\": [{\"name\": \"users\"}], \"users\": [{\"id\": 1}], \"clients\": {\"users\": 2}}";
        let (items, end) = read(text, JsonLayout::Nested("users"));
        end.unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().1, at("$.users[0]", 1));
    }

    #[test]
    fn structure_errors_stop_reading_with_where_and_why() {
        let (items, end) = read("[{\"id\": 1} {\"id\": 2}]", JsonLayout::Array);
        assert_eq!(items.len(), 1);
        assert_eq!(
            end.unwrap_err().to_string(),
            "line 1: invalid JSON at column 12: expected `,` or `]`"
        );
        let (_, end) = read("[{\"id\": 1}]\n]", JsonLayout::Array);
        assert!(
            end.unwrap_err()
                .to_string()
                .contains("line 2: invalid JSON at column 1: trailing")
        );
        let (_, end) = read("[{\"id\": \"unterminated}]", JsonLayout::Array);
        assert!(end.unwrap_err().to_string().contains("truncated"));
        let (items, end) = read("[]", JsonLayout::Array);
        assert!(items.is_empty() && end.is_ok());
    }
}
