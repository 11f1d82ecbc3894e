//! Property tests (a seeded random-input loop, no cargo-fuzz toolchain): the mapping parser
//! and the value converter never panic, whatever they are given. Failures print the seed and
//! the input so they can be replayed. About two seconds each.

use crate::convert::{ColumnPlan, Converter, Epoch, JsonMode, Many, OnError, Rules, Step};
use crate::pg::PgType;
use crate::value::Value;
use bytes::BytesMut;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
}

const BUDGET: Duration = Duration::from_secs(2);

/// Pieces real values and mappings are made of, plus hostile ones.
const ATOMS: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "-1",
    "t",
    "f",
    "true",
    "false",
    "yes",
    "NULL",
    "null",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e-400",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999999",
    "0.000000000000000000001",
    "3.14159",
    "1,5",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "24:00:00",
    "2024-03-01 10:00:00",
    "2024-03-01T10:00:00Z",
    "2024-03-01T10:00:00+14:00",
    "1700000000",
    "1700000000000",
    "0000-00-00",
    "+275760-09-13",
    "[]",
    "[1,2]",
    "[\"a\",",
    "{\"a\":1}",
    "{",
    "}",
    "\"",
    "'",
    "\\",
    "\u{0}",
    "\u{feff}",
    "日本語",
    "🚀",
    "a,b,c",
    "00000000-0000-0000-0000-000000000000",
    "xyz-uuid",
    "\\x00ff",
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "tables",
    "columns",
    "from",
    "field",
    "references",
    "on_missing",
    "legacy_id",
    "legacy_column",
    "junction",
    "trim",
    "lowercase",
    "map",
    "default",
    "epoch",
    "split",
    "json",
    "timezone",
    "source",
    "target",
    "kind",
    "sqlite",
    "path",
    "\n",
    "\t",
    "#",
    ".",
    "users",
    "votes",
    "\"x\"",
    "{ field = \"a\" }",
    "skip",
    "null",
    "error",
    "s",
    "ms",
];

fn text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(6) {
        let atom = *rng.pick::<&str>(ATOMS);
        s.push_str(atom);
        if rng.chance(10) {
            s.push(char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'));
        }
    }
    s
}

fn bytes(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(70) {
        let mut b = text(rng).into_bytes();
        if rng.chance(20) && !b.is_empty() {
            let i = rng.below(b.len());
            b[i] = 0xff; // invalid UTF-8
        }
        b
    } else {
        (0..rng.below(40)).map(|_| rng.next() as u8).collect()
    }
}

fn pgtype(rng: &mut Rng, depth: usize) -> PgType {
    let n = if depth > 0 { 18 } else { 19 };
    match rng.below(n) {
        0 => PgType::Bool,
        1 => PgType::Int2,
        2 => PgType::Int4,
        3 => PgType::Int8,
        4 => PgType::Float4,
        5 => PgType::Float8,
        6 => PgType::Numeric {
            precision: None,
            scale: None,
        },
        7 => {
            let p = rng.below(40) as u32 + 1;
            PgType::Numeric {
                precision: Some(p),
                scale: Some(rng.below(p as usize + 1) as u32),
            }
        }
        8 => PgType::Text {
            max_chars: if rng.chance(50) {
                Some(rng.below(10))
            } else {
                None
            },
        },
        9 => PgType::Bytea,
        10 => PgType::Uuid,
        11 => PgType::Date,
        12 => PgType::Time,
        13 => PgType::Timestamp,
        14 => PgType::Timestamptz,
        15 => PgType::Json,
        16 => PgType::Jsonb,
        17 => PgType::Enum {
            labels: (0..rng.below(4)).map(|_| text(rng)).collect(),
        },
        _ => PgType::Array {
            elem: Box::new(pgtype(rng, depth + 1)),
            elem_oid: 25,
        },
    }
}

fn rules(rng: &mut Rng) -> Rules {
    Rules {
        trim: rng.chance(50),
        lowercase: rng.chance(30),
        map: rng.chance(20).then(|| {
            (0..rng.below(4))
                .map(|_| (text(rng), text(rng)))
                .collect::<HashMap<_, _>>()
        }),
        empty_as_null: rng.chance(30),
        default: rng.chance(20).then(|| text(rng)),
        required: rng.chance(20),
        epoch: match rng.below(3) {
            0 => None,
            1 => Some(Epoch::Seconds),
            _ => Some(Epoch::Millis),
        },
        timezone: *rng.pick(&[
            chrono_tz::Tz::UTC,
            chrono_tz::Tz::Europe__Berlin,
            chrono_tz::Tz::Pacific__Kiritimati,
            chrono_tz::Tz::America__St_Johns,
        ]),
        json: if rng.chance(50) {
            JsonMode::Parse
        } else {
            JsonMode::String
        },
        split: rng
            .chance(20)
            .then(|| rng.pick(&[",", ";", "", " "]).to_string()),
        truncate: rng.chance(30),
        on_error: if rng.chance(50) {
            OnError::Reject
        } else {
            OnError::Null
        },
        many: if rng.chance(50) {
            Many::Reject
        } else {
            Many::First
        },
        path: rng.chance(20).then(|| {
            (0..rng.below(3))
                .map(|i| {
                    if i % 2 == 0 {
                        Step::Key(text(rng))
                    } else {
                        Step::Index(rng.below(3))
                    }
                })
                .collect()
        }),
    }
}

#[test]
fn converter_never_panics() {
    let seed = 0x00C0_FFEE_u64;
    let mut rng = Rng(seed);
    let mut conv = Converter::new();
    let start = Instant::now();
    let mut cases = 0u64;
    let json_values: Vec<serde_json::Value> = vec![
        serde_json::json!(null),
        serde_json::json!([1, "a", null]),
        serde_json::json!({"a": [1.5e300]}),
        serde_json::json!("2024-03-01"),
        serde_json::json!([[]]),
        serde_json::json!(u64::MAX),
    ];
    while start.elapsed() < BUDGET {
        let col = ColumnPlan {
            ty: pgtype(&mut rng, 0),
            not_null: rng.chance(30),
            rules: rules(&mut rng),
        };
        for _ in 0..20 {
            let b = bytes(&mut rng);
            let raw = rng.next();
            let value = match rng.below(7) {
                0 => Value::Null,
                1 => Value::Bool(rng.chance(50)),
                2 => Value::Int(*rng.pick(&[
                    0,
                    1,
                    -1,
                    i64::MAX,
                    i64::MIN,
                    32768,
                    1_700_000_000_000,
                    raw as i64,
                ])),
                3 => Value::Float(*rng.pick(&[
                    0.0,
                    -0.0,
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    1e308,
                    f64::MIN_POSITIVE,
                    f64::from_bits(raw),
                ])),
                4 => Value::Text(&b),
                5 => Value::Blob(&b),
                _ => Value::Json(rng.pick(&json_values)),
            };
            let mut out = BytesMut::from(&b"prefix"[..]);
            let desc = format!("{value:?} into {:?} with {:?}", col.ty, col.rules);
            let r = catch_unwind(AssertUnwindSafe(|| conv.encode(value, &col, &mut out)));
            match r {
                Err(_) => panic!("seed {seed:#x}, case {cases}: encode panicked on {desc}"),
                Ok(Err(_)) => assert_eq!(
                    &out[..],
                    b"prefix",
                    "a reject must leave the buffer as it was: {desc}"
                ),
                Ok(Ok(())) => assert!(out.len() >= 6 + 4, "{desc}"),
            }
            cases += 1;
        }
    }
    assert!(cases > 1000, "only {cases} cases ran");
}

#[test]
fn mapping_parser_never_panics() {
    let seed = 0x0005_EED5_u64;
    let mut rng = Rng(seed);
    let real: Vec<String> = ["mappings/podium-sqlite.toml", "mappings/podium.toml"]
        .iter()
        .map(|p| {
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p))
                .unwrap()
        })
        .collect();
    let start = Instant::now();
    let mut cases = 0u64;
    while start.elapsed() < BUDGET {
        // Mutate a real mapping: delete, duplicate, or splice in pieces, line by line or
        // character by character; sometimes pure noise.
        let base = rng.pick(&real).clone();
        let input = match rng.below(4) {
            0 => {
                let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(lines.len());
                    match rng.below(4) {
                        0 => {
                            lines.remove(i);
                        }
                        1 => {
                            let l = lines[rng.below(lines.len())].clone();
                            lines.insert(i, l);
                        }
                        2 => lines[i] = format!("{} = {}", text(&mut rng), text(&mut rng)),
                        _ => lines[i].push_str(&text(&mut rng)),
                    }
                }
                lines.join("\n")
            }
            1 => {
                let mut chars: Vec<char> = base.chars().collect();
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(chars.len());
                    match rng.below(3) {
                        0 => {
                            chars.remove(i);
                        }
                        1 => chars.insert(
                            i,
                            *rng.pick(&['"', '[', ']', '{', '}', '=', '\n', '.', ',']),
                        ),
                        _ => chars[i] = char::from_u32(rng.below(0x80) as u32).unwrap(),
                    }
                }
                chars.into_iter().collect()
            }
            2 => {
                let cut = rng.below(base.len());
                base.get(..cut).unwrap_or(&base).to_string()
            }
            _ => (0..rng.below(30))
                .map(|_| text(&mut rng))
                .collect::<Vec<_>>()
                .join(if rng.chance(50) { "\n" } else { " " }),
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            crate::mapping::parse(Path::new("fuzz.toml"), &input)
        }));
        match r {
            Err(_) => panic!("seed {seed:#x}, case {cases}: mapping::parse panicked on:\n{input}"),
            Ok(Err(problems)) => {
                // Every problem is a sentence, not an empty string.
                assert!(!problems.to_string().trim().is_empty(), "{input}");
            }
            Ok(Ok(_)) => {}
        }
        cases += 1;
    }
    assert!(cases > 200, "only {cases} cases ran");
}
