//! Names as a draft compares them: a source's `Users.UserId` and a schema's `users.id` name
//! the same thing. A name is split into lowercase words (at case changes, digits and
//! punctuation), each word made singular, and compared in a few forms: whole, without the
//! table's own name in front (`user_email` in `users`), without an `id` at the end (`Owner`
//! and `owner_id`), and without a prefix every table shares (`wp_`, `tbl`).

/// The words of a name: `EmailAddress` -> [email, address], `userID` -> [user, id],
/// `HTTPServer` -> [http, server], `Formula NaN` -> [formula, nan].
pub(crate) fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &ch) in chars.iter().enumerate() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = match prev {
            Some(p) if p.is_alphanumeric() && !cur.is_empty() && ch.is_uppercase() => {
                // aB where B starts a word (Bc) or a run of capitals (BC): userID, createdAt;
                // not the last letter of NaN.
                let after_lower =
                    (p.is_lowercase() || p.is_numeric()) && next.is_some_and(|n| n.is_alphabetic());
                // ABc: the last capital of a run starts the next word (HTTPServer), unless
                // only an `s` follows (IDs).
                let end_of_run = p.is_uppercase()
                    && next.is_some_and(|n| n.is_lowercase())
                    && !(next == Some('s')
                        && chars.get(i + 2).is_none_or(|c| !c.is_alphanumeric()));
                after_lower || end_of_run
            }
            _ => false,
        };
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A lowercase identifier: `Project Collaborators` -> `project_collaborators`.
pub(crate) fn snake(name: &str) -> String {
    let w = words(name);
    if w.is_empty() {
        "field".to_string()
    } else {
        w.join("_")
    }
}

/// A word made singular, well enough to compare names: `users` -> `user`, `categories` ->
/// `category`, `addresses` -> `address`, `status` stays.
pub(crate) fn singular(word: &str) -> String {
    if word.len() <= 3 || word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for end in ["sses", "xes", "ches", "shes", "zzes"] {
        if word.ends_with(end) {
            return word[..word.len() - 2].to_string();
        }
    }
    word.strip_suffix('s').unwrap_or(word).to_string()
}

/// The forms under which two names are the same: the singular words joined, then without
/// any of `prefixes` in front, without an `id` at the end. Ordered from the most to the
/// least exact.
pub(crate) fn forms(name: &str, prefixes: &[Vec<String>]) -> Vec<String> {
    let w: Vec<String> = words(name).iter().map(|w| singular(w)).collect();
    let mut out: Vec<Vec<String>> = vec![w.clone()];
    for p in prefixes {
        if !p.is_empty() && w.len() > p.len() && w.starts_with(p) {
            out.push(w[p.len()..].to_vec());
        }
    }
    for f in out.clone() {
        if f.len() > 1 && f.last().is_some_and(|l| l == "id") {
            out.push(f[..f.len() - 1].to_vec());
        }
    }
    let mut keys: Vec<String> = Vec::new();
    for f in out {
        let k = f.join("_");
        if !k.is_empty() && !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}

/// How well two names match: 3 equal as written (case aside), 2 equal in their first form
/// (words and plurals aside), 1 equal in some form, 0 not at all.
pub(crate) fn score(
    a: &str,
    a_prefixes: &[Vec<String>],
    b: &str,
    b_prefixes: &[Vec<String>],
) -> u8 {
    if a.eq_ignore_ascii_case(b) {
        return 3;
    }
    let fa = forms(a, a_prefixes);
    let fb = forms(b, b_prefixes);
    if fa.first() == fb.first() {
        2
    } else if fa.iter().any(|x| fb.contains(x)) {
        1
    } else {
        0
    }
}

/// Whether the words of `field` begin those of `column` and leave some over: `starts` and
/// `starts_at`, `repo` and `repo_url`, `max_votes` and `max_votes_per_user`. A guess, not a
/// match: said so beside the column.
pub(crate) fn begins(field: &str, column: &str) -> bool {
    let f: Vec<String> = words(field).iter().map(|w| singular(w)).collect();
    let c: Vec<String> = words(column).iter().map(|w| singular(w)).collect();
    !f.is_empty() && f.len() < c.len() && c.starts_with(&f)
}

/// The table-name prefixes a field may carry: the table's words, singular (`user` of
/// `Users`, so `UserId` is `id` and `user_email` is `email`).
pub(crate) fn table_prefixes(table: &str) -> Vec<Vec<String>> {
    let w: Vec<String> = words(table).iter().map(|w| singular(w)).collect();
    let mut out = vec![w.clone()];
    if w.len() > 1 {
        out.push(w[w.len() - 1..].to_vec());
    }
    out
}

/// The first word every one of `names` shares, when there are at least two and each has
/// more words after it (`wp_posts`, `wp_users` -> `wp`), and the usual `tbl` prefix.
pub(crate) fn shared_prefixes<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Vec<String>> {
    let all: Vec<Vec<String>> = names.into_iter().map(words).collect();
    let mut out = vec![vec!["tbl".to_string()]];
    if all.len() >= 2
        && let Some(first) = all[0].first()
        && all.iter().all(|w| w.len() > 1 && w.first() == Some(first))
    {
        out.push(vec![first.clone()]);
    }
    out
}

/// Up to three of `candidates` closest to `name`, for a TODO to offer.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let key = words(name)
        .iter()
        .map(|w| singular(w))
        .collect::<Vec<_>>()
        .join("_");
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| {
            let ck = words(c)
                .iter()
                .map(|w| singular(w))
                .collect::<Vec<_>>()
                .join("_");
            let shared = key
                .split('_')
                .filter(|w| ck.split('_').any(|x| x == *w))
                .count();
            let d = crate::mapping::suggest::distance(&key, &ck);
            (d.saturating_sub(shared * 3), c)
        })
        .collect();
    scored.sort_by_key(|(d, c)| (*d, c.to_string()));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_snake_case() {
        assert_eq!(snake("Project Collaborators"), "project_collaborators");
        assert_eq!(snake("createdAt"), "created_at");
        assert_eq!(snake("EmailAddress"), "email_address");
        assert_eq!(snake("userID"), "user_id");
        assert_eq!(snake("UserIDs"), "user_ids");
        assert_eq!(snake("HTTPServer"), "http_server");
        assert_eq!(snake("Formula NaN"), "formula_nan");
        assert_eq!(snake("Events Attending (2024)"), "events_attending_2024");
        assert_eq!(snake("!!"), "field");
    }

    #[test]
    fn names_that_differ_only_in_form_match() {
        let users = table_prefixes("Users");
        assert!(score("UserId", &users, "id", &[]) > 0);
        assert!(score("EmailAddress", &users, "email_address", &[]) >= 2);
        assert!(score("Owner", &[], "owner_id", &[]) > 0);
        assert!(score("AuthorId", &[], "author_id", &[]) >= 2);
        assert!(score("Categories", &[], "category", &[]) >= 2);
        assert!(score("addresses", &[], "Address", &[]) >= 2);
        let wp = shared_prefixes(["wp_posts", "wp_users"]);
        assert!(score("wp_posts", &wp, "posts", &[]) > 0);
        assert!(score("tblUsers", &shared_prefixes(["tblUsers"]), "users", &[]) > 0);
        assert_eq!(score("email", &[], "name", &[]), 0);
        assert_eq!(score("status", &[], "statu", &[]), 0);
    }

    #[test]
    fn a_name_that_begins_another_is_a_guess() {
        assert!(begins("starts", "starts_at"));
        assert!(begins("max_votes", "max_votes_per_user"));
        assert!(!begins("verified", "email_verified"));
        assert!(!begins("name", "name"));
    }

    #[test]
    fn closest_candidates_first() {
        assert_eq!(
            closest("Full Name", ["email", "display_name", "id"])[0],
            "display_name"
        );
    }
}
