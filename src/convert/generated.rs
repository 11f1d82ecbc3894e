//! Primary keys the load generates (`generate_id`), for schemas whose application makes its
//! own ids (an ORM calling `uuid4()`): a random UUID, or a name-based one derived from the
//! table and the legacy id, so that a re-run or `--mode replace` gives a record the same id
//! (RFC 9562, versions 4 and 5). Computed per row without allocating.

use super::GenerateId;
use super::prepare::trim_text;
use crate::value::Value;
use std::io::Write as _;
use uuid::Uuid;

/// The id of the record whose legacy id is `legacy`, in the table's `namespace`; `trim`:
/// the mapping trims legacy ids (`trim_legacy_id`), so the id is named by the trimmed text.
pub(crate) fn generated_id(
    id: GenerateId,
    namespace: &Uuid,
    legacy: Value<'_>,
    trim: bool,
) -> [u8; 16] {
    match id {
        GenerateId::Uuid4 => Uuid::new_v4().into_bytes(),
        GenerateId::Uuid5 => {
            let mut buf = [0u8; 32];
            Uuid::new_v5(namespace, name(legacy, trim, &mut buf)).into_bytes()
        }
    }
}

/// The legacy id as the text its legacy column holds: the text (trimmed if the mapping
/// trims legacy ids), an integer in decimal.
fn name<'a>(legacy: Value<'a>, trim: bool, buf: &'a mut [u8; 32]) -> &'a [u8] {
    match legacy {
        Value::Text(t) | Value::Blob(t) if trim => trim_text(t),
        Value::Text(t) | Value::Blob(t) => t,
        Value::Int(n) => written(buf, format_args!("{n}")),
        Value::Float(f) => written(buf, format_args!("{f}")),
        Value::Bool(b) => {
            if b {
                b"true"
            } else {
                b"false"
            }
        }
        // Not an id at all: the row is rejected for its legacy id before this id is used.
        Value::Null | Value::Json(_) => b"",
    }
}

fn written<'a>(buf: &'a mut [u8; 32], args: std::fmt::Arguments<'_>) -> &'a [u8] {
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = cursor.write_fmt(args);
    let n = cursor.position() as usize;
    &buf[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_based_ids_are_stable_and_reproducible() {
        let ns = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"cutover:public.team");
        let a = generated_id(GenerateId::Uuid5, &ns, Value::Text(b" rec123 "), true);
        assert_eq!(
            a,
            generated_id(GenerateId::Uuid5, &ns, Value::Text(b"rec123"), true)
        );
        assert_eq!(Uuid::from_bytes(a), Uuid::new_v5(&ns, b"rec123"));
        // Untrimmed legacy ids name the record as the legacy column holds them.
        assert_eq!(
            Uuid::from_bytes(generated_id(
                GenerateId::Uuid5,
                &ns,
                Value::Text(b" rec123 "),
                false
            )),
            Uuid::new_v5(&ns, b" rec123 ")
        );
        assert_eq!(Uuid::from_bytes(a).get_version_num(), 5);
        // An integer id names the record as its decimal text does.
        assert_eq!(
            generated_id(GenerateId::Uuid5, &ns, Value::Int(42), true),
            generated_id(GenerateId::Uuid5, &ns, Value::Text(b"42"), true)
        );
        let other = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"cutover:public.hero");
        assert_ne!(
            a,
            generated_id(GenerateId::Uuid5, &other, Value::Text(b"rec123"), true)
        );
        let r = generated_id(GenerateId::Uuid4, &ns, Value::Text(b"rec123"), true);
        assert_ne!(
            r,
            generated_id(GenerateId::Uuid4, &ns, Value::Text(b"rec123"), true)
        );
        assert_eq!(Uuid::from_bytes(r).get_version_num(), 4);
    }
}
