//! Rows of an export, JSON lines or a ServiceNow CSV list export, read from a byte offset so a
//! run resumes where its checkpoint says.

use std::{
    fs::File,
    io::{BufRead, BufReader, Seek, SeekFrom},
};

use anyhow::Context;

use super::{Args, BackfillSource, Checkpoint, Format};

/// One row ready to send, and where it came from.
pub struct Row {
    pub line: u64,
    pub body: Vec<u8>,
}

/// Reads rows from a position, JSON lines or CSV.
pub enum Reader {
    Lines {
        reader: BufReader<File>,
        offset: u64,
        line: u64,
    },
    Csv {
        reader: csv::Reader<File>,
        base: u64,
        header: Vec<String>,
        table: String,
        line: u64,
    },
}

impl Reader {
    /// Offset and line number of the next row.
    pub fn position(&self) -> (u64, u64) {
        match self {
            Reader::Lines { offset, line, .. } => (*offset, *line),
            Reader::Csv {
                reader, base, line, ..
            } => (base + reader.position().byte(), *line),
        }
    }

    /// The next row; `Err` for a row that cannot be read (counted as rejected, not fatal).
    pub fn next_row(&mut self) -> anyhow::Result<Option<Result<Row, (u64, String)>>> {
        match self {
            Reader::Lines {
                reader,
                offset,
                line,
            } => loop {
                let mut buf = Vec::new();
                let n = reader.read_until(b'\n', &mut buf)?;
                if n == 0 {
                    return Ok(None);
                }
                *offset += n as u64;
                *line += 1;
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Ok(Row {
                    line: *line,
                    body: buf,
                })));
            },
            Reader::Csv {
                reader,
                header,
                table,
                line,
                ..
            } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => Ok(None),
                    Ok(true) => {
                        *line += 1;
                        Ok(Some(
                            csv_body(header, table, &record)
                                .map(|body| Row { line: *line, body })
                                .map_err(|message| (*line, message)),
                        ))
                    }
                    Err(e) => {
                        *line += 1;
                        Ok(Some(Err((*line, format!("unreadable CSV row: {e}")))))
                    }
                }
            }
        }
    }
}

/// A CSV row as Herald's ServiceNow body: every column a string field of `record`, as the Table
/// API gives them.
fn csv_body(header: &[String], table: &str, record: &csv::StringRecord) -> Result<Vec<u8>, String> {
    let mut row = serde_json::Map::new();
    for (name, value) in header.iter().zip(record.iter()) {
        row.insert(name.clone(), serde_json::Value::String(value.to_string()));
    }
    let field = |name: &str| {
        row.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let sys_id = field("sys_id").ok_or("the row has no sys_id")?;
    let mod_count = field("sys_mod_count").ok_or("the row has no sys_mod_count")?;
    let table = field("sys_class_name")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| table.to_string());
    serde_json::to_vec(&serde_json::json!({
        "table": table,
        "sys_id": sys_id,
        "sys_mod_count": mod_count,
        "record": row,
    }))
    .map_err(|e| e.to_string())
}

pub fn open(
    args: &Args,
    resume: Option<&Checkpoint>,
) -> anyhow::Result<(Reader, Option<Vec<String>>)> {
    let mut file =
        File::open(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let csv_format = match args.format {
        Format::Csv => true,
        Format::Jsonl => false,
        Format::Auto => args
            .file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    if !csv_format {
        let (offset, line) = resume.map_or((0, 0), |c| (c.offset, c.line));
        file.seek(SeekFrom::Start(offset))?;
        return Ok((
            Reader::Lines {
                reader: BufReader::with_capacity(256 * 1024, file),
                offset,
                line,
            },
            None,
        ));
    }
    if args.source != BackfillSource::Servicenow {
        anyhow::bail!("CSV exports are read as ServiceNow rows: use --source servicenow");
    }
    let (header, base, line) = match resume.and_then(|c| c.csv_header.clone().map(|h| (h, c))) {
        Some((header, c)) => (header, c.offset, c.line),
        None => {
            let mut reader = csv::ReaderBuilder::new().from_reader(&mut file);
            let header: Vec<String> = reader
                .headers()
                .context("the CSV file has no header row")?
                .iter()
                .map(str::to_string)
                .collect();
            let base = reader.position().byte();
            (header, base, 1)
        }
    };
    for needed in ["sys_id", "sys_mod_count"] {
        if !header.iter().any(|h| h == needed) {
            anyhow::bail!(
                "the CSV export has no {needed} column: export with the sys_id and sys_mod_count columns (and the fields Herald reads: number, state, priority, opened_at, resolved_at, …)"
            );
        }
    }
    file.seek(SeekFrom::Start(base))?;
    let reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    Ok((
        Reader::Csv {
            reader,
            base,
            header: header.clone(),
            table: args.table.clone(),
            line,
        },
        Some(header),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_servicenow_bodies() {
        let header: Vec<String> = ["sys_id", "sys_mod_count", "number", "state"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let record = csv::StringRecord::from(vec!["abc", "7", "INC1", "6"]);
        let body: serde_json::Value =
            serde_json::from_slice(&csv_body(&header, "incident", &record).expect("body"))
                .expect("json");
        assert_eq!(body["table"], "incident");
        assert_eq!(body["sys_id"], "abc");
        assert_eq!(body["sys_mod_count"], "7");
        assert_eq!(body["record"]["state"], "6");
        let short = csv::StringRecord::from(vec!["abc"]);
        assert!(csv_body(&header, "incident", &short).is_err());
    }
}
