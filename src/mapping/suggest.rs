//! "Did you mean …?" for misspelt names: the closest candidate by edit distance.

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = distance(&lower, &c.to_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    // Allow about one typo per three characters, at least one.
    let limit = (name.chars().count() / 3).max(1);
    (d <= limit).then_some(c)
}

/// " (did you mean `x`?)", or nothing.
pub(crate) fn hint<'a, I>(name: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(name, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// Edit distance over chars where swapping two neighbours counts as one edit
/// (optimal string alignment), so `feild` is one typo away from `field`.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j - 1] + cost)
                .min(d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let keys = ["field", "references", "legacy_column", "trim"];
        assert_eq!(closest("feild", keys), Some("field"));
        assert_eq!(closest("refrences", keys), Some("references"));
        assert_eq!(closest("Legacy_Colum", keys), Some("legacy_column"));
        assert_eq!(closest("zzzzzz", keys), None);
        assert_eq!(hint("trm", keys), " (did you mean `trim`?)");
    }
}
