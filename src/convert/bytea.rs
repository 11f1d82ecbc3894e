//! Columns whose binary form is raw bytes: bytea (a blob or text as it is) and uuid
//! (16 bytes, from hex text in the usual spellings or from a 16-byte blob).
use bytes::BytesMut;

use super::reject::wrong_type;
use super::{Reject, describe};
use crate::pg::PgType;
use crate::value::Value;

/// A bytea column: blobs and text go in byte for byte.
pub(crate) fn write_bytea(v: Value<'_>, ty: &PgType, out: &mut BytesMut) -> Result<(), Reject> {
    match v {
        Value::Blob(b) | Value::Text(b) => out.extend_from_slice(b),
        _ => return Err(wrong_type(v, ty)),
    }
    Ok(())
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Standard (8-4-4-4-12), braced, or 32 hex digits without dashes.
fn parse_uuid(t: &[u8]) -> Option<[u8; 16]> {
    let t = t.trim_ascii();
    let t = match (t.first(), t.last()) {
        (Some(b'{'), Some(b'}')) => t.get(1..t.len() - 1)?,
        _ => t,
    };
    let dashed = match t.len() {
        36 => true,
        32 => false,
        _ => return None,
    };
    let mut out = [0u8; 16];
    let mut n = 0usize;
    for (i, &c) in t.iter().enumerate() {
        if dashed && matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let h = hex_val(c)?;
        let slot = out.get_mut(n / 2)?;
        *slot |= if n.is_multiple_of(2) { h << 4 } else { h };
        n += 1;
    }
    (n == 32).then_some(out)
}

pub(crate) fn to_uuid(v: Value<'_>, ty: &PgType) -> Result<[u8; 16], Reject> {
    match v {
        Value::Text(t) => parse_uuid(t).ok_or_else(|| {
            Reject::new(format!(
                "{} is not a UUID (expected 8-4-4-4-12 hex digits)",
                describe(v)
            ))
        }),
        Value::Blob(b) => <[u8; 16]>::try_from(b).map_err(|_| {
            Reject::new(format!(
                "binary data of {} bytes is not a UUID (needs exactly 16 bytes)",
                b.len()
            ))
        }),
        _ => Err(wrong_type(v, ty)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::testing::{err, ok, t};

    #[test]
    fn bytea_and_uuid() {
        assert_eq!(ok(Value::Blob(b"\x00\xff"), PgType::Bytea), b"\x00\xff");
        assert_eq!(ok(Value::Text(b"a\xffb"), PgType::Bytea), b"a\xffb");
        err(Value::Int(1), PgType::Bytea);
        let want: Vec<u8> = (0..16).map(|i| (i * 17) as u8).collect();
        for s in [
            "00112233-4455-6677-8899-aabbccddeeff",
            "{00112233-4455-6677-8899-AABBCCDDEEFF}",
            "00112233445566778899aabbccddeeff",
            " 00112233-4455-6677-8899-aabbccddeeff ",
        ] {
            assert_eq!(ok(t(s), PgType::Uuid), want, "{s}");
        }
        assert_eq!(ok(Value::Blob(&want), PgType::Uuid), want);
        for s in [
            "00112233-4455-6677-8899-aabbccddeef",
            "00112233-4455-6677-8899-aabbccddeefg",
            "0011223344-55-6677-8899-aabbccddeeff",
            "{00112233445566778899aabbccddeeff",
            "{}",
            "{",
        ] {
            assert!(err(t(s), PgType::Uuid).contains("not a UUID"), "{s}");
        }
        err(Value::Blob(b"short"), PgType::Uuid);
    }
}
