//! PLACEHOLDER binary COPY framing.
use bytes::{BufMut, BytesMut};
pub fn header(out: &mut BytesMut) {
    out.put_slice(b"PGCOPY\n\xff\r\n\0");
    out.put_i32(0);
    out.put_i32(0);
}
pub fn begin_row(out: &mut BytesMut, ncols: i16) {
    out.put_i16(ncols);
}
pub fn trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}
