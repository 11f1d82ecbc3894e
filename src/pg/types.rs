//! A target column's type, as read from the PostgreSQL catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// numeric(precision, scale); None = unconstrained numeric.
    Numeric {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    /// text, varchar(n), bpchar(n), name, citext: binary format = UTF-8 bytes.
    Text {
        max_chars: Option<usize>,
    },
    Bytea,
    Uuid,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Json,
    Jsonb,
    /// A user enum; binary format = the label's bytes.
    Enum {
        labels: Vec<String>,
    },
    /// One-dimensional array of `elem` whose type oid is `elem_oid`.
    Array {
        elem: Box<PgType>,
        elem_oid: u32,
    },
    /// A type cutover cannot encode; conversion rejects with its name.
    Other {
        name: String,
    },
}
