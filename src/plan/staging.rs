//! PostgreSQL binary COPY framing: the file header, the per-row field count
//! and the trailer. Fields themselves are written by `convert::Converter`.
//! Format: <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>
use bytes::{BufMut, BytesMut};

/// The 11-byte signature that opens every binary COPY stream.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Signature, flags (0: no OIDs) and header-extension length (0).
pub fn header(out: &mut BytesMut) {
    out.extend_from_slice(SIGNATURE);
    out.put_i32(0);
    out.put_i32(0);
}

/// Start a tuple of `ncols` fields; each field follows as written by the converter.
pub fn begin_row(out: &mut BytesMut, ncols: i16) {
    out.put_i16(ncols);
}

/// End of data: a field count of -1.
pub fn trailer(out: &mut BytesMut) {
    out.put_i16(-1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_bytes() {
        let mut out = BytesMut::new();
        header(&mut out);
        assert_eq!(
            &out[..],
            b"PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        assert_eq!(out.len(), 19);
        out.clear();
        begin_row(&mut out, 3);
        assert_eq!(&out[..], &[0, 3]);
        out.clear();
        trailer(&mut out);
        assert_eq!(&out[..], &[0xff, 0xff]);
    }
}
