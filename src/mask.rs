//! The one policy for what is secret: which header names and which JSON payload
//! keys carry credentials, and what is shown in their place. The engine masks
//! destination headers and secrets before any front end sees them; the TUI masks
//! payloads and response bodies when it pretty-prints them.

use serde_json::Value;

/// What a masked value shows.
pub const MASK: &str = "********";

/// Words that, anywhere in a header name (any case), make its value a credential.
/// Broad on purpose: `X-Api-Key`, `X-Auth-Token`, `Proxy-Authorization`.
const SENSITIVE_HEADER_WORDS: [&str; 7] = [
    "authorization",
    "token",
    "secret",
    "key",
    "password",
    "cookie",
    "signature",
];

/// Words that, anywhere in a JSON object key (any case), make its value a
/// credential. Narrower than for headers: payloads are full of harmless `*_key`
/// and `*_id` fields, so only the spellings of credentials are listed.
const SENSITIVE_PAYLOAD_WORDS: [&str; 10] = [
    "password",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "card_number",
    "cvv",
    "signature",
];

fn contains_any(name: &str, words: &[&str]) -> bool {
    let name = name.to_ascii_lowercase();
    words.iter().any(|word| name.contains(word))
}

/// True when the value of header `name` is a credential and is shown as [`MASK`].
pub fn is_sensitive_header(name: &str) -> bool {
    contains_any(name, &SENSITIVE_HEADER_WORDS)
}

/// The header value as a front end may show it.
pub fn header_value(name: &str, value: &str) -> String {
    if is_sensitive_header(name) {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

/// The URL as a front end may show it: a password in it is a credential too.
pub fn url(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    url.to_string()
}

/// A database URL as it may be shown (logs, errors, `check-config`): the
/// password masked, whether in the authority (`user:PASSWORD@host`) or in a
/// `password=` query parameter, which libpq-style URLs accept too.
pub fn database_url(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    }
    if url
        .query_pairs()
        .any(|(key, _)| key.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") {
                    MASK.to_string()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// True when the value under JSON object key `key` is a credential.
pub fn is_sensitive_payload_key(key: &str) -> bool {
    contains_any(key, &SENSITIVE_PAYLOAD_WORDS)
}

/// Replaces, in place and at any depth, every scalar value under a sensitive key
/// with [`MASK`]. Objects and arrays under a sensitive key are walked, not
/// replaced, so their own non-secret fields stay readable.
pub fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if is_sensitive_payload_key(key) && !inner.is_object() && !inner.is_array() {
                    *inner = Value::String(MASK.into());
                } else {
                    mask_json(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credential_headers_are_sensitive_in_any_case() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "X-Api-Key",
            "X-Auth-Token",
            "X-Webhook-Secret",
            "Cookie",
            "X-Signature",
            "X-PASSWORD",
        ] {
            assert!(is_sensitive_header(name), "{name}");
        }
    }

    #[test]
    fn a_database_url_shows_no_password_wherever_it_is_written() {
        let url = url::Url::parse("postgres://hook:s3cr%40t@db.internal:5432/hw").unwrap();
        assert_eq!(
            database_url(&url),
            format!("postgres://hook:{MASK}@db.internal:5432/hw")
        );
        let url =
            url::Url::parse("postgresql://hook@db/hw?sslmode=require&PASSWORD=s3cret").unwrap();
        let shown = database_url(&url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        let url = url::Url::parse("postgres://hook@db/hw").unwrap();
        assert_eq!(database_url(&url), "postgres://hook@db/hw");
    }

    #[test]
    fn ordinary_headers_are_shown() {
        for name in ["X-Env", "Content-Type", "Accept", "User-Agent", "X-Tenant"] {
            assert!(!is_sensitive_header(name), "{name}");
        }
        assert_eq!(header_value("X-Env", "prod"), "prod");
        assert_eq!(header_value("authorization", "Bearer abc"), MASK);
    }

    #[test]
    fn payload_keys_use_the_narrower_list() {
        for key in [
            "password",
            "payment_token",
            "API_KEY",
            "apiKey",
            "client_secret",
            "card_number",
            "cvv",
            "signature",
        ] {
            assert!(is_sensitive_payload_key(key), "{key}");
        }
        // `key` alone marks a header, not a payload field.
        for key in ["order_id", "idempotency_key", "sort_key", "email", "total"] {
            assert!(!is_sensitive_payload_key(key), "{key}");
        }
    }

    #[test]
    fn mask_json_replaces_scalars_at_any_depth_and_walks_containers() {
        let mut value = json!({
            "order_id": "ord_1",
            "payment_token": "tok_live",
            "customer": {"name": "Ada", "password": 1234},
            "cards": [{"card_number": "4242", "brand": "visa"}],
            "secrets": {"note": "kept", "token": null},
            "api_keys": ["k1", "k2"],
        });
        mask_json(&mut value);
        assert_eq!(
            value,
            json!({
                "order_id": "ord_1",
                "payment_token": MASK,
                "customer": {"name": "Ada", "password": MASK},
                "cards": [{"card_number": MASK, "brand": "visa"}],
                "secrets": {"note": "kept", "token": MASK},
                "api_keys": ["k1", "k2"],
            })
        );
    }
}
