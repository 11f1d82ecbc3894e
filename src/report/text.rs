//! Numbers and sentences as people read them on a terminal: counts with thousands
//! separators, durations in the unit that suits them, and long lines wrapped at word
//! boundaries.

use std::time::Duration;

/// A duration as people read it in a log or a table: `0.012s`, `1.5s`, `2m05s`, `1h05m`.
pub(crate) fn clock(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{s:.3}s")
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = d.as_secs();
        if whole < 3600 {
            format!("{}m{:02}s", whole / 60, whole % 60)
        } else {
            format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
        }
    }
}

/// A count with thousands separators: `1,640,000`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces; the first line keeps
/// its own indentation, the lines after it are indented by `indent`. A word longer than a
/// line is left whole. Ends with a newline.
pub(crate) fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    for (n, paragraph) in text.lines().enumerate() {
        let mut line = if n == 0 {
            paragraph
                .chars()
                .take_while(|c| *c == ' ')
                .collect::<String>()
        } else {
            " ".repeat(indent)
        };
        let mut empty = true;
        for word in paragraph.split_whitespace() {
            let len = line.chars().count();
            if !empty && len + 1 + word.chars().count() > width {
                out.push_str(&line);
                out.push('\n');
                line = " ".repeat(indent);
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_640_000), "1,640,000");
        assert_eq!(clock(Duration::from_millis(12)), "0.012s");
        assert_eq!(clock(Duration::from_millis(1500)), "1.5s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(7300)), "2h01m");
    }

    #[test]
    fn wraps_at_words() {
        assert_eq!(wrap("a bb ccc", 2, 4), "a bb\n  ccc\n");
        assert_eq!(wrap("short", 2, 80), "short\n");
        assert_eq!(wrap("x\ny z", 4, 80), "x\n    y z\n");
        assert_eq!(wrap("  a b", 4, 4), "  a\n    b\n");
        let long = "word ".repeat(40);
        assert!(wrap(&long, 2, 80).lines().all(|l| l.len() <= 80));
    }
}
