//! Outbound HTTP that cannot be pointed at internal services: every address a destination resolves
//! to is checked (after DNS, so a public name pointing inside is caught too), redirects are not
//! followed, and only operators can allow private networks.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is on the public internet (not loopback, private, link-local, CGNAT, …).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// Resolves names and drops every address that is not allowed.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to private or reserved addresses; set notify.allow_private_networks to allow it"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
pub fn check_literal(url: &url::Url, allow_private: bool) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is a private or reserved address; set notify.allow_private_networks to allow it"
        ))
    }
}

/// A channel URL as it may be shown: scheme, host, port and the first path segment, nothing that
/// can carry a token (the rest of the path, the query, the fragment, user and password).
pub fn redacted(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    let mut segments = url
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty());
    if let Some(first) = segments.next() {
        shown.push('/');
        shown.push_str(first);
    }
    if segments.next().is_some() || url.query().is_some() || url.fragment().is_some() {
        shown.push_str("/…");
    }
    shown
}

/// The client every delivery goes through.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    herald_runtime::install_tls_provider();
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_ranges_are_not_public() {
        for ip in [
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
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!is_public(ip), "{ip} must not be public");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(is_public(ip), "{ip} is public");
        }
    }

    #[test]
    fn a_redacted_url_keeps_no_token() {
        let cases = [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/services/…",
            ),
            (
                "https://user:pw@example.com:8443/hook?token=SECRET#frag",
                "https://example.com:8443/hook/…",
            ),
            ("http://127.0.0.1:9/", "http://127.0.0.1:9"),
            (
                "https://prod.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=SECRET",
                "https://prod.westeurope.logic.azure.com/workflows/…",
            ),
        ];
        for (raw, shown) in cases {
            let url = url::Url::parse(raw).expect("url");
            let redacted = redacted(&url);
            assert_eq!(redacted, shown);
            for secret in ["SECRET", "XXXX", "pw", "user", "abc"] {
                assert!(!redacted.contains(secret), "{redacted} shows {secret}");
            }
        }
    }

    #[test]
    fn literal_addresses_are_checked_too() {
        let url = url::Url::parse("http://169.254.169.254/latest/meta-data").expect("url");
        assert!(check_literal(&url, false).is_err());
        assert!(check_literal(&url, true).is_ok());
        let named = url::Url::parse("https://hooks.slack.com/x").expect("url");
        assert!(check_literal(&named, false).is_ok());
    }

    #[tokio::test]
    async fn names_resolving_inside_are_refused_unless_allowed() {
        let guarded = client(false, Duration::from_secs(2)).expect("client");
        let err = guarded
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("blocked");
        let chain = format!("{:?}", err);
        assert!(chain.contains("private or reserved"), "{chain}");
    }
}
