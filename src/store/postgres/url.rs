//! A PostgreSQL URL as it may be shown: with its password masked.

use crate::mask::MASK;

/// `url` with any password replaced by [`MASK`], for errors and logs. Reads
/// both the URL form (`postgres://user:secret@host/db`, and a `password=`
/// query parameter) and libpq's key=value form (`host=h password=secret`).
/// Text that is neither is returned with every `password=` value masked.
pub fn masked_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.has_host() || parsed.scheme().starts_with("postgres") {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some(MASK));
            }
            let masked_pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let value = if k.eq_ignore_ascii_case("password") {
                        MASK.to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), value)
                })
                .collect();
            if masked_pairs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("password"))
            {
                parsed.query_pairs_mut().clear().extend_pairs(masked_pairs);
            }
            return parsed.to_string();
        }
    }
    mask_key_values(url)
}

/// libpq's `key=value` form: the value after `password=` (quoted or not) is
/// masked.
fn mask_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((key_at, value_at)) = find_password_value(rest) {
        out.push_str(&rest[..key_at]);
        out.push_str("password=");
        out.push_str(MASK);
        let value = rest[value_at..].trim_start();
        let end = match value.strip_prefix('\'') {
            // A quoted value ends at the next unescaped quote.
            Some(quoted) => {
                let mut escaped = false;
                let mut end = quoted.len();
                for (i, c) in quoted.char_indices() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '\'' if !escaped => {
                            end = i + 1;
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                1 + end
            }
            None => value.find(char::is_whitespace).unwrap_or(value.len()),
        };
        rest = &value[end.min(value.len())..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` key starts (at the start or after whitespace, any
/// case) and where its value starts (after the `=`).
fn find_password_value(text: &str) -> Option<(usize, usize)> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let at = from + found;
        let after_key = at + "password".len();
        let key_start = at == 0 || lower[..at].ends_with(char::is_whitespace);
        let spaces = lower[after_key..].len() - lower[after_key..].trim_start().len();
        if key_start && lower[after_key + spaces..].starts_with('=') {
            return Some((at, after_key + spaces + 1));
        }
        from = after_key;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_masked_and_the_rest_kept() {
        assert_eq!(
            masked_url("postgres://hook:s3cr%40t@db.example:5433/hookwatch?sslmode=disable"),
            format!("postgres://hook:{MASK}@db.example:5433/hookwatch?sslmode=disable")
        );
        assert_eq!(
            masked_url("postgresql://hook@db/hw"),
            "postgresql://hook@db/hw"
        );
        let masked = masked_url("postgres://db/hw?user=u&password=hunter2");
        assert!(!masked.contains("hunter2"), "{masked}");
        assert!(masked.contains("user=u"), "{masked}");
    }

    #[test]
    fn a_password_in_key_value_form_is_masked() {
        let masked = masked_url("host=db user=hook password=hunter2 dbname=hw");
        assert_eq!(
            masked,
            format!("host=db user=hook password={MASK} dbname=hw")
        );
        let quoted = masked_url("host=db password='a b\\' c' dbname=hw");
        assert_eq!(quoted, format!("host=db password={MASK} dbname=hw"));
        assert!(!masked_url("password = hunter2 host=db").contains("hunter2"));
    }
}
