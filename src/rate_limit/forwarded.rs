//! The client's address behind reverse proxies. A proxy appends the address it received the
//! connection from to `X-Forwarded-For`; whatever stands before that was sent by the client and
//! proves nothing. A client may also send `X-Forwarded-For` lines of its own, which a proxy may
//! keep as separate lines: so all lines are joined in order, and the walk starts at the right.
//!
//! - `--trust-forwarded-for` alone: the last entry (the one the proxy in front appended).
//! - `--trusted-proxies CIDR,…` (which implies trusting the header): only when the connection
//!   itself comes from a trusted proxy, walking from the right past every entry inside the
//!   trusted ranges; the first one outside them is the client (several hops of proxies).

use std::net::{IpAddr, SocketAddr};

/// An address range such as `10.0.0.0/8`, `fd00::/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR/PREFIX` or a bare address.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        let err = |why: &str| format!("{text:?} is not an address range like 10.0.0.0/8: {why}");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| err("bad address"))?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| err("bad prefix length"))?,
            None => max,
        };
        if prefix > max {
            return Err(err("prefix length too long"));
        }
        Ok(IpNet { addr, prefix })
    }

    /// Parses a comma-separated list of ranges.
    pub fn parse_list(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(IpNet::parse)
            .collect()
    }

    /// Whether `ip` is inside this range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
        .map(canonical)
}

/// The client's address: the connection's peer, or with `trust` (or any `trusted` ranges) the
/// address the proxies recorded in `X-Forwarded-For`, as the module doc says.
pub(crate) fn client_ip<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a [u8]>,
    trust: bool,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(canonical);
    let in_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !trust && trusted.is_empty() {
        return peer;
    }
    if !trusted.is_empty() && !peer.is_some_and(in_trusted) {
        // Not from a proxy we know: the client connected directly, its header means nothing.
        return peer;
    }
    // Lossy: a line that is not valid text must not hide the entry a proxy appended after it.
    let joined: Vec<String> = forwarded
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect();
    let mut chosen = None;
    for entry in joined.iter().flat_map(|l| l.split(',')).rev() {
        if entry.trim().is_empty() {
            continue;
        }
        let Some(ip) = parse_entry(entry) else {
            break;
        };
        chosen = Some(ip);
        if !in_trusted(ip) {
            break;
        }
    }
    chosen.or(peer)
}

/// A client address as the limiters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4([u8; 4]),
    V6Net([u8; 8]),
    Unknown,
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    ClientKey::V6Net([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pick(peer: &str, lines: &[&str], trust: bool, trusted: &str) -> Option<IpAddr> {
        let trusted = IpNet::parse_list(trusted).unwrap();
        client_ip(
            Some(ip(peer)),
            lines.iter().map(|l| l.as_bytes()),
            trust,
            &trusted,
        )
    }

    #[test]
    fn ranges_parse_and_contain() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "mapped IPv4 counts");
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(IpNet::parse_list(" 10.0.0.0/8, ::1 ,").unwrap().len(), 2);
    }

    #[test]
    fn the_proxys_entry_counts_not_the_clients() {
        let peer = "127.0.0.1";
        // Not trusted: the peer, whatever the header says.
        assert_eq!(pick(peer, &["6.6.6.6"], false, ""), Some(ip(peer)));
        // A forged first line and the proxy's own line: the last entry of the last line.
        assert_eq!(
            pick(peer, &["6.6.6.6", "203.0.113.7"], true, ""),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            pick(peer, &["6.6.6.6, 203.0.113.7"], true, ""),
            Some(ip("203.0.113.7"))
        );
        // Several hops: walk past the trusted proxies from the right.
        let lines = ["6.6.6.6", "203.0.113.7, 10.0.0.2", "10.0.0.3"];
        assert_eq!(
            pick("10.0.0.4", &lines, false, "10.0.0.0/8"),
            Some(ip("203.0.113.7"))
        );
        // A direct connection from outside the trusted ranges: its header is ignored.
        assert_eq!(
            pick("198.51.100.1", &lines, true, "10.0.0.0/8"),
            Some(ip("198.51.100.1"))
        );
        // Garbage where the proxy's entry should be: the peer; ports and brackets are fine.
        assert_eq!(pick(peer, &["junk"], true, ""), Some(ip(peer)));
        assert_eq!(pick(peer, &["1.2.3.4:5678"], true, ""), Some(ip("1.2.3.4")));
        assert_eq!(
            pick(peer, &["[2001:db8::1]"], true, ""),
            Some(ip("2001:db8::1"))
        );
        // A line that is not text does not hide the entry appended after it.
        let lines: [&[u8]; 2] = [b"\xff6.6.6.6", b"203.0.113.9"];
        assert_eq!(
            client_ip(Some(ip(peer)), lines.into_iter(), true, &[]),
            Some(ip("203.0.113.9"))
        );
    }
}
