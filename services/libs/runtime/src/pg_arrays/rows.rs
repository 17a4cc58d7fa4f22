//! A row written straight into its columns' array literals, field by field, as serde hands the
//! fields over: no value tree is built for a row on the way (a stage binds a batch's rows of every
//! list this way, some ten a win for spotlight's figures).

use std::fmt::{self, Display, Write as _};

use serde::{
    Serialize,
    ser::{self, Impossible, SerializeMap, SerializeStruct},
};

use super::Column;

/// Why a row could not be bound; becomes the error [`super::columns`] returns.
#[derive(Debug)]
pub(super) struct Refused(pub(super) String);

impl Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl ser::Error for Refused {
    fn custom<T: Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// The literals a batch's columns are being written into, and where the current row stands.
pub(super) struct Columns<'c> {
    columns: &'c [Column],
    literals: Vec<String>,
    /// The row being written, counted from 0.
    row: usize,
    /// Which columns the current row has written.
    written: Vec<bool>,
    /// A map's key, kept until its value comes (a row with a flattened part is written as a map).
    key: String,
    /// The column after the one last written.
    next: usize,
}

impl<'c> Columns<'c> {
    pub(super) fn new(columns: &'c [Column], rows: usize) -> Self {
        Self {
            columns,
            literals: columns
                .iter()
                .map(|_| String::with_capacity(rows * 8 + 2))
                .collect(),
            row: 0,
            written: vec![false; columns.len()],
            key: String::new(),
            next: 0,
        }
    }

    /// Writes `row` as the next element of every column.
    pub(super) fn write<T: Serialize>(&mut self, row: &T) -> Result<(), Refused> {
        self.written.iter_mut().for_each(|w| *w = false);
        let written =
            row.serialize(&mut *self)
                .and_then(|()| match self.written.iter().position(|w| !w) {
                    Some(missing) => {
                        Err(Refused(format!("has no field {}", self.columns[missing].0)))
                    }
                    None => Ok(()),
                });
        let row_at = self.row;
        self.row += 1;
        written.map_err(|Refused(what)| Refused(format!("row {row_at} {what}")))
    }

    /// Closes every literal: `}` after the last element, `{}` when there were no rows.
    pub(super) fn finish(mut self) -> Vec<String> {
        for literal in &mut self.literals {
            if self.row == 0 {
                literal.push('{');
            }
            literal.push('}');
        }
        self.literals
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Refused> {
        // The fields mostly come in the columns' order, so the column after the last one written
        // is tried first.
        let next = self.next % self.columns.len().max(1);
        let found = match self.columns.get(next) {
            Some((column, _)) if *column == name => Some(next),
            _ => self.columns.iter().position(|(column, _)| *column == name),
        };
        let Some(at) = found else {
            return Err(Refused(format!(
                "has the field {name}, which is not one of the {} columns bound",
                self.columns.len()
            )));
        };
        self.next = at + 1;
        if std::mem::replace(&mut self.written[at], true) {
            return Err(Refused(format!("has the field {name} twice")));
        }
        let literal = &mut self.literals[at];
        literal.push(if self.row == 0 { '{' } else { ',' });
        value
            .serialize(Element(literal))
            .map_err(|Refused(what)| Refused(format!("has {name} {what}")))
    }
}

impl SerializeStruct for &mut Columns<'_> {
    type Ok = ();
    type Error = Refused;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Refused> {
        Ok(())
    }
}

impl SerializeMap for &mut Columns<'_> {
    type Ok = ();
    type Error = Refused;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Refused> {
        // Written as a text element would be, and unquoted when its value comes: a column's name
        // has no quotes or backslashes to escape, and a key that is not text names no column.
        self.key.clear();
        key.serialize(Element(&mut self.key))
            .map_err(|_| Refused("has a field whose name is not text".to_string()))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
        let key = std::mem::take(&mut self.key);
        let name = key
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(&key);
        let written = self.field(name, value);
        self.key = key;
        written
    }

    fn end(self) -> Result<(), Refused> {
        Ok(())
    }
}

/// Serializer methods that refuse what they are handed, with `why`.
macro_rules! refuse {
    ($why:expr; $($method:ident($($arg:ty),*) -> $ok:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ok, Refused> {
            Err(Refused($why.to_string()))
        })*
    };
}

const NOT_A_ROW: &str = "is not a set of named fields";

impl ser::Serializer for &mut Columns<'_> {
    type Ok = ();
    type Error = Refused;
    type SerializeSeq = Impossible<(), Refused>;
    type SerializeTuple = Impossible<(), Refused>;
    type SerializeTupleStruct = Impossible<(), Refused>;
    type SerializeTupleVariant = Impossible<(), Refused>;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Refused>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Refused> {
        Ok(self)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self, Refused> {
        Ok(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        value.serialize(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Refused> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Refused> {
        Err(Refused(NOT_A_ROW.to_string()))
    }

    refuse! { NOT_A_ROW;
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

/// One element of a column: `NULL`, or the value in double quotes with `\` and `"` escaped, which
/// PostgreSQL's array input reads back exactly whatever else the text holds (commas, braces,
/// spaces, newlines).
struct Element<'a>(&'a mut String);

impl Element<'_> {
    fn quoted(self, value: impl Display) -> Result<(), Refused> {
        self.0.push('"');
        // Writing into a String cannot fail.
        let _ = write!(self.0, "{value}");
        self.0.push('"');
        Ok(())
    }

    fn float(self, value: f64) -> Result<(), Refused> {
        if !value.is_finite() {
            return Err(Refused(format!("that is not a finite number ({value})")));
        }
        // Display gives the shortest digits that read back as the same number.
        self.quoted(value)
    }

    fn null(self) -> Result<(), Refused> {
        self.0.push_str("NULL");
        Ok(())
    }
}

/// Serializer methods that write what they are handed as it displays, in quotes.
macro_rules! quote {
    ($($method:ident($arg:ty);)*) => {
        $(fn $method(self, v: $arg) -> Result<(), Refused> {
            self.quoted(v)
        })*
    };
}

/// A list or a set of fields inside a row has no column to go to.
const NOT_A_VALUE: &str = "that is a list or a set of fields, not a value";

impl ser::Serializer for Element<'_> {
    type Ok = ();
    type Error = Refused;
    type SerializeSeq = Impossible<(), Refused>;
    type SerializeTuple = Impossible<(), Refused>;
    type SerializeTupleStruct = Impossible<(), Refused>;
    type SerializeTupleVariant = Impossible<(), Refused>;
    type SerializeMap = Impossible<(), Refused>;
    type SerializeStruct = Impossible<(), Refused>;
    type SerializeStructVariant = Impossible<(), Refused>;

    quote! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
    }
    fn serialize_f32(self, v: f32) -> Result<(), Refused> {
        self.float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Refused> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Refused> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Refused> {
        self.0.reserve(v.len() + 2);
        self.0.push('"');
        if v.contains(['"', '\\']) {
            for c in v.chars() {
                if c == '"' || c == '\\' {
                    self.0.push('\\');
                }
                self.0.push(c);
            }
        } else {
            self.0.push_str(v);
        }
        self.0.push('"');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Refused> {
        self.null()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Refused> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Refused> {
        self.null()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Refused> {
        self.null()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Refused> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Refused> {
        Err(Refused(NOT_A_VALUE.to_string()))
    }

    refuse! { NOT_A_VALUE;
        serialize_bytes(&[u8]) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}
