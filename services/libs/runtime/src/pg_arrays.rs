//! A batch's rows bound column by column, each column one PostgreSQL array literal that the
//! statement reads with `unnest($1::text[], $2::bigint[], …)`.
//!
//! A statement that takes its batch this way has the same text whatever the batch's size, so each
//! connection parses and plans it once and keeps it prepared: with a `VALUES` list per batch,
//! PostgreSQL parsed, analysed and planned a full batch's 10 KiB of text every time, a quarter of
//! its work in a backfill. The rows went as one JSON list before (`json_to_recordset`), which
//! PostgreSQL reads twice, once to validate it for the `::json` cast and again to make the rows,
//! with a hash table for each row's fields: 256 rows of 24 columns took it 6.3–7.6 ms that way and
//! 3.4–3.6 ms from array literals (BENCHMARKS, twenty-ninth sitting). Bytes go beside the columns
//! in [`crate::store::Blobs`].

use serde::Serialize;
use serde_json::Value;

use crate::store::AnyQuery;

/// A column of a batch bound as an array: its name (a field of the rows) and its PostgreSQL type.
pub type Column = (&'static str, &'static str);

/// `unnest($first::type[], …) AS alias (name, …)` for `columns`, their parameters numbered on from
/// `first`.
pub fn unnest(first: usize, columns: &[Column], alias: &str) -> String {
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", first + i))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    format!(
        "unnest({}) AS {alias} ({})",
        arrays.join(", "),
        names.join(", ")
    )
}

/// `query` with `rows` bound as [`columns`], the next parameters, in the columns' order.
pub fn bind<'q, T: Serialize>(
    query: AnyQuery<'q>,
    rows: &[T],
    columns: &[Column],
) -> Result<AnyQuery<'q>, sqlx::Error> {
    Ok(self::columns(rows, columns)?
        .into_iter()
        .fold(query, |query, column| query.bind(column)))
}

/// For each of `columns`, in their order, the array literal of that field of every row: what
/// [`unnest`]'s parameters take. A row must have exactly these fields, numbers, text, booleans or
/// nothing (`NULL`); anything else is refused rather than bound under the wrong column.
pub fn columns<T: Serialize>(rows: &[T], columns: &[Column]) -> Result<Vec<String>, sqlx::Error> {
    let mut out: Vec<String> = columns
        .iter()
        .map(|_| String::with_capacity(rows.len() * 8 + 2))
        .collect();
    for (n, row) in rows.iter().enumerate() {
        let value = serde_json::to_value(row).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let Value::Object(fields) = value else {
            return Err(refused(format!("row {n} is not a set of named fields")));
        };
        if fields.len() != columns.len() {
            let names: Vec<&String> = fields.keys().collect();
            return Err(refused(format!(
                "row {n} has the fields {names:?}, not the {} columns bound",
                columns.len()
            )));
        }
        for ((name, _), literal) in columns.iter().zip(out.iter_mut()) {
            let field = fields
                .get(*name)
                .ok_or_else(|| refused(format!("row {n} has no field {name}")))?;
            literal.push(if n == 0 { '{' } else { ',' });
            element(literal, field)
                .map_err(|what| refused(format!("{name} of row {n}: {what}")))?;
        }
    }
    for literal in &mut out {
        if rows.is_empty() {
            literal.push('{');
        }
        literal.push('}');
    }
    Ok(out)
}

/// One element: `NULL`, or the value in double quotes with `\` and `"` escaped, which PostgreSQL's
/// array input reads back exactly whatever else the text holds (commas, braces, spaces, newlines).
fn element(out: &mut String, value: &Value) -> Result<(), &'static str> {
    let text = match value {
        Value::Null => {
            out.push_str("NULL");
            return Ok(());
        }
        Value::String(s) => s.as_str(),
        Value::Number(n) => {
            out.push('"');
            out.push_str(&n.to_string());
            out.push('"');
            return Ok(());
        }
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::Array(_) | Value::Object(_) => return Err("a list or a set of fields, not a value"),
    };
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(())
}

fn refused(reason: String) -> sqlx::Error {
    sqlx::Error::Encode(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row<'a> {
        id: &'a str,
        at: i64,
        amount: f64,
        team: Option<&'a str>,
    }

    const COLUMNS: &[Column] = &[
        ("id", "text"),
        ("at", "bigint"),
        ("amount", "float8"),
        ("team", "text"),
    ];

    #[test]
    fn each_column_is_one_literal_with_nulls_and_quoting() {
        let rows = [
            Row {
                id: r#"a "quoted", {braced} \ one"#,
                at: 1_764_800_000_000,
                amount: 12.5,
                team: None,
            },
            Row {
                id: "",
                at: -3,
                amount: 0.1,
                team: Some("NULL"),
            },
        ];
        let literals = columns(&rows, COLUMNS).expect("encodes");
        assert_eq!(
            literals,
            [
                r#"{"a \"quoted\", {braced} \\ one",""}"#,
                r#"{"1764800000000","-3"}"#,
                r#"{"12.5","0.1"}"#,
                r#"{NULL,"NULL"}"#,
            ]
        );
    }

    #[test]
    fn no_rows_are_empty_arrays() {
        let rows: [Row<'_>; 0] = [];
        assert_eq!(columns(&rows, COLUMNS).expect("encodes"), ["{}"; 4]);
    }

    #[test]
    fn a_row_with_other_fields_than_the_columns_is_refused() {
        let rows = [Row {
            id: "w",
            at: 1,
            amount: 1.0,
            team: None,
        }];
        let missing = columns(&rows, &COLUMNS[..3]).expect_err("a field too many");
        assert!(
            missing.to_string().contains("not the 3 columns"),
            "{missing}"
        );
        let renamed = [
            ("id", "text"),
            ("at", "bigint"),
            ("amount", "float8"),
            ("crew", "text"),
        ];
        let unknown = columns(&rows, &renamed).expect_err("no field crew");
        assert!(unknown.to_string().contains("no field crew"), "{unknown}");
    }

    #[test]
    fn unnest_numbers_its_parameters_from_the_first() {
        assert_eq!(
            unnest(3, &COLUMNS[..2], "v"),
            "unnest($3::text[], $4::bigint[]) AS v (id, at)"
        );
    }
}
