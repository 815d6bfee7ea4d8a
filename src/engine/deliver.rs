//! One HTTP attempt: build the request (Standard Webhooks headers and signature),
//! send it with the shared client, and turn whatever happened into an [`Outcome`]
//! the policy can judge plus the facts the attempt history keeps.

use crate::config::DestinationConfig;
use crate::policy::Outcome;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, Instant};

/// How much of a response body the attempt history keeps.
pub const RESPONSE_EXCERPT_BYTES: usize = 4096;
/// Redirects followed before an attempt counts as "too many redirects".
pub const MAX_REDIRECTS: usize = 3;

/// The one client every attempt shares, so connections to a destination are kept
/// alive and reused.
pub fn build_client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("the HTTP client's fixed settings are valid")
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        // Environment proxies would silently reroute deliveries; operators who want
        // one put it in the destination URL's path instead.
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .user_agent(concat!("hookwatch/", env!("CARGO_PKG_VERSION")))
}

/// How an attempt ended, classified where the HTTP client's error kind is
/// known; metrics count by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The receiver answered with this status (whatever it was).
    Response(u16),
    Timeout,
    /// No connection: refused, reset, DNS, TLS handshake.
    Connect,
    TooManyRedirects,
    /// Refused before sending by `deny_private_destinations`.
    PrivateAddress,
    /// Broke off otherwise (while sending the request or reading the answer).
    Network,
}

impl AttemptOutcome {
    fn of_error(error: &reqwest::Error) -> AttemptOutcome {
        if error.is_timeout() {
            AttemptOutcome::Timeout
        } else if error.is_redirect() {
            AttemptOutcome::TooManyRedirects
        } else if error.is_connect() {
            AttemptOutcome::Connect
        } else {
            AttemptOutcome::Network
        }
    }

    /// The `outcome` label of `hookwatch_attempts_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            AttemptOutcome::Response(200..=299) => "success",
            AttemptOutcome::Response(429) => "rate_limited",
            AttemptOutcome::Response(400..=499) => "client_error",
            AttemptOutcome::Response(500..=599) => "server_error",
            AttemptOutcome::Response(_) => "other_status",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Connect
            | AttemptOutcome::TooManyRedirects
            | AttemptOutcome::PrivateAddress
            | AttemptOutcome::Network => "network_error",
        }
    }

    pub fn is_success(self) -> bool {
        matches!(self, AttemptOutcome::Response(200..=299))
    }
}

/// The outcome in words, for log lines.
impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptOutcome::Response(status) => write!(f, "HTTP {status}"),
            AttemptOutcome::Timeout => f.write_str("timeout"),
            AttemptOutcome::Connect => f.write_str("connection failed"),
            AttemptOutcome::TooManyRedirects => f.write_str("too many redirects"),
            AttemptOutcome::PrivateAddress => f.write_str("private address refused"),
            AttemptOutcome::Network => f.write_str("network error"),
        }
    }
}

/// What one attempt produced.
#[derive(Debug)]
pub struct Delivery {
    /// What the policy judges.
    pub outcome: Outcome,
    /// What metrics count.
    pub kind: AttemptOutcome,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration: Duration,
    pub excerpt: String,
}

/// The request headers of one attempt, besides the destination's own.
pub struct AttemptHeaders<'a> {
    pub event_id: &'a str,
    pub timestamp: i64,
    pub attempt: u32,
    pub will_retry_after: Option<Duration>,
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` for each secret, space
/// separated, as the Standard Webhooks spec writes it.
pub fn signature_header(
    secrets: &[String],
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|secret| sign(secret, event_id, timestamp, body))
        .collect();
    (!signatures.is_empty()).then(|| signatures.join(" "))
}

pub fn sign(secret: &str, event_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(event_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

pub async fn send(
    client: &reqwest::Client,
    destination: &DestinationConfig,
    content_type: Option<&str>,
    body: bytes::Bytes,
    headers: AttemptHeaders<'_>,
    reach: Reach,
) -> Delivery {
    {
        if let Some(message) = reach.refused_literal(&destination.url) {
            return Delivery {
                outcome: Outcome::Network(message.clone()),
                kind: AttemptOutcome::PrivateAddress,
                status: None,
                error: Some(message),
                duration: Duration::ZERO,
                excerpt: String::new(),
            };
        }
    }
    let mut request = client
        .post(destination.url.clone())
        .timeout(destination.timeout);
    for (name, value) in &destination.headers {
        request = request.header(name, value);
    }
    if let Some(content_type) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    request = request
        .header("webhook-id", headers.event_id)
        .header("webhook-timestamp", headers.timestamp.to_string())
        .header("hookwatch-attempt", headers.attempt.to_string());
    if let Some(wait) = headers.will_retry_after {
        request = request.header("hookwatch-will-retry-after", wait.as_secs().to_string());
    }
    if let Some(signature) = signature_header(
        &destination.secrets,
        headers.event_id,
        headers.timestamp,
        &body,
    ) {
        request = request.header("webhook-signature", signature);
    }
    let started = Instant::now();
    let response = request.body(body).send().await;
    match response {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string());
            let (excerpt, body_error) = read_excerpt(&mut response).await;
            let duration = started.elapsed();
            Delivery {
                outcome: Outcome::Response {
                    status,
                    retry_after,
                },
                kind: AttemptOutcome::Response(status),
                status: Some(status),
                error: body_error,
                duration,
                excerpt,
            }
        }
        Err(error) => {
            let duration = started.elapsed();
            let message = describe(&error);
            let kind = AttemptOutcome::of_error(&error);
            let outcome = match kind {
                AttemptOutcome::Timeout => Outcome::Timeout,
                AttemptOutcome::TooManyRedirects => Outcome::TooManyRedirects,
                _ => Outcome::Network(message.clone()),
            };
            Delivery {
                outcome,
                kind,
                status: None,
                error: Some(message),
                duration,
                excerpt: String::new(),
            }
        }
    }
}

/// Reads at most [`RESPONSE_EXCERPT_BYTES`] of the body; a body that breaks off is
/// noted but does not change the status the receiver already sent.
async fn read_excerpt(response: &mut reqwest::Response) -> (String, Option<String>) {
    let mut kept: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_EXCERPT_BYTES - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if kept.len() >= RESPONSE_EXCERPT_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                return (
                    String::from_utf8_lossy(&kept).into_owned(),
                    Some(format!("response body broke off: {}", describe(&e))),
                )
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), None)
}

/// reqwest's own message is "error sending request for url (...)"; the cause that
/// tells an operator what went wrong is further down the source chain.
pub fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_string();
    }
    if error.is_redirect() {
        return format!("more than {MAX_REDIRECTS} redirects");
    }
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    // hyper's wrappers ("client error (Connect)") say nothing an operator can use.
    parts.retain(|part| !part.starts_with("client error ("));
    let message = if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    };
    if looks_like_tls(&message) {
        format!("TLS handshake failed: {message}")
    } else {
        message
    }
}

/// rustls reports a plain-HTTP server as "received corrupt message", and
/// certificate problems in its own words; none of them says "TLS".
fn looks_like_tls(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "corrupt message",
        "certificate",
        "handshake",
        "tls",
        "alert received",
        "peer misbehaved",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// Whether an address is one a public webhook must never reach: loopback,
/// private, link-local, carrier-grade NAT, unspecified, or their IPv6 kin
/// (including IPv4-mapped forms).
pub fn is_private_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Which addresses a destination may be sent to. Checked on the addresses a
/// name resolves to (so DNS rebinding cannot slip past), on IP literals in the
/// URL, and on redirect targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Anything (the config file's destinations by default).
    Any,
    /// Not link-local (169.254.0.0/16, fe80::/10): where cloud metadata
    /// services answer. Destinations created through the API, always.
    NotLinkLocal,
    /// Only public addresses: `deny_private_destinations = true`.
    PublicOnly,
}

impl Reach {
    pub fn refuses(self, ip: std::net::IpAddr) -> bool {
        match self {
            Reach::Any => false,
            Reach::NotLinkLocal => is_link_local(ip),
            Reach::PublicOnly => is_private_address(ip),
        }
    }

    /// Why `ip` is refused, in words.
    fn why(self, ip: std::net::IpAddr) -> String {
        match self {
            Reach::NotLinkLocal => format!(
                "{ip} is a link-local address, refused for destinations created through the API"
            ),
            _ => format!("{ip} is a private address, refused by deny_private_destinations"),
        }
    }

    /// The refusal of a URL whose host is an IP literal this reach refuses.
    pub fn refused_literal(self, url: &reqwest::Url) -> Option<String> {
        let ip = literal_ip(url)?;
        self.refuses(ip).then(|| self.why(ip))
    }
}

/// Whether an address is link-local (IPv4 169.254.0.0/16, IPv6 fe80::/10,
/// IPv4-mapped forms included).
pub fn is_link_local(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

/// A resolver that drops the addresses `reach` refuses.
struct FilteringResolver(Reach);

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.0;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<std::net::SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| !reach.refuses(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                let rule = match reach {
                    Reach::NotLinkLocal => {
                        "link-local addresses, refused for destinations created through the API"
                    }
                    _ => "private addresses, refused by deny_private_destinations",
                };
                return Err(
                    format!("{host} resolves only to {rule} ({})", shown.join(", ")).into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The client for destinations that may only reach what `reach` allows.
pub fn build_client_for(reach: Reach) -> reqwest::Client {
    if reach == Reach::Any {
        return build_client();
    }
    // A redirect to a refused IP literal is not followed (a name is checked
    // by the resolver): the 3xx is the answer.
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if reach.refused_literal(attempt.url()).is_some() {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    client_builder()
        .redirect(redirects)
        .dns_resolver(std::sync::Arc::new(FilteringResolver(reach)))
        .build()
        .expect("the HTTP client's fixed settings are valid")
}

/// The IP of a URL whose host is an IP literal (no DNS involved).
fn literal_ip(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(std::net::IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(std::net::IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// A URL whose host is a private IP literal (no DNS involved), if it is one.
pub fn private_literal(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    literal_ip(url).filter(|ip| is_private_address(*ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_destinations_never_reach_link_local_addresses() {
        let refused = Reach::NotLinkLocal;
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(refused.refuses(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "93.184.216.34", "::1"] {
            assert!(!refused.refuses(ip.parse().unwrap()), "{ip}");
        }
        let metadata = reqwest::Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        let why = refused.refused_literal(&metadata).unwrap();
        assert!(why.contains("link-local"), "{why}");
        assert!(Reach::Any.refused_literal(&metadata).is_none());
        assert!(Reach::PublicOnly.refused_literal(&metadata).is_some());
    }

    #[test]
    fn private_ranges_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private_address(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(!is_private_address(public.parse().unwrap()), "{public}");
        }
    }

    /// The example from the Standard Webhooks specification's reference libraries.
    #[test]
    fn signature_matches_standard_webhooks_reference_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, timestamp, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_secret_signs_for_rotation() {
        let secrets = vec![
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
            "whsec_c2Vjb25kLXNlY3JldA==".to_string(),
        ];
        let header = signature_header(&secrets, "id", 1, b"{}").unwrap();
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    }
}
