//! JSON read in one pass, borrowing its strings from the body. A ServiceNow row body is about 6 KB
//! with some sixty string fields; reading it into a `serde_json::Value` made a `String` and a
//! `BTreeMap` entry for each (then dropped them all) and checked each string's UTF-8 on its own:
//! a third of the samples in ingest's own code in a profile of the benchmark (BENCHMARKS.md,
//! twenty-second sitting). Here the body's UTF-8 is checked once, strings without escapes stay
//! slices of the body, and an object is a `Vec` of its fields in the body's order.

use std::borrow::Cow;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use herald_runtime::ApiError;

use super::malformed_json;

/// A JSON value whose strings borrow from the body they were read from.
#[derive(Debug)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Fields<'a>),
}

/// An object's fields in the body's order.
#[derive(Debug)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

/// 400 `malformed_json` when `body` is not one UTF-8 JSON document.
pub fn parse(body: &[u8]) -> Result<Json<'_>, ApiError> {
    // The whole body's UTF-8 checked at once; read as text, serde_json checks no string again.
    let text = std::str::from_utf8(body).map_err(malformed_json)?;
    serde_json::from_str(text).map_err(malformed_json)
}

impl<'a> Json<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Fields<'a>> {
        match self {
            Json::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The field `key` when this is an object holding it.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object().and_then(|fields| fields.get(key))
    }
}

impl<'a> Fields<'a> {
    /// The field's value; when a key repeats, the last one, as `serde_json::Map` keeps it.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    /// The field's string, `None` when it is absent or not a string.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Json::as_str)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // JSON text cannot spell a NaN or an infinity; serde_json reads an overflowing literal as
        // an error before it gets here.
        Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((Key(key), value)) = map.next_entry::<Key<'de>, Json<'de>>()? {
            fields.push((key, value));
        }
        Ok(Json::Object(Fields(fields)))
    }
}

/// An object's key, borrowed when it has no escapes (`Cow`'s own `Deserialize` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_str(JsonVisitor)? {
            Json::Str(s) => Ok(Key(s)),
            _ => Err(de::Error::custom("an object's key must be a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// `value` as serde_json reads it, so each shape is compared with the reader it replaces.
    fn to_value(json: &Json<'_>) -> Value {
        match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(to_value).collect()),
            Json::Object(fields) => Value::Object(
                fields
                    .0
                    .iter()
                    .map(|(k, v)| (k.to_string(), to_value(v)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn reads_what_serde_json_reads_and_borrows_plain_strings() {
        let body = r#" {"a": "x", "b": {"value": "v", "n": [1, -2, 2.5, true, null]},
                        "esc\u0061ped": "line\nbreak", "a": "last", "n": null, "big": 18446744073709551615,
                        "nested": [[{"deep": "\u00e9t\u00e9"}]], "unicode": "été"} "#
            .as_bytes();
        let whole: Value = serde_json::from_slice(body).expect("json");
        let read = parse(body).expect("json");
        assert_eq!(to_value(&read), whole);
        let fields = read.as_object().expect("object");
        assert_eq!(fields.str("a"), Some("last"));
        assert!(matches!(
            fields.get("unicode"),
            Some(Json::Str(Cow::Borrowed("été")))
        ));
        assert_eq!(fields.str("escaped"), Some("line\nbreak"));
        assert!(fields.get("n").is_some_and(Json::is_null));
        assert_eq!(fields.get("big").and_then(Json::as_u64), Some(u64::MAX));
        assert_eq!(fields.str("big"), None);
        assert_eq!(
            read.get("b")
                .and_then(|b| b.get("n"))
                .and_then(Json::as_array)
                .map(<[_]>::len),
            Some(5)
        );
        assert!(fields.get("missing").is_none());
    }

    #[test]
    fn every_shipped_servicenow_fixture_reads_as_serde_json_reads_it() {
        let dir = herald_testkit::repo_root().join("tests/fixtures/servicenow");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).expect("the fixtures directory") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let body = std::fs::read(&path).expect("a fixture");
                let whole: Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(to_value(&parse(&body).expect("json")), whole, "{path:?}");
                read += 1;
            }
        }
        assert!(read >= 5, "only {read} fixtures in {dir:?}");
    }

    #[test]
    fn a_body_that_is_not_one_json_document_is_malformed() {
        for bad in [
            &b"{\"a\": "[..],
            b"",
            b"{\"a\": \"\xff\"}",
            b"[1,]",
            b"{} {}",
            b"{\"a\": 1e999}",
        ] {
            let err = parse(bad).expect_err("malformed");
            assert_eq!(err.code, "malformed_json", "{bad:?}");
            assert!(
                err.message
                    .starts_with("the body is not valid UTF-8 JSON: ")
            );
        }
        // Nesting deeper than serde_json's limit is refused, not followed down the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse(deep.as_bytes()).expect_err("too deep").code,
            "malformed_json"
        );
        for good in [&b"[]"[..], b"\"text\"", b"3", b"null"] {
            let value = parse(good).expect("json");
            assert!(value.as_object().is_none(), "{good:?}");
        }
    }
}
