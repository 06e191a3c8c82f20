//! Who a request comes from: the TCP peer's address, or, when that peer is a trusted reverse
//! proxy (`--trusted-proxies`), the right-most address in `X-Forwarded-For` that is not a
//! trusted proxy itself. Nothing else is believed: a client can write any `X-Forwarded-For`
//! it likes, so the header only counts when a proxy we trust appended to it.

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// An IP network: an address and a prefix length (`10.0.0.0/8`; a bare address is /32 or
/// /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
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

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(IpNet { addr, prefix })
    }
}

/// A comma-separated list of networks; empty means none.
pub fn parse_nets(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

fn trusted(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// One `X-Forwarded-For` hop: an address, perhaps with a port (`[::1]:80`, `1.2.3.4:5`).
fn hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
/// `X-Forwarded-For` hop that is not trusted (every header line, in order, as one list). An
/// unreadable hop ends the walk at the last trusted address before it (it was written by
/// whoever stood there, not by a proxy we trust).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(trusted_proxies, peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for raw in hops.iter().rev() {
        let Some(ip) = hop(raw) else { break };
        client = ip;
        if !trusted(trusted_proxies, ip) {
            break;
        }
    }
    client
}

/// The key an address is limited under: IPv4 as is, IPv6 by its /64 (one subscriber's
/// prefix: an attacker with a /64 must not get 2^64 buckets).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The requesting client's address (see [`client_ip`]), for the account limits. A request
/// that came without a peer address (not through `serve`) counts as `0.0.0.0`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientAddr(client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let nets = parse_nets(" 10.0.0.0/8, ::1 ,192.168.1.7").expect("parse");
        assert_eq!(nets.len(), 3);
        assert!(trusted(&nets, ip("10.200.3.4")));
        assert!(!trusted(&nets, ip("11.0.0.1")));
        assert!(trusted(&nets, ip("::1")));
        assert!(trusted(&nets, ip("::ffff:192.168.1.7")));
        assert!(!trusted(&nets, ip("192.168.1.8")));
        assert!(parse_nets("").expect("empty").is_empty());
        assert!(parse_nets("0.0.0.0/0").expect("all")[0].contains(ip("8.8.8.8")));
        assert!(parse_nets("10.0.0.0/33").is_err());
        assert!(parse_nets("localhost").is_err());
        assert!(parse_nets("::/129").is_err());
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_peer() {
        let proxies = parse_nets("10.0.0.0/8").expect("parse");
        let h = xff(&["203.0.113.9"]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &h, &proxies),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[]), ip("198.51.100.1"));
        // A trusted peer's is read from the right: the first hop that is not a proxy.
        assert_eq!(client_ip(ip("10.0.0.2"), &h, &proxies), ip("203.0.113.9"));
        let chain = xff(&["1.1.1.1, 203.0.113.9", "10.0.0.5"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &chain, &proxies),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &xff(&[]), &proxies),
            ip("10.0.0.2")
        );
        // Garbage stops the walk at the last trusted hop.
        let junk = xff(&["203.0.113.9, nonsense, 10.0.0.7"]);
        assert_eq!(client_ip(ip("10.0.0.2"), &junk, &proxies), ip("10.0.0.7"));
        // Ports and brackets are accepted.
        let ported = xff(&["[2001:db8::1]:443"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &ported, &proxies),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_is_limited_by_its_slash_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(limit_key(ip("1.2.3.4")), ip("1.2.3.4"));
    }
}
