//! PLACEHOLDER until the converter lands: the types the mapping and loader use.
use crate::target::pgtype::PgType;
use crate::value::Value;
use bytes::{BufMut, BytesMut};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Epoch {
    Seconds,
    Millis,
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonMode {
    Parse,
    String,
}
#[derive(Debug, Clone)]
pub struct Rules {
    pub trim: bool,
    pub lowercase: bool,
    pub map: Option<HashMap<String, String>>,
    pub empty_as_null: bool,
    pub default: Option<String>,
    pub required: bool,
    pub epoch: Option<Epoch>,
    pub timezone: chrono_tz::Tz,
    pub json: JsonMode,
    pub split: Option<String>,
}
impl Default for Rules {
    fn default() -> Self {
        Rules {
            trim: false,
            lowercase: false,
            map: None,
            empty_as_null: false,
            default: None,
            required: false,
            epoch: None,
            timezone: chrono_tz::UTC,
            json: JsonMode::Parse,
            split: None,
        }
    }
}
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub name: String,
    pub ty: PgType,
    pub not_null: bool,
    pub rules: Rules,
}
#[derive(Debug)]
pub struct Reject {
    pub reason: String,
}
#[derive(Default)]
pub struct Converter {}
impl Converter {
    pub fn new() -> Self {
        Converter {}
    }
    pub fn encode(&mut self, value: Value<'_>, col: &ColumnPlan, out: &mut BytesMut) -> Result<(), Reject> {
        let text = match value {
            Value::Null => {
                out.put_i32(-1);
                return Ok(());
            }
            Value::Int(i) => i.to_string(),
            Value::Text(t) => String::from_utf8_lossy(t).into_owned(),
            _ => return Err(Reject { reason: "placeholder".into() }),
        };
        match col.ty {
            PgType::Int4 => {
                let v: i32 = text.trim().parse().map_err(|_| Reject { reason: "not int".into() })?;
                out.put_i32(4);
                out.put_i32(v);
            }
            PgType::Int8 => {
                let v: i64 = text.trim().parse().map_err(|_| Reject { reason: "not int".into() })?;
                out.put_i32(8);
                out.put_i64(v);
            }
            _ => {
                out.put_i32(text.len() as i32);
                out.put_slice(text.as_bytes());
            }
        }
        Ok(())
    }
}
pub fn describe(value: Value<'_>) -> String {
    format!("{value:?}")
}
