//! Hosts as a block list compares them: read by the WHATWG URL host parser (the `url` crate),
//! as browsers, Node and the resolvers behind curl and Python's requests read them, so one host
//! has one form. A domain is in ASCII (an IDN as punycode: `bücher.de` is `xn--bcher-kva.de`)
//! and lower case; an IPv4 address is one number whatever its notation (`127.1`, `0x7f.0.0.1`,
//! `0177.0.0.1`, `2130706433` are 127.0.0.1), and an IPv6 address that maps an IPv4 one
//! (`::ffff:127.0.0.1`) is that IPv4 address.
//!
//! A blocked entry that names a host blocks it and, when it is a domain, every name under it
//! and the addresses at them: `evil.com` blocks `mail.evil.com`, `ü.evil.com` and
//! `ceo@mail.evil.com`. So do the ways a person writes "this whole domain": `@evil.com`,
//! `.evil.com`, `*.evil.com`, and a URL (`https://evil.com`) stands for its host.

use std::net::IpAddr;

use url::{Host as UrlHost, Url};

/// A host in its one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Host {
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    /// `text` as the URL host parser reads a host; `None` for text that is no host.
    fn parse(text: &str) -> Option<Host> {
        let text = text.trim_end_matches('.');
        if text.is_empty() {
            return None;
        }
        UrlHost::parse(text).ok().map(Host::from)
    }

    /// Whether this host is `entry` or, for a domain, a name under it.
    fn is_under(&self, entry: &Host) -> bool {
        match (self, entry) {
            (Host::Domain(name), Host::Domain(domain)) => {
                name == domain
                    || name
                        .strip_suffix(domain.as_str())
                        .is_some_and(|labels| labels.len() > 1 && labels.ends_with('.'))
            }
            (Host::Ip(a), Host::Ip(b)) => a == b,
            _ => false,
        }
    }
}

impl From<UrlHost<String>> for Host {
    fn from(host: UrlHost<String>) -> Host {
        match host {
            UrlHost::Domain(d) => Host::Domain(d.trim_end_matches('.').to_owned()),
            UrlHost::Ipv4(a) => Host::Ip(IpAddr::V4(a)),
            UrlHost::Ipv6(a) => Host::Ip(a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)),
        }
    }
}

/// The hosts a text value names: the host of each text that parses as a URL with one
/// (`texts`: the value in its readings), and each piece read as a host, an address as the host
/// after its `@` (`pieces`: what the block list compares, URL hosts among them).
pub(super) fn named(texts: &[String], pieces: &[String]) -> Vec<Host> {
    let mut out: Vec<Host> = texts
        .iter()
        .filter_map(|t| {
            Url::parse(t.trim())
                .ok()?
                .host()
                .map(|h| h.to_owned().into())
        })
        .collect();
    out.extend(pieces.iter().filter_map(|p| {
        let host = p.rsplit_once('@').map_or(p.as_str(), |(_, host)| host);
        Host::parse(host)
    }));
    out.dedup();
    out
}

/// The host a blocked entry stands for, if it names one: a URL's host, or the entry as a host
/// after any `*.`, `.` or `@` before it. An address (`ceo@x.com`) names none: it blocks itself.
pub(super) fn of_entry(entry: &str) -> Option<Host> {
    if let Ok(url) = Url::parse(entry)
        && let Some(host) = url.host()
    {
        return Some(host.to_owned().into());
    }
    let bare = entry
        .strip_prefix("*.")
        .or_else(|| entry.strip_prefix('.'))
        .or_else(|| entry.strip_prefix('@'))
        .unwrap_or(entry);
    Host::parse(bare)
}

/// Whether any of `hosts` is `entry` or under it.
pub(super) fn any_under(hosts: &[Host], entry: &Host) -> bool {
    hosts.iter().any(|h| h.is_under(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Host {
        of_entry(text).unwrap_or_else(|| panic!("{text} names no host"))
    }

    #[test]
    fn one_host_has_one_form() {
        let loopback = host("127.0.0.1");
        for text in [
            "127.1",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "2130706433",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(host(text), loopback, "{text}");
        }
        assert_eq!(host("bücher.de"), host("xn--bcher-kva.de"));
        assert_eq!(host("EVIL.com."), host("evil.com"));
        for text in [
            "*.evil.com",
            ".evil.com",
            "@evil.com",
            "https://evil.com",
            "https://u@evil.com:8443/x",
        ] {
            assert_eq!(host(text), host("evil.com"), "{text}");
        }
        for text in ["ceo@x.com", "", "a b", "/etc/passwd", "a/b"] {
            assert_eq!(of_entry(text), None, "{text}");
        }
    }

    #[test]
    fn a_domain_covers_the_names_under_it_only() {
        let evil = host("evil.com");
        for under in [
            "evil.com",
            "mail.evil.com",
            "a.b.evil.com",
            "xn--tda.evil.com",
        ] {
            assert!(host(under).is_under(&evil), "{under}");
        }
        for other in ["notevil.com", "evil.com.good.com", "evil.co", "com"] {
            assert!(!host(other).is_under(&evil), "{other}");
        }
        assert!(!host("127.0.0.1").is_under(&host("127.0.0.2")));
        assert!(!host("localhost").is_under(&host("127.0.0.1")));
    }
}
