//! One fact item as a CEL value, built once per item and shared by every
//! rule of its kind.
//!
//! `cel::to_value` would make the item a CEL map, and binding that map
//! converts it a second time (a deep copy into the interpreter's own map):
//! two hash maps and every string copied twice, for ~30 fields of which a
//! rule reads three. Here the item's serde form is read field by field into
//! a flat list of `(name, value)` — the names are the struct's `&'static str`
//! field names, the values built by `cel::to_value` once — and a field access
//! lends the value out without copying it.

use cel::common::traits::Indexer;
use cel::common::types::{CelString, Type};
use cel::common::value::{CowVal, Val};
use cel::ExecutionError;
use serde::ser::{self, Impossible, Serialize};
use std::fmt;

static FACT_TYPE: Type = Type::new_unspecified_type("opsguard.fact");

/// The item a rule sees as `credential`, `service` or `secret`.
#[derive(Debug)]
pub(crate) struct FactVal {
    fields: Vec<(&'static str, Box<dyn Val>)>,
}

impl FactVal {
    /// Convert one fact (a struct of plain values).
    pub(crate) fn new<T: Serialize>(item: &T) -> Result<FactVal, String> {
        item.serialize(Fields).map_err(|e| e.0)
    }
}

impl Clone for FactVal {
    fn clone(&self) -> Self {
        FactVal {
            fields: self
                .fields
                .iter()
                .map(|(n, v)| (*n, v.clone_as_boxed()))
                .collect(),
        }
    }
}

impl Val for FactVal {
    fn get_type(&self) -> &Type {
        &FACT_TYPE
    }

    fn cel_type() -> &'static Type {
        &FACT_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }
}

impl Indexer for FactVal {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let Some(name) = idx.downcast_ref::<CelString>().map(CelString::inner) else {
            return Err(ExecutionError::UnexpectedType {
                got: idx.get_type().name().to_owned(),
                want: "string".into(),
            });
        };
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| CowVal::Borrowed(v.as_ref()))
            .ok_or_else(|| ExecutionError::no_such_key(name))
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

#[derive(Debug)]
pub(crate) struct FieldsError(String);

impl fmt::Display for FieldsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldsError {}

impl ser::Error for FieldsError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FieldsError(msg.to_string())
    }
}

/// A serializer that only takes a struct, and reads it into a [`FactVal`].
struct Fields;

struct FieldsStruct(Vec<(&'static str, Box<dyn Val>)>);

impl ser::SerializeStruct for FieldsStruct {
    type Ok = FactVal;
    type Error = FieldsError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), FieldsError> {
        let value = cel::to_value(value).map_err(|e| FieldsError(format!("{key}: {e}")))?;
        let value: Box<dyn Val> = value
            .try_into()
            .map_err(|e: ExecutionError| FieldsError(format!("{key}: {e}")))?;
        self.0.push((key, value));
        Ok(())
    }

    fn end(self) -> Result<FactVal, FieldsError> {
        Ok(FactVal { fields: self.0 })
    }
}

fn not_a_struct<T>() -> Result<T, FieldsError> {
    Err(FieldsError("a fact must serialise as a struct".into()))
}

impl ser::Serializer for Fields {
    type Ok = FactVal;
    type Error = FieldsError;
    type SerializeSeq = Impossible<FactVal, FieldsError>;
    type SerializeTuple = Impossible<FactVal, FieldsError>;
    type SerializeTupleStruct = Impossible<FactVal, FieldsError>;
    type SerializeTupleVariant = Impossible<FactVal, FieldsError>;
    type SerializeMap = Impossible<FactVal, FieldsError>;
    type SerializeStruct = FieldsStruct;
    type SerializeStructVariant = Impossible<FactVal, FieldsError>;

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<FieldsStruct, FieldsError> {
        Ok(FieldsStruct(Vec::with_capacity(len)))
    }

    fn serialize_bool(self, _: bool) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_i8(self, _: i8) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_i16(self, _: i16) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_i32(self, _: i32) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_i64(self, _: i64) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_u8(self, _: u8) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_u16(self, _: u16) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_u32(self, _: u32) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_u64(self, _: u64) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_f32(self, _: f32) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_f64(self, _: f64) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_char(self, _: char) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_str(self, _: &str) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_none(self) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_unit(self) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<FactVal, FieldsError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<FactVal, FieldsError> {
        not_a_struct()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, FieldsError> {
        not_a_struct()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, FieldsError> {
        not_a_struct()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, FieldsError> {
        not_a_struct()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, FieldsError> {
        not_a_struct()
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, FieldsError> {
        not_a_struct()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, FieldsError> {
        not_a_struct()
    }
}
