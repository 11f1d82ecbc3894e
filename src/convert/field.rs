//! The binary-COPY field frame around every value: an i32 big-endian byte length, then
//! the value's bytes (NULL, length -1, is written by the caller). The length is written
//! as a placeholder and patched once the value is in, so the value is encoded straight
//! into the output buffer; a value PostgreSQL cannot hold as one field is rejected.
use bytes::{BufMut, BytesMut};

use super::{Reject, Rules, Scratch, Work, write_value};
use crate::pg::PgType;
use crate::value::Value;

/// PostgreSQL cannot hold a field larger than this (MaxAllocSize, 1 GB - 1).
const MAX_FIELD_BYTES: usize = 0x3fff_ffff;

/// Write length prefix + value; the caller truncates `out` on error.
pub(crate) fn write_field(
    v: Value<'_>,
    ty: &PgType,
    rules: &Rules,
    elem: &mut Scratch,
    work: &mut Work,
    out: &mut BytesMut,
) -> Result<(), Reject> {
    let pos = out.len();
    out.put_i32(0);
    write_value(v, ty, rules, elem, work, out)?;
    let len = out.len() - pos - 4;
    if len > MAX_FIELD_BYTES {
        return Err(Reject::new(format!(
            "value is {len} bytes; PostgreSQL cannot store a field larger than 1 GB"
        )));
    }
    if let Some(slot) = out.get_mut(pos..pos + 4) {
        slot.copy_from_slice(&(len as i32).to_be_bytes());
    }
    Ok(())
}
