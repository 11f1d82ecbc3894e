//! The part of Airtable's formula language the fake evaluates for `filterByFormula` and for
//! views: field references (`{Name}`), string and number literals, `=` `!=` `<` `>` `<=` `>=`,
//! `&` (concatenation), and the functions `AND`, `OR`, `NOT`, `RECORD_ID`, `CREATED_TIME`,
//! `REGEX_MATCH` (anchors, literals, `.` and character classes), `LEFT`, `LEN`, `TRUE`,
//! `FALSE`, `BLANK`. See https://support.airtable.com/docs/formula-field-reference.
//! Anything else is an error, which the fake answers as Airtable does: 422
//! INVALID_FILTER_BY_FORMULA.

use serde_json::Value as Json;
use std::borrow::Cow;

/// A value, borrowing text from the formula or the record where it can: a filter is
/// evaluated on every record of a table for every page asked for.
#[derive(Debug, Clone, PartialEq)]
enum V<'a> {
    Blank,
    Num(f64),
    Str(Cow<'a, str>),
    Bool(bool),
}

impl<'a> V<'a> {
    fn truthy(&self) -> bool {
        match self {
            V::Blank => false,
            V::Num(n) => *n != 0.0,
            V::Str(s) => !s.is_empty(),
            V::Bool(b) => *b,
        }
    }
    fn text(&self) -> Cow<'_, str> {
        match self {
            V::Blank => Cow::Borrowed(""),
            V::Num(n) if n.fract() == 0.0 => Cow::Owned(format!("{}", *n as i64)),
            V::Num(n) => Cow::Owned(n.to_string()),
            V::Str(s) => Cow::Borrowed(s),
            V::Bool(b) => Cow::Borrowed(if *b { "1" } else { "0" }),
        }
    }
    /// The same value, borrowing from this one.
    fn by_ref(&self) -> V<'_> {
        match self {
            V::Str(s) => V::Str(Cow::Borrowed(s)),
            V::Blank => V::Blank,
            V::Num(n) => V::Num(*n),
            V::Bool(b) => V::Bool(*b),
        }
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(V<'static>),
    Field(String),
    Call(String, Vec<Expr>),
    Bin(String, Box<Expr>, Box<Expr>),
}

/// A parsed formula.
#[derive(Debug, Clone)]
pub struct Formula(Expr);

impl Formula {
    pub fn parse(text: &str) -> Result<Formula, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let e = p.expr()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text at {}", p.i));
        }
        Ok(Formula(e))
    }

    /// Does `record` (`{"id","createdTime","fields"}`, fields by name) match?
    pub fn matches(&self, record: &Json) -> Result<bool, String> {
        Ok(eval(&self.0, record)?.truthy())
    }
}

fn eval<'a>(e: &'a Expr, r: &'a Json) -> Result<V<'a>, String> {
    Ok(match e {
        Expr::Lit(v) => v.by_ref(),
        Expr::Field(name) => match r.get("fields").and_then(|f| f.get(name)) {
            None | Some(Json::Null) => V::Blank,
            Some(Json::String(s)) => V::Str(Cow::Borrowed(s)),
            Some(Json::Number(n)) => V::Num(n.as_f64().unwrap_or(0.0)),
            Some(Json::Bool(b)) => V::Bool(*b),
            Some(Json::Array(a)) => V::Str(Cow::Owned(
                a.iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
            Some(other) => V::Str(Cow::Owned(other.to_string())),
        },
        Expr::Bin(op, a, b) => {
            let (a, b) = (eval(a, r)?, eval(b, r)?);
            if op == "&" {
                return Ok(V::Str(Cow::Owned(a.text().into_owned() + &b.text())));
            }
            let ord = match (&a, &b) {
                (V::Num(x), V::Num(y)) => x.partial_cmp(y),
                _ => Some(a.text().cmp(&b.text())),
            };
            let ord = ord.ok_or("NaN compared")?;
            use std::cmp::Ordering::*;
            V::Bool(match op.as_str() {
                "=" => ord == Equal,
                "!=" => ord != Equal,
                "<" => ord == Less,
                ">" => ord == Greater,
                "<=" => ord != Greater,
                ">=" => ord != Less,
                _ => return Err(format!("unknown operator {op}")),
            })
        }
        Expr::Call(name, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, r))
                .collect::<Result<Vec<_>, _>>()?;
            let arity = |n: usize| {
                if vals.len() == n {
                    Ok(())
                } else {
                    Err(format!("{name} takes {n} arguments"))
                }
            };
            match name.as_str() {
                "AND" => V::Bool(!vals.is_empty() && vals.iter().all(V::truthy)),
                "OR" => V::Bool(vals.iter().any(V::truthy)),
                "NOT" => {
                    arity(1)?;
                    V::Bool(!vals[0].truthy())
                }
                "TRUE" => V::Bool(true),
                "FALSE" => V::Bool(false),
                "BLANK" => V::Blank,
                "RECORD_ID" => V::Str(Cow::Borrowed(r["id"].as_str().unwrap_or_default())),
                "CREATED_TIME" => {
                    V::Str(Cow::Borrowed(r["createdTime"].as_str().unwrap_or_default()))
                }
                "LEN" => {
                    arity(1)?;
                    V::Num(vals[0].text().chars().count() as f64)
                }
                "LEFT" => {
                    arity(2)?;
                    let n = match vals[1] {
                        V::Num(n) if n >= 0.0 => n as usize,
                        _ => return Err("LEFT needs a count".into()),
                    };
                    V::Str(Cow::Owned(vals[0].text().chars().take(n).collect()))
                }
                "REGEX_MATCH" => {
                    arity(2)?;
                    V::Bool(regex_match(&vals[1].text(), &vals[0].text())?)
                }
                _ => return Err(format!("unknown function {name}")),
            }
        }
    })
}

/// The regular expressions the fake understands: `^`, `$`, literals, `.` and `[…]` classes
/// (ranges, `^` negation), no quantifiers.
fn regex_match(pattern: &str, text: &str) -> Result<bool, String> {
    enum Atom {
        Any,
        Char(char),
        Class(bool, Vec<(char, char)>),
    }
    let mut atoms = Vec::new();
    let mut chars = pattern.chars().peekable();
    let anchored = chars.peek() == Some(&'^');
    if anchored {
        chars.next();
    }
    let mut end = false;
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_none() => end = true,
            '.' => atoms.push(Atom::Any),
            '[' => {
                let negated = chars.peek() == Some(&'^');
                if negated {
                    chars.next();
                }
                let mut ranges = Vec::new();
                loop {
                    let lo = chars.next().ok_or("unclosed [")?;
                    if lo == ']' {
                        break;
                    }
                    if chars.peek() == Some(&'-') {
                        chars.next();
                        match chars.next() {
                            Some(']') => {
                                ranges.push((lo, lo));
                                ranges.push(('-', '-'));
                                break;
                            }
                            Some(hi) => ranges.push((lo, hi)),
                            None => return Err("unclosed [".into()),
                        }
                    } else {
                        ranges.push((lo, lo));
                    }
                }
                atoms.push(Atom::Class(negated, ranges));
            }
            '*' | '+' | '?' | '{' | '(' | '|' | '\\' => {
                return Err(format!("the fake's REGEX_MATCH does not know {c:?}"));
            }
            c => atoms.push(Atom::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    let at = |start: usize| {
        if start + atoms.len() > text.len() || (end && start + atoms.len() != text.len()) {
            return false;
        }
        atoms.iter().zip(&text[start..]).all(|(a, c)| match a {
            Atom::Any => true,
            Atom::Char(x) => x == c,
            Atom::Class(neg, ranges) => {
                ranges.iter().any(|(lo, hi)| (lo..=hi).contains(&c)) != *neg
            }
        })
    };
    Ok(if anchored {
        at(0)
    } else {
        (0..=text.len()).any(at)
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let a = self.concat()?;
        for op in ["!=", "<=", ">=", "=", "<", ">"] {
            if self.eat(op) {
                let b = self.concat()?;
                return Ok(Expr::Bin(op.into(), Box::new(a), Box::new(b)));
            }
        }
        Ok(a)
    }
    fn concat(&mut self) -> Result<Expr, String> {
        let mut a = self.term()?;
        while self.eat("&") {
            let b = self.term()?;
            a = Expr::Bin("&".into(), Box::new(a), Box::new(b));
        }
        Ok(a)
    }
    fn term(&mut self) -> Result<Expr, String> {
        self.ws();
        let c = *self.s.get(self.i).ok_or("unexpected end")?;
        match c {
            b'(' => {
                self.i += 1;
                let e = self.expr()?;
                if !self.eat(")") {
                    return Err("missing )".into());
                }
                Ok(e)
            }
            b'{' => {
                let end = self.s[self.i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("unclosed {")?;
                let name = String::from_utf8_lossy(&self.s[self.i + 1..self.i + end]).into_owned();
                self.i += end + 1;
                Ok(Expr::Field(name))
            }
            b'"' | b'\'' => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    let b = *self.s.get(self.i).ok_or("unclosed string")?;
                    self.i += 1;
                    if b == b'\\' {
                        out.push(*self.s.get(self.i).ok_or("unclosed string")?);
                        self.i += 1;
                    } else if b == c {
                        break;
                    } else {
                        out.push(b);
                    }
                }
                Ok(Expr::Lit(V::Str(Cow::Owned(
                    String::from_utf8_lossy(&out).into_owned(),
                ))))
            }
            b'0'..=b'9' | b'-' | b'.' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.')
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                t.parse::<f64>()
                    .map(|n| Expr::Lit(V::Num(n)))
                    .map_err(|_| format!("bad number {t}"))
            }
            c if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
                {
                    self.i += 1;
                }
                let name = String::from_utf8_lossy(&self.s[start..self.i]).to_uppercase();
                if !self.eat("(") {
                    return Err(format!("{name} is not a function call"));
                }
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err("expected , or )".into());
                        }
                    }
                }
                Ok(Expr::Call(name, args))
            }
            _ => Err(format!("unexpected {:?}", c as char)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_what_cutover_sends() {
        let r = json!({"id": "recAbc", "createdTime": "2024-05-01T10:00:00.000Z",
                       "fields": {"Name": "Ada", "Age": 36, "Tags": ["a", "b"]}});
        let t = |f: &str| Formula::parse(f).unwrap().matches(&r).unwrap();
        assert!(t(r#"REGEX_MATCH(RECORD_ID(), "^rec[0-9A-F]")"#));
        assert!(!t(r#"REGEX_MATCH(RECORD_ID(), "^rec[^A-Z]")"#));
        assert!(t(r#"NOT(REGEX_MATCH(RECORD_ID(), "^rec[a-z]"))"#));
        assert!(t(
            r#"AND({Name} = 'Ada', {Age} >= 30, OR(FALSE(), {Tags} = "a, b"))"#
        ));
        assert!(!t(r#"{Missing}"#));
        assert!(t(r#"LEFT(RECORD_ID(), 4) & "x" = "recAx""#));
        assert!(Formula::parse("SUM(").is_err());
        assert!(Formula::parse("NOPE(1)").unwrap().matches(&r).is_err());
    }
}
