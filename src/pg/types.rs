//! A target column's type, as read from the PostgreSQL catalog: what the converter encodes a
//! value as ([`PgType`]) and, for a column whose values are staged as another type, how they
//! become the column's own ([`Coercion`]).
//!
//! cutover writes binary COPY for the types it has an encoder for. Every other type (inet,
//! interval, tsvector, hstore, ranges, geometric types, xml, …) is staged as text and cast
//! where the target is written, so PostgreSQL's own input function parses it; a domain is
//! staged as its base type and its constraints apply when the row is written. Either way
//! PostgreSQL may refuse a value, which makes its row a reject (`load/refused.rs`).
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
    /// A type cutover has no binary encoder for (`name` as `format_type` gives it): the value
    /// is staged as text and PostgreSQL's text input parses it (see [`Coercion`]). As an
    /// array element, the array is staged as `text[]` (element oid 25).
    Input {
        name: String,
    },
}

/// How a column's values reach it when its staging column is of another type.
#[derive(Debug, Clone, PartialEq)]
pub struct Coercion {
    /// The staging column's type: `text` or `text[]` for text input, a domain's base type
    /// (with its modifier) for a domain, or the base type's array for an array of domains.
    pub staged: String,
    /// The column's own type (`format_type` with its modifier).
    pub column: String,
    /// The explicit cast applied to the staged value where the target is written (text
    /// input): the column's type with its domains unwrapped and without its modifier, as
    /// `format_type(oid, -1)` spells it (`"bit"`, not `bit`, which would mean `bit(1)`).
    /// Assignment to the column then applies the modifier and the domains' constraints as
    /// an INSERT does. None when assignment alone converts (a domain from its base type).
    pub cast: Option<String>,
    /// Assignment can refuse a staged value: invalid text input, a domain's CHECK or NOT
    /// NULL, a modifier the value does not fit. Such rows are found before the target is
    /// written and become rejects.
    pub refusable: bool,
}

/// One row of `pg_type`, as far as a column type needs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeRow {
    pub(crate) oid: u32,
    /// `typname`, for the types cutover knows by name (in `pg_catalog`, or citext).
    pub(crate) name: String,
    /// In `pg_catalog`.
    pub(crate) builtin: bool,
    /// `typtype`: b base, d domain, e enum, r range, m multirange, c composite, p pseudo.
    pub(crate) kind: char,
    /// The element type of an array (`typcategory` 'A'), else 0.
    pub(crate) elem: u32,
    /// A domain's base type and modifier.
    pub(crate) base: u32,
    pub(crate) base_mod: i32,
    /// A domain is NOT NULL or has a CHECK constraint.
    pub(crate) constrained: bool,
    /// `format_type(oid, -1)`: the type without a modifier, safe to cast to.
    pub(crate) sql: String,
    /// A domain's `format_type(base, base_mod)`: what it is staged as.
    pub(crate) base_sql: Option<String>,
    /// A domain's base array type, `format_type(base's array, base_mod)`: what an array of
    /// the domain is staged as.
    pub(crate) base_array_sql: Option<String>,
    /// An enum's labels in sort order.
    pub(crate) labels: Vec<String>,
}

/// The types the columns of a schema use, by oid (with their domains' base types and their
/// arrays' element types).
#[derive(Debug, Default)]
pub(crate) struct Types {
    pub(crate) rows: std::collections::HashMap<u32, TypeRow>,
}

/// What a column of some type is, for loading.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnType {
    pub(crate) ty: PgType,
    pub(crate) coercion: Option<Coercion>,
    /// Merging and `verify` compare the column as text: json has no `=`, and the `=` of
    /// other types equates distinct values (citext ignores case, box compares areas); the
    /// types staged as text are all compared so.
    pub(crate) compare_as_text: bool,
}

/// A type with its domains unwrapped.
struct Stripped<'a> {
    base: &'a TypeRow,
    /// The modifier in force: the innermost domain's, else the column's.
    typmod: i32,
    domain: bool,
    constrained: bool,
    /// The innermost domain's base type and base array type, with the modifier.
    staged: Option<&'a str>,
    staged_array: Option<&'a str>,
}

/// What the converter makes of a base type (domains unwrapped), and whether an array's
/// elements were domains.
struct Encoded<'a> {
    ty: PgType,
    /// The elements of an array are a domain: how it is staged, and whether constrained.
    elem_domain: Option<(Option<&'a str>, bool)>,
    as_text: bool,
}

impl Types {
    fn get(&self, oid: u32) -> Option<&TypeRow> {
        self.rows.get(&oid)
    }

    fn strip(&self, oid: u32, typmod: i32) -> Option<Stripped<'_>> {
        let mut t = self.get(oid)?;
        let mut s = Stripped {
            base: t,
            typmod,
            domain: false,
            constrained: false,
            staged: None,
            staged_array: None,
        };
        // Domains nest only as deep as someone wrote them; the bound guards a broken catalog.
        for _ in 0..64 {
            if t.kind != 'd' {
                s.base = t;
                return Some(s);
            }
            s.domain = true;
            s.constrained |= t.constrained;
            let base = self.get(t.base)?;
            if base.kind != 'd' {
                s.typmod = t.base_mod;
                s.staged = t.base_sql.as_deref();
                s.staged_array = t.base_array_sql.as_deref();
            }
            t = base;
        }
        None
    }

    fn encoded(&self, t: &TypeRow, typmod: i32, nested: bool) -> Encoded<'_> {
        let plain = |ty: PgType| Encoded {
            as_text: matches!(ty, PgType::Json | PgType::Input { .. }),
            ty,
            elem_domain: None,
        };
        let input = || {
            plain(PgType::Input {
                name: t.sql.clone(),
            })
        };
        if t.kind == 'e' {
            return plain(PgType::Enum {
                labels: t.labels.clone(),
            });
        }
        if t.elem != 0 {
            // An array's modifier applies to its elements.
            let Some(e) = self.strip(t.elem, typmod) else {
                return input();
            };
            if nested {
                return input();
            }
            let inner = self.encoded(e.base, e.typmod, true);
            let elem_domain = e.domain.then_some((e.staged_array, e.constrained));
            return match inner.ty {
                PgType::Input { .. } => Encoded {
                    ty: PgType::Array {
                        elem: Box::new(inner.ty),
                        elem_oid: TEXT_OID,
                    },
                    elem_domain,
                    as_text: true,
                },
                ty => Encoded {
                    ty: PgType::Array {
                        elem: Box::new(ty),
                        elem_oid: e.base.oid,
                    },
                    elem_domain,
                    as_text: inner.as_text,
                },
            };
        }
        if t.kind != 'b' || !(t.builtin || t.name == "citext") {
            return input();
        }
        let chars = (typmod >= 4).then(|| (typmod - 4) as usize);
        let ty = match t.name.as_str() {
            "bool" => PgType::Bool,
            "int2" => PgType::Int2,
            "int4" => PgType::Int4,
            "int8" => PgType::Int8,
            "float4" => PgType::Float4,
            "float8" => PgType::Float8,
            "numeric" => {
                let m = (typmod >= 4).then(|| (typmod - 4) as u32);
                PgType::Numeric {
                    precision: m.map(|m| (m >> 16) & 0xffff),
                    scale: m.map(|m| m & 0xffff),
                }
            }
            "text" | "name" => PgType::Text { max_chars: None },
            "citext" => {
                return Encoded {
                    as_text: true,
                    ..plain(PgType::Text { max_chars: None })
                };
            }
            "varchar" | "bpchar" => PgType::Text { max_chars: chars },
            "bytea" => PgType::Bytea,
            "uuid" => PgType::Uuid,
            "date" => PgType::Date,
            "time" => PgType::Time,
            "timestamp" => PgType::Timestamp,
            "timestamptz" => PgType::Timestamptz,
            "json" => PgType::Json,
            "jsonb" => PgType::Jsonb,
            _ => return input(),
        };
        plain(ty)
    }

    /// The column of type `oid` with modifier `typmod`, whose `format_type` is `sql_type`.
    pub(crate) fn column(&self, oid: u32, typmod: i32, sql_type: &str) -> ColumnType {
        let Some(s) = self.strip(oid, typmod) else {
            // Not in the catalog as read: PostgreSQL's text input still knows it.
            return ColumnType {
                ty: PgType::Input {
                    name: sql_type.to_string(),
                },
                coercion: Some(Coercion {
                    staged: "text".into(),
                    column: sql_type.into(),
                    cast: Some(sql_type.into()),
                    refusable: true,
                }),
                compare_as_text: true,
            };
        };
        let e = self.encoded(s.base, s.typmod, false);
        let text_input = match &e.ty {
            PgType::Input { .. } => Some("text"),
            PgType::Array { elem, .. } if matches!(**elem, PgType::Input { .. }) => Some("text[]"),
            _ => None,
        };
        let coercion = if let Some(staged) = text_input {
            Some(Coercion {
                staged: staged.into(),
                column: sql_type.into(),
                cast: Some(s.base.sql.clone()),
                refusable: true,
            })
        } else if let Some((elem_staged, elem_constrained)) = e.elem_domain {
            Some(Coercion {
                staged: elem_staged.unwrap_or(sql_type).into(),
                column: sql_type.into(),
                cast: None,
                refusable: s.constrained || elem_constrained,
            })
        } else if s.domain {
            Some(Coercion {
                staged: s.staged.unwrap_or(sql_type).into(),
                column: sql_type.into(),
                cast: None,
                refusable: s.constrained,
            })
        } else {
            None
        };
        ColumnType {
            ty: e.ty,
            coercion,
            compare_as_text: e.as_text,
        }
    }
}

/// The oid of `text`, the element type of the `text[]` an array of text input is staged as.
pub(crate) const TEXT_OID: u32 = 25;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(oid: u32, name: &str, kind: char) -> TypeRow {
        TypeRow {
            oid,
            name: name.into(),
            builtin: true,
            kind,
            sql: name.into(),
            ..TypeRow::default()
        }
    }

    /// int4, inet, bit, citext and their arrays; posint (int4, CHECK), code (bit(3), NOT
    /// NULL), loose (a domain over posint without constraints) and an array of posint.
    fn types() -> Types {
        let mut rows = vec![
            row(23, "int4", 'b'),
            TypeRow {
                elem: 23,
                ..row(1007, "_int4", 'b')
            },
            row(869, "inet", 'b'),
            TypeRow {
                elem: 869,
                sql: "inet[]".into(),
                ..row(1041, "_inet", 'b')
            },
            TypeRow {
                sql: "\"bit\"".into(),
                ..row(1560, "bit", 'b')
            },
            TypeRow {
                builtin: false,
                sql: "public.citext".into(),
                ..row(9000, "citext", 'b')
            },
            TypeRow {
                base: 23,
                base_mod: -1,
                constrained: true,
                sql: "public.posint".into(),
                base_sql: Some("integer".into()),
                base_array_sql: Some("integer[]".into()),
                ..row(9001, "posint", 'd')
            },
            TypeRow {
                elem: 9001,
                sql: "public.posint[]".into(),
                ..row(9002, "_posint", 'b')
            },
            TypeRow {
                base: 1560,
                base_mod: 3,
                constrained: true,
                sql: "public.code".into(),
                base_sql: Some("bit(3)".into()),
                ..row(9003, "code", 'd')
            },
            TypeRow {
                base: 9001,
                base_mod: -1,
                sql: "public.loose".into(),
                base_sql: Some("public.posint".into()),
                ..row(9004, "loose", 'd')
            },
            TypeRow {
                labels: vec!["calm".into()],
                sql: "ref.mood".into(),
                ..row(9005, "mood", 'e')
            },
        ];
        Types {
            rows: rows.drain(..).map(|r| (r.oid, r)).collect(),
        }
    }

    fn coercion(staged: &str, column: &str, cast: Option<&str>, refusable: bool) -> Coercion {
        Coercion {
            staged: staged.into(),
            column: column.into(),
            cast: cast.map(Into::into),
            refusable,
        }
    }

    #[test]
    fn columns_of_every_kind() {
        let t = types();
        // Encoded types are staged as themselves.
        let int = t.column(23, -1, "integer");
        assert_eq!(
            (int.ty, int.coercion, int.compare_as_text),
            (PgType::Int4, None, false)
        );
        let mood = t.column(9005, -1, "ref.mood");
        assert!(matches!(mood.ty, PgType::Enum { .. }) && mood.coercion.is_none());
        // citext is text, compared as text (its `=` ignores case).
        let ci = t.column(9000, -1, "public.citext");
        assert_eq!(ci.ty, PgType::Text { max_chars: None });
        assert!(ci.compare_as_text && ci.coercion.is_none());
        // Text input: staged as text, cast to the type without its modifier.
        let inet = t.column(869, -1, "inet");
        assert_eq!(
            inet.ty,
            PgType::Input {
                name: "inet".into()
            }
        );
        assert_eq!(
            inet.coercion,
            Some(coercion("text", "inet", Some("inet"), true))
        );
        assert!(inet.compare_as_text);
        let bit8 = t.column(1560, 12, "bit(8)");
        assert_eq!(
            bit8.coercion,
            Some(coercion("text", "bit(8)", Some("\"bit\""), true))
        );
        let inets = t.column(1041, -1, "inet[]");
        assert_eq!(
            inets.ty,
            PgType::Array {
                elem: Box::new(PgType::Input {
                    name: "inet".into()
                }),
                elem_oid: TEXT_OID
            }
        );
        assert_eq!(
            inets.coercion,
            Some(coercion("text[]", "inet[]", Some("inet[]"), true))
        );
        // A domain over an encoded type: staged as its base, assignment checks it.
        let posint = t.column(9001, -1, "public.posint");
        assert_eq!(posint.ty, PgType::Int4);
        assert_eq!(
            posint.coercion,
            Some(coercion("integer", "public.posint", None, true))
        );
        let posints = t.column(9002, -1, "public.posint[]");
        assert_eq!(
            posints.ty,
            PgType::Array {
                elem: Box::new(PgType::Int4),
                elem_oid: 23
            }
        );
        assert_eq!(
            posints.coercion,
            Some(coercion("integer[]", "public.posint[]", None, true))
        );
        // A domain over a domain: the innermost base, the outer constraints too.
        let loose = t.column(9004, -1, "public.loose");
        assert_eq!(
            loose.coercion,
            Some(coercion("integer", "public.loose", None, true))
        );
        // A domain over a text-input type with a modifier: text, cast to the bare base.
        let code = t.column(9003, -1, "public.code");
        assert_eq!(
            code.coercion,
            Some(coercion("text", "public.code", Some("\"bit\""), true))
        );
        // Unknown to the catalog as read: still text input.
        assert!(t.column(1, -1, "x").coercion.is_some_and(|c| c.refusable));
        assert_eq!(t.column(1007, -1, "integer[]").coercion, None);
    }
}
