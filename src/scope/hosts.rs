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
//! `.evil.com`, `*.evil.com`, and a URL that is only a host (`https://evil.com`). An entry names
//! a domain when it has a dot and a letter (`13`, `1.2` and `sh` name none), or is
//! `localhost`; an IP address in its usual form (`127.0.0.1`, `::1`, `[::1]`) names that
//! address.

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
            UrlHost::Ipv6(a) => Host::Ip(unmapped(IpAddr::V6(a))),
        }
    }
}

/// An IPv6 address that maps an IPv4 one (`::ffff:127.0.0.1`) as that IPv4 address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An IP address as written on its own: `127.0.0.1`, `::1`, `[::1]`, `[::1]:8080`.
fn ip_literal(text: &str) -> Option<IpAddr> {
    let text = text.trim_end_matches('.');
    if let Some(rest) = text.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':').unwrap_or(after);
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return inner.parse::<IpAddr>().ok().map(unmapped);
    }
    text.parse::<IpAddr>().ok().map(unmapped)
}

/// The hosts a text value names (`texts`: the value in its readings; `pieces`: what the block
/// list compares, the hosts of URL-like texts among them):
/// - the host of a text that parses as a URL, and of the text read as what follows `http://`
///   (`u@evil.com/x`, `167772161/x`: curl reads a text without a scheme so);
/// - an IP address written on its own (`::1`, `[::1]:8080`, `::ffff:7f00:1`);
/// - each piece read as a host, an address as the host after its `@` (`ceo@[127.0.0.1]` too).
pub(super) fn named(texts: &[String], pieces: &[String]) -> Vec<Host> {
    let url_host = |text: &str| {
        Url::parse(text)
            .ok()?
            .host()
            .map(|h| Host::from(h.to_owned()))
    };
    let mut out = Vec::new();
    for text in texts {
        let text = text.trim();
        out.extend(url_host(text));
        out.extend(url_host(&format!("http://{text}")));
        out.extend(ip_literal(text).map(Host::Ip));
    }
    out.extend(pieces.iter().filter_map(|p| {
        let host = p.rsplit_once('@').map_or(p.as_str(), |(_, host)| host);
        ip_literal(host).map(Host::Ip).or_else(|| Host::parse(host))
    }));
    out.dedup();
    out
}

/// The host a blocked entry stands for, if it names one: an IP address as written, the host of
/// a URL that is only a host (one with a path blocks itself only), or a domain — a name with a
/// dot and a letter, or `localhost` — after any `*.`, `.` or `@` before it. An address
/// (`ceo@x.com`), numeric text (`13`, `1.2`) and a word (`sh`) name none: they block themselves.
pub(super) fn of_entry(entry: &str) -> Option<Host> {
    if let Some(ip) = ip_literal(entry) {
        return Some(Host::Ip(ip));
    }
    if let Ok(url) = Url::parse(entry)
        && let Some(host) = url.host()
    {
        let only_a_host =
            matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
        return only_a_host.then(|| host.to_owned().into());
    }
    let bare = entry
        .strip_prefix("*.")
        .or_else(|| entry.strip_prefix('.'))
        .or_else(|| entry.strip_prefix('@'))
        .unwrap_or(entry);
    let names_a_domain =
        (bare.contains('.') && bare.chars().any(char::is_alphabetic)) || bare == "localhost";
    match Host::parse(bare) {
        Some(domain @ Host::Domain(_)) if names_a_domain => Some(domain),
        _ => None,
    }
}

/// Whether any of `hosts` is `entry` or under it.
pub(super) fn any_under(hosts: &[Host], entry: &Host) -> bool {
    hosts.iter().any(|h| h.is_under(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host an entry stands for.
    fn entry(text: &str) -> Host {
        of_entry(text).unwrap_or_else(|| panic!("{text} names no host"))
    }

    /// Whether a value is under an entry.
    fn blocks(entry_text: &str, value: &str) -> bool {
        any_under(&named(&[value.to_owned()], &[]), &entry(entry_text))
    }

    #[test]
    fn one_host_has_one_form() {
        for value in [
            "127.1",
            "0x7f.0.0.1",
            "0177.0.0.1",
            "2130706433",
            "http://[::ffff:127.0.0.1]/",
            "::ffff:7f00:1",
            "[::ffff:127.0.0.1]:80",
            "u@127.0.0.1/x",
        ] {
            assert!(blocks("127.0.0.1", value), "{value}");
        }
        for value in ["::1", "[::1]:8080", "http://[0:0::1]/", "0:0:0:0:0:0:0:1"] {
            assert!(blocks("::1", value), "{value}");
            assert!(blocks("[::1]", value), "{value}");
        }
        assert_eq!(entry("bücher.de"), entry("xn--bcher-kva.de"));
        assert_eq!(entry("EVIL.com."), entry("evil.com"));
        for text in [
            "*.evil.com",
            ".evil.com",
            "@evil.com",
            "https://evil.com",
            "https://u@evil.com:8443/",
        ] {
            assert_eq!(entry(text), entry("evil.com"), "{text}");
        }
        for text in [
            "ceo@x.com",
            "",
            "a b",
            "/etc/passwd",
            "a/b",
            "13",
            "1.2",
            "sh",
            "https://github.com/evil/repo",
        ] {
            assert_eq!(of_entry(text), None, "{text}");
        }
    }

    #[test]
    fn a_domain_covers_the_names_under_it_only() {
        for value in [
            "evil.com",
            "mail.evil.com",
            "a.b.evil.com",
            "ü.evil.com",
            "u@evil.com/x",
        ] {
            assert!(blocks("evil.com", value), "{value}");
        }
        for value in [
            "notevil.com",
            "evil.com.good.com",
            "evil.co",
            "com",
            "https://good.com/evil.com",
        ] {
            assert!(!blocks("evil.com", value), "{value}");
        }
        assert!(!blocks("127.0.0.2", "127.0.0.1"));
        assert!(!blocks("127.0.0.1", "localhost"));
        assert!(blocks("localhost", "a.localhost"));
    }
}
