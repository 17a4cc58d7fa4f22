//! A batch's rows bound column by column, each column one PostgreSQL array literal that the
//! statement reads with `unnest($1::text[], $2::bigint[], …)`.
//!
//! A statement that takes its batch this way has the same text whatever the batch's size, so each
//! connection parses and plans it once and keeps it prepared: with a `VALUES` list per batch,
//! PostgreSQL parsed, analysed and planned a full batch's 10 KiB of text every time, a quarter of
//! its work in a backfill. Each row is written straight into the columns' literals as serde hands
//! its fields over ([`rows`]). The rows went as one JSON list before (`json_to_recordset`), which
//! PostgreSQL reads twice, once to validate it for the `::json` cast and again to make the rows,
//! with a hash table for each row's fields: 256 rows of 24 columns took it 6.3–7.6 ms that way and
//! 3.4–3.6 ms from array literals (BENCHMARKS, twenty-ninth sitting). Bytes go beside the columns
//! in [`crate::store::Blobs`].

mod rows;

use serde::Serialize;

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
/// nothing (`NULL`); anything else, a number that is not finite included, is refused rather than
/// bound under the wrong column or as something else.
pub fn columns<T: Serialize>(rows: &[T], columns: &[Column]) -> Result<Vec<String>, sqlx::Error> {
    let mut literals = rows::Columns::new(columns, rows.len());
    for row in rows {
        literals
            .write(row)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    }
    Ok(literals.finish())
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
            Row {
                id: r"C:\temp",
                at: 0,
                amount: 3.0,
                team: Some("ops, east"),
            },
        ];
        let literals = columns(&rows, COLUMNS).expect("encodes");
        assert_eq!(
            literals,
            [
                r#"{"a \"quoted\", {braced} \\ one","","C:\\temp"}"#,
                r#"{"1764800000000","-3","0"}"#,
                r#"{"12.5","0.1","3"}"#,
                r#"{NULL,"NULL","ops, east"}"#,
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
            missing
                .to_string()
                .contains("row 0 has the field team, which is not one of the 3 columns bound"),
            "{missing}"
        );
        let renamed = [
            ("id", "text"),
            ("at", "bigint"),
            ("amount", "float8"),
            ("crew", "text"),
        ];
        let unknown = columns(&rows, &renamed).expect_err("no field crew");
        assert!(
            unknown
                .to_string()
                .contains("has the field team, which is not one"),
            "{unknown}"
        );
        let short = columns(
            &rows,
            &[
                ("id", "text"),
                ("at", "bigint"),
                ("amount", "float8"),
                ("team", "text"),
                ("crew", "text"),
            ],
        )
        .expect_err("no field crew");
        assert!(
            short.to_string().contains("row 0 has no field crew"),
            "{short}"
        );
    }

    #[test]
    fn fields_go_to_their_columns_whatever_their_order() {
        let rows = [Row {
            id: "w",
            at: 7,
            amount: 2.25,
            team: Some("ops"),
        }];
        let reordered = [
            ("team", "text"),
            ("amount", "float8"),
            ("id", "text"),
            ("at", "bigint"),
        ];
        assert_eq!(
            columns(&rows, &reordered).expect("encodes"),
            [r#"{"ops"}"#, r#"{"2.25"}"#, r#"{"w"}"#, r#"{"7"}"#]
        );
    }

    #[test]
    fn a_flattened_row_binds_its_fields_and_those_around_it() {
        let rows = [crate::store::Placed {
            row: Row {
                id: "w",
                at: 1,
                amount: 0.5,
                team: None,
            },
            payload_at: 1,
            payload_len: 913,
        }];
        let mut placed = COLUMNS.to_vec();
        placed.extend([("payload_at", "int"), ("payload_len", "int")]);
        assert_eq!(
            columns(&rows, &placed).expect("encodes"),
            [
                r#"{"w"}"#,
                r#"{"1"}"#,
                r#"{"0.5"}"#,
                "{NULL}",
                r#"{"1"}"#,
                r#"{"913"}"#
            ]
        );
    }

    #[test]
    fn numbers_read_back_as_the_same_numbers() {
        let floats = [
            0.1 + 0.2,
            1e300,
            5e-324,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            123_456.789,
        ];
        for amount in floats {
            let rows = [Row {
                id: "w",
                at: i64::MIN,
                amount,
                team: None,
            }];
            let literals = columns(&rows, COLUMNS).expect("encodes");
            let text = literals[2].trim_matches(|c| "{}\"".contains(c));
            let back: f64 = text.parse().expect("a number");
            assert_eq!(
                back.to_bits(),
                amount.to_bits(),
                "{amount} written as {text}"
            );
            assert_eq!(literals[1], format!("{{\"{}\"}}", i64::MIN));
        }
    }

    #[test]
    fn what_is_not_a_finite_number_or_a_value_is_refused() {
        for amount in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let rows = [Row {
                id: "w",
                at: 1,
                amount,
                team: None,
            }];
            let refused = columns(&rows, COLUMNS).expect_err("not finite");
            assert!(
                refused
                    .to_string()
                    .contains("row 0 has amount that is not a finite number"),
                "{refused}"
            );
        }
        #[derive(Serialize)]
        struct Nested {
            id: &'static str,
            tags: Vec<&'static str>,
        }
        let rows = [Nested {
            id: "w",
            tags: vec!["a"],
        }];
        let refused = columns(&rows, &[("id", "text"), ("tags", "text")]).expect_err("a list");
        assert!(
            refused
                .to_string()
                .contains("row 0 has tags that is a list"),
            "{refused}"
        );
        let refused = columns(&[1, 2], &[("id", "text")]).expect_err("not a row");
        assert!(
            refused
                .to_string()
                .contains("row 0 is not a set of named fields"),
            "{refused}"
        );
    }

    #[test]
    fn other_plain_values_are_text_in_quotes() {
        #[derive(Serialize)]
        enum Kind {
            Incident,
        }
        #[derive(Serialize)]
        struct Plain {
            big: u64,
            yes: bool,
            letter: char,
            kind: Kind,
            nothing: (),
        }
        let rows = [Plain {
            big: u64::MAX,
            yes: true,
            letter: '"',
            kind: Kind::Incident,
            nothing: (),
        }];
        let plain = [
            ("big", "numeric"),
            ("yes", "boolean"),
            ("letter", "text"),
            ("kind", "text"),
            ("nothing", "text"),
        ];
        assert_eq!(
            columns(&rows, &plain).expect("encodes"),
            [
                format!("{{\"{}\"}}", u64::MAX),
                r#"{"true"}"#.to_string(),
                r#"{"\""}"#.to_string(),
                r#"{"Incident"}"#.to_string(),
                "{NULL}".to_string(),
            ]
        );
    }

    #[test]
    fn unnest_numbers_its_parameters_from_the_first() {
        assert_eq!(
            unnest(3, &COLUMNS[..2], "v"),
            "unnest($3::text[], $4::bigint[]) AS v (id, at)"
        );
    }
}
