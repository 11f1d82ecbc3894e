//! Values that break naive loaders, shared by the tests that round-trip them.

/// Texts that plain CSV, spreadsheets or PostgreSQL's COPY text format trip over.
pub const TRICKY_TEXTS: &[&str] = &[
    "comma, inside",
    "\"quoted\" and a lone \" quote",
    "line\nbreak",
    "windows\r\nline",
    "lone\rcarriage return",
    "tab\there",
    "back\\slash\\",
    "\\N",
    "\\",
    "\\s:not a tag",
    "Zoë Ångström, 東京",
    "party 🎉🦀",
    "  leading and trailing  ",
    "",
    "12",
    "12.0",
    "1e5",
    "true",
    "NULL",
    "=1+1",
    "#not a comment",
];
