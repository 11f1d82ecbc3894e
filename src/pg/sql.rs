//! Quoting: nothing from a mapping or a source is ever spliced into SQL unquoted.
//! Identifiers go through [`ident`]; values travel as bind parameters or through COPY.

/// A quoted identifier: `"Name ""x"""`.
pub fn ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for ch in name.chars() {
        if ch == '"' {
            s.push('"');
        }
        s.push(ch);
    }
    s.push('"');
    s
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// A string literal, for the rare statement that cannot take parameters.
pub fn literal(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('\'');
    for ch in value.chars() {
        if ch == '\'' {
            s.push('\'');
        }
        s.push(ch);
    }
    s.push('\'');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_everything() {
        assert_eq!(ident("users"), "\"users\"");
        assert_eq!(ident("we\"ird name"), "\"we\"\"ird name\"");
        assert_eq!(qualified("public", "Order"), "\"public\".\"Order\"");
        assert_eq!(literal("it's"), "'it''s'");
    }
}
