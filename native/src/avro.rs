//! A strict Avro binary decoder driven by the schema's JSON, as the contracts define it.
//!
//! Strict where the format leaves room: negative lengths, out-of-range union branches,
//! over-long varints, invalid UTF-8 and short input are errors, so anything accepted here
//! also decodes under fastavro, which every Python consumer uses.

use serde_json::Value as Json;
use std::collections::HashMap;

#[derive(Clone)]
pub enum Schema {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Record(Vec<(String, Schema)>),
    Enum(usize),
    Array(Box<Schema>),
    Map(Box<Schema>),
    Union(Vec<Schema>),
    Fixed(usize),
}

/// A decoded datum. The body is decoded in full to prove it matches its schema; the rules
/// read only some fields, hence the allowance.
#[allow(dead_code)]
pub enum Value {
    Null,
    Boolean(bool),
    Long(i64),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Record(Vec<Value>),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Schema {
    pub fn parse(json: &str) -> Result<Schema, String> {
        let doc: Json = serde_json::from_str(json).map_err(|e| format!("schema is not JSON: {e}"))?;
        parse(&doc, "", &mut HashMap::new())
    }

    /// The fields of a record schema, by name, in wire order.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        match self {
            Schema::Record(fields) => fields.iter().position(|(n, _)| n == name),
            _ => None,
        }
    }

    /// The record schema inside a field of type `["null", record]` or `record`.
    pub fn record_field(&self, index: usize) -> Option<&Schema> {
        let Schema::Record(fields) = self else { return None };
        match &fields.get(index)?.1 {
            r @ Schema::Record(_) => Some(r),
            Schema::Union(branches) => branches.iter().find(|b| matches!(b, Schema::Record(_))),
            _ => None,
        }
    }
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

fn parse(doc: &Json, namespace: &str, named: &mut HashMap<String, Schema>) -> Result<Schema, String> {
    match doc {
        Json::String(name) => primitive(name)
            .or_else(|| named.get(&full_name(name, namespace)).cloned())
            .or_else(|| named.get(name).cloned())
            .ok_or_else(|| format!("unknown type {name:?}")),
        Json::Array(branches) => Ok(Schema::Union(
            branches.iter().map(|b| parse(b, namespace, named)).collect::<Result<_, _>>()?,
        )),
        Json::Object(object) => {
            let kind = object.get("type").ok_or("a schema object without \"type\"")?;
            let name = object.get("name").and_then(Json::as_str).unwrap_or("");
            let namespace = object.get("namespace").and_then(Json::as_str).unwrap_or(namespace);
            let schema = match kind.as_str() {
                Some("record") | Some("error") => {
                    let fields = object.get("fields").and_then(Json::as_array).ok_or("a record without fields")?;
                    let mut parsed = Vec::with_capacity(fields.len());
                    for field in fields {
                        let field_name = field.get("name").and_then(Json::as_str).ok_or("a field without a name")?;
                        let field_type = field.get("type").ok_or("a field without a type")?;
                        parsed.push((field_name.to_string(), parse(field_type, namespace, named)?));
                    }
                    Schema::Record(parsed)
                }
                Some("enum") => Schema::Enum(object.get("symbols").and_then(Json::as_array).map_or(0, Vec::len)),
                Some("array") => Schema::Array(Box::new(parse(object.get("items").ok_or("an array without items")?, namespace, named)?)),
                Some("map") => Schema::Map(Box::new(parse(object.get("values").ok_or("a map without values")?, namespace, named)?)),
                Some("fixed") => Schema::Fixed(object.get("size").and_then(Json::as_u64).ok_or("a fixed without size")? as usize),
                _ => return parse(kind, namespace, named), // {"type": "long", "logicalType": ...}
            };
            if !name.is_empty() {
                named.insert(full_name(name, namespace), schema.clone());
            }
            Ok(schema)
        }
        other => Err(format!("not a schema: {other}")),
    }
}

fn primitive(name: &str) -> Option<Schema> {
    Some(match name {
        "null" => Schema::Null,
        "boolean" => Schema::Boolean,
        "int" => Schema::Int,
        "long" => Schema::Long,
        "float" => Schema::Float,
        "double" => Schema::Double,
        "bytes" => Schema::Bytes,
        "string" => Schema::String,
        _ => return None,
    })
}

pub struct Reader<'a> {
    data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Reader { data, pos }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!("EOFError: needs {n} bytes at offset {}, {} left", self.pos, self.remaining()));
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.take(1)?.first().unwrap();
            if shift == 63 && byte > 1 {
                return Err("varint overflows a long".into());
            }
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn length(&mut self) -> Result<usize, String> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("negative length {n}"))
    }

    pub fn value(&mut self, schema: &Schema) -> Result<Value, String> {
        Ok(match schema {
            Schema::Null => Value::Null,
            Schema::Boolean => match self.take(1)?[0] {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                b => return Err(format!("boolean byte is {b}")),
            },
            Schema::Int | Schema::Long | Schema::Enum(_) => {
                let n = self.long()?;
                if let Schema::Enum(symbols) = schema {
                    if n < 0 || n as usize >= *symbols {
                        return Err(format!("enum index {n} out of range"));
                    }
                }
                Value::Long(n)
            }
            Schema::Float => Value::Double(f32::from_le_bytes(self.take(4)?.try_into().unwrap()) as f64),
            Schema::Double => Value::Double(f64::from_le_bytes(self.take(8)?.try_into().unwrap())),
            Schema::Bytes => {
                let n = self.length()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            Schema::Fixed(n) => Value::Bytes(self.take(*n)?.to_vec()),
            Schema::String => Value::String(self.string()?),
            Schema::Record(fields) => {
                Value::Record(fields.iter().map(|(_, f)| self.value(f)).collect::<Result<_, _>>()?)
            }
            Schema::Union(branches) => {
                let index = self.long()?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| format!("union branch {index} of {}", branches.len()))?;
                self.value(branch)?
            }
            Schema::Array(items) => Value::Array(self.blocks(|r| r.value(items))?),
            Schema::Map(values) => Value::Map(self.blocks(|r| Ok((r.string()?, r.value(values)?)))?),
        })
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.length()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("UnicodeDecodeError: {e}"))
    }

    /// Arrays and maps: blocks of `count` items, a negative count followed by a byte size.
    fn blocks<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(out);
            }
            if count < 0 {
                self.length()?;
            }
            for _ in 0..count.unsigned_abs() {
                if self.remaining() == 0 {
                    return Err("EOFError: block ends early".into());
                }
                out.push(item(self)?);
            }
        }
    }
}
