//! What the converter's unit tests share: column plans, and `enc`, which encodes one value
//! after other bytes and checks the field's length prefix, and that a reject leaves the
//! buffer exactly as it was.
use bytes::BytesMut;

use super::{ColumnPlan, Converter, Reject, Rules};
use crate::pg::PgType;
use crate::value::Value;

const PREFIX: &[u8] = b"\x00\x03xyz";

pub(crate) fn col(ty: PgType) -> ColumnPlan {
    ColumnPlan {
        ty,
        not_null: false,
        rules: Rules::default(),
    }
}

pub(crate) fn col_r(ty: PgType, rules: Rules) -> ColumnPlan {
    ColumnPlan { rules, ..col(ty) }
}

/// Encode into a buffer that already holds bytes; on Err, check it is untouched.
pub(crate) fn enc_with(
    cv: &mut Converter,
    v: Value<'_>,
    c: &ColumnPlan,
) -> Result<Vec<u8>, Reject> {
    let mut out = BytesMut::from(PREFIX);
    match cv.encode(v, c, &mut out) {
        Ok(()) => {
            assert_eq!(&out[..PREFIX.len()], PREFIX);
            let field = out[PREFIX.len()..].to_vec();
            // length prefix must match the payload
            let len = i32::from_be_bytes(field[..4].try_into().unwrap());
            if len >= 0 {
                assert_eq!(len as usize, field.len() - 4, "length prefix");
            } else {
                assert_eq!(len, -1);
                assert_eq!(field.len(), 4);
            }
            Ok(field)
        }
        Err(r) => {
            assert_eq!(&out[..], PREFIX, "out changed on reject: {}", r.reason);
            assert!(!r.reason.is_empty());
            Err(r)
        }
    }
}

pub(crate) fn enc(v: Value<'_>, c: &ColumnPlan) -> Result<Vec<u8>, Reject> {
    enc_with(&mut Converter::new(), v, c)
}

/// Payload of a successful non-NULL field.
pub(crate) fn ok(v: Value<'_>, ty: PgType) -> Vec<u8> {
    let f = enc(v, &col(ty)).unwrap_or_else(|r| panic!("{v:?}: {}", r.reason));
    f[4..].to_vec()
}

pub(crate) fn err(v: Value<'_>, ty: PgType) -> String {
    match enc(v, &col(ty)) {
        Ok(f) => panic!("{v:?} should be rejected, got {f:?}"),
        Err(r) => r.reason,
    }
}

pub(crate) fn t(s: &str) -> Value<'_> {
    Value::Text(s.as_bytes())
}

pub(crate) const NULL_FIELD: [u8; 4] = [0xff, 0xff, 0xff, 0xff];

pub(crate) fn text() -> PgType {
    PgType::Text { max_chars: None }
}

pub(crate) fn num(p: Option<u32>, s: Option<u32>) -> PgType {
    PgType::Numeric {
        precision: p,
        scale: s,
    }
}

pub(crate) fn arr(elem: PgType, oid: u32) -> PgType {
    PgType::Array {
        elem: Box::new(elem),
        elem_oid: oid,
    }
}
