//! Streaming JSON: the elements of a top-level array, of an array under a key of the
//! top-level object (`{"users": [...]}`), or the lines of NDJSON, handed over one at a
//! time so memory stays bounded whatever the file size. Each element comes with its
//! location: its JSON path and the line it starts on.

use super::record::{Location, RecordError};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::{
    cell::Cell,
    fmt,
    io::{BufRead, Read},
    rc::Rc,
};

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

/// Counts the lines a reader has handed out, so elements can name where they start.
struct LineCounter<R> {
    inner: R,
    lines: Rc<Cell<u64>>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let newlines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.lines.set(self.lines.get() + newlines);
        Ok(n)
    }
}

/// Calls `each` for every element. A syntax error ends the reading (the rest of the
/// document cannot be trusted) and is returned with its line and column; problems of
/// single elements are the caller's to report through `each`.
pub fn for_each<R: BufRead>(
    input: R,
    layout: JsonLayout,
    each: &mut dyn FnMut(Result<(Value, Location), RecordError>),
) -> Result<(), RecordError> {
    match layout {
        JsonLayout::Ndjson => ndjson(input, each),
        JsonLayout::Array | JsonLayout::Nested(_) => {
            let lines = Rc::new(Cell::new(1));
            let reader = LineCounter {
                inner: input,
                lines: lines.clone(),
            };
            let mut de = serde_json::Deserializer::from_reader(reader);
            let result = match layout {
                JsonLayout::Nested(key) => de::Deserializer::deserialize_map(
                    &mut de,
                    Nested {
                        key,
                        each,
                        lines: &lines,
                    },
                ),
                _ => de::Deserializer::deserialize_seq(
                    &mut de,
                    Elements {
                        path: "$".into(),
                        each,
                        lines: &lines,
                    },
                ),
            };
            result.and_then(|()| de.end()).map_err(|e| syntax_error(&e))
        }
    }
}

fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split(" at line").next().unwrap_or(&text).to_string()
}

/// One sentence for a document that cannot be read past this point.
fn syntax_error(err: &serde_json::Error) -> RecordError {
    use serde_json::error::Category;
    let reason = match err.classify() {
        Category::Eof => "the JSON ends early: the file is truncated".to_string(),
        Category::Io => format!("cannot read the file: {}", without_position(err)),
        Category::Syntax => format!(
            "invalid JSON at column {}: {}",
            err.column(),
            without_position(err)
        ),
        Category::Data => without_position(err),
    };
    RecordError::new(
        Location::Line {
            line: err.line() as u64,
        },
        None,
        reason,
    )
}

fn ndjson<R: BufRead>(
    input: R,
    each: &mut dyn FnMut(Result<(Value, Location), RecordError>),
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
        each(match serde_json::from_str::<Value>(text) {
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

struct Elements<'a> {
    path: String,
    each: &'a mut dyn FnMut(Result<(Value, Location), RecordError>),
    lines: &'a Rc<Cell<u64>>,
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of user objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0u64;
        loop {
            let line = self.lines.get();
            let Some(value) = seq.next_element::<Value>()? else {
                return Ok(());
            };
            let path = format!("{}[{index}]", self.path);
            (self.each)(Ok((value, Location::JsonPath { path, line })));
            index += 1;
        }
    }
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

struct Nested<'a> {
    key: &'static str,
    each: &'a mut dyn FnMut(Result<(Value, Location), RecordError>),
    lines: &'a Rc<Cell<u64>>,
}

impl<'de> Visitor<'de> for Nested<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with \"{}\"", self.key)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.key && !found {
                found = true;
                map.next_value_seed(Elements {
                    path: format!("$.{key}"),
                    each: &mut *self.each,
                    lines: self.lines,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(de::Error::custom(format!(
                "expected a \"{}\" array",
                self.key
            )))
        }
    }
}
