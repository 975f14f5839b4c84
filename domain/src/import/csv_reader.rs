//! CSV exports: generic CSV with a header row, and the user CSVs of Okta, AWS Cognito
//! and Microsoft Entra ID, which differ only in their column names (see `fields`).

use super::{
    fields::{Field, apply, assign, finish},
    record::{Location, NormalizedUser, RecordError},
};
use std::io::Read;

/// Guesses the delimiter from the first lines: the candidate that splits them into the
/// same, largest number of fields.
pub fn sniff_delimiter(sample: &[u8]) -> u8 {
    let text = String::from_utf8_lossy(sample);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    let mut best = (b',', 0usize);
    for candidate in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = lines
            .iter()
            .map(|l| l.bytes().filter(|b| *b == candidate).count())
            .collect();
        let consistent = counts
            .first()
            .is_some_and(|first| *first > 0 && counts.iter().all(|c| c == first));
        let score = if consistent {
            counts[0] * 2
        } else {
            counts.first().copied().unwrap_or(0)
        };
        if score > best.1 {
            best = (candidate, score);
        }
    }
    best.0
}

/// What the first line's cells look like when it seems to be a user rather than a
/// header (an e-mail address, a password hash, a date or a number in a cell), said
/// by column number only.
fn first_line_kind(cells: &[String]) -> String {
    let kind = |cell: &str| -> Option<&'static str> {
        let cell = cell.trim();
        if cell.contains('@') && !cell.contains(' ') {
            Some("an e-mail address")
        } else if cell.starts_with('$') || cell.starts_with('{') {
            Some("a password hash")
        } else if !cell.is_empty()
            && cell
                .bytes()
                .all(|b| b.is_ascii_digit() || b"-:.TZ ".contains(&b))
        {
            Some("a number or date")
        } else {
            None
        }
    };
    match cells
        .iter()
        .enumerate()
        .find_map(|(i, cell)| kind(cell).map(|k| (i + 1, k)))
    {
        Some((column, kind)) => format!(
            "; line 1 looks like a user, not a header (column {column} holds what looks \
             like {kind}): add a header row naming the {} columns",
            cells.len()
        ),
        None => format!("; the header row has {} columns", cells.len()),
    }
}

/// Streams users out of a CSV file with a header row.
pub struct CsvUsers<R: Read> {
    reader: csv::Reader<R>,
    headers: Vec<String>,
    columns: Vec<Option<Field>>,
    record: csv::ByteRecord,
}

impl<R: Read> CsvUsers<R> {
    /// The line the record last returned starts on.
    pub fn line(&self) -> u64 {
        self.record.position().map_or(0, csv::Position::line)
    }

    /// Reads the header row. Fails when there is none or it names no identifying column.
    pub fn new(input: R, delimiter: u8) -> Result<Self, RecordError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(true)
            .from_reader(input);
        let header_error =
            |reason: String| RecordError::new(Location::Line { line: 1 }, None, reason);
        let raw = reader
            .byte_headers()
            .map_err(|e| header_error(format!("cannot read the header row: {e}")))?
            .clone();
        let headers: Vec<String> = raw
            .iter()
            .map(|h| {
                String::from_utf8(h.to_vec())
                    .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            })
            .collect::<Result<_, _>>()
            .map_err(|_| header_error("the header row is not valid UTF-8".into()))?;
        if headers.iter().all(|h| h.is_empty()) {
            return Err(header_error("the file has no header row".into()));
        }
        let columns = assign(&headers);
        let identifies = columns
            .iter()
            .any(|c| matches!(c, Some(Field::Id | Field::Username | Field::Email)));
        if !identifies {
            // The first line may be a user rather than a header: nothing of it is
            // quoted, only what kind of values it seems to hold.
            return Err(header_error(format!(
                "no column of the header row identifies a user: name one column id, \
                 username or email{}",
                first_line_kind(&headers)
            )));
        }
        Ok(Self {
            reader,
            headers,
            columns,
            record: csv::ByteRecord::new(),
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    fn user(&self, line: u64) -> Result<NormalizedUser, RecordError> {
        let at = Location::Line { line };
        let error = |field: &str, reason: String| RecordError::new(at.clone(), Some(field), reason);
        if self.record.len() != self.headers.len() {
            return Err(RecordError::new(
                at.clone(),
                None,
                format!(
                    "{} fields where the header has {}",
                    self.record.len(),
                    self.headers.len()
                ),
            ));
        }
        let mut user = NormalizedUser::default();
        for ((raw, header), column) in self.record.iter().zip(&self.headers).zip(&self.columns) {
            const NOT_UTF8: &str = "is not valid UTF-8 (choose the file's encoding)";
            let Ok(value) = std::str::from_utf8(raw) else {
                // Only a column that identifies the user refuses it.
                if matches!(column, Some(Field::Id | Field::Username | Field::Email)) {
                    return Err(error(header, NOT_UTF8.into()));
                }
                user.unreadable(header, NOT_UTF8);
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            user.attributes
                .insert(header.clone(), serde_json::Value::String(value.to_string()));
            if let Some(column) = column {
                apply(&mut user, *column, header, value);
            }
        }
        finish(&mut user).map_err(|reason| RecordError::new(at, None, reason))?;
        Ok(user)
    }
}

impl<R: Read> Iterator for CsvUsers<R> {
    type Item = Result<NormalizedUser, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut record = std::mem::take(&mut self.record);
        let read = self.reader.read_byte_record(&mut record);
        self.record = record;
        match read {
            Ok(false) => None,
            Ok(true) => {
                let line = self.record.position().map_or(0, csv::Position::line);
                Some(self.user(line))
            }
            Err(err) => {
                let line = err.position().map_or(0, csv::Position::line);
                Some(Err(RecordError::new(
                    Location::Line { line },
                    None,
                    format!("unreadable CSV: {err}"),
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests;
