//! The SSRF guard: addresses reached because of what a feed says (article links, images,
//! redirects of those) must be public unless the operator allows a range. Sources the operator
//! configured are trusted and never go through here.
//!
//! Names are checked where they are resolved, so every redirect hop and every connection is
//! covered; IP-literal hosts never reach a resolver, so [`check_url`] checks them per hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Which addresses content-driven fetches may connect to.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<(IpAddr, u8)>,
}

impl AddressPolicy {
    /// `ranges` are CIDR blocks (`127.0.0.1/32`, `10.0.0.0/8`, `::1/128`) allowed although not public.
    pub fn new(ranges: &[String]) -> Result<Self, String> {
        Ok(Self {
            allowed: ranges
                .iter()
                .map(|r| parse_cidr(r))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip)
            || self
                .allowed
                .iter()
                .any(|(net, bits)| in_range(ip, *net, *bits))
    }
}

/// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a single-address range).
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
        None => max,
    };
    Ok((canonical(addr), bits))
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Globally routable unicast: not loopback, private, link-local, shared, multicast, reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)) // NAT64, may reach private IPv4
}

/// Why a content-driven URL may not be fetched, if it may not.
pub fn check_url(url: &Url, policy: &AddressPolicy) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{url}: only http and https are fetched"));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(format!("{url}: no host")),
    };
    if policy.permits(ip) {
        Ok(())
    } else {
        Err(format!(
            "{url}: refused to connect to non-public address {ip}"
        ))
    }
}

/// A resolver that drops every address the policy does not permit.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = format!(
                    "refused to connect to {host}: it resolves only to non-public addresses"
                )
                .into();
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn non_public_ranges_are_refused() {
        let policy = AddressPolicy::default();
        for addr in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "::",
        ] {
            assert!(!policy.permits(ip(addr)), "{addr}");
        }
        // Range checks on values built here, never sent anywhere.
        let private = [
            u32::from_be_bytes([10, 1, 2, 3]),
            u32::from_be_bytes([192, 168, 1, 1]),
            u32::from_be_bytes([169, 254, 169, 254]),
            u32::from_be_bytes([100, 64, 0, 1]),
            u32::from_be_bytes([224, 0, 0, 1]),
        ];
        for n in private {
            assert!(
                !policy.permits(IpAddr::V4(Ipv4Addr::from(n))),
                "{}",
                Ipv4Addr::from(n)
            );
        }
        assert!(
            policy.permits(IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes([
                93, 184, 215, 14
            ]))))
        );
    }

    #[test]
    fn allowed_ranges_open_exactly_themselves() {
        let policy = AddressPolicy::new(&["127.0.0.1/32".to_owned()]).expect("policy");
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(AddressPolicy::new(&["127.0.0.1/33".to_owned()]).is_err());
        assert!(AddressPolicy::new(&["nonsense".to_owned()]).is_err());
    }

    #[test]
    fn urls_need_http_and_a_permitted_literal() {
        let policy = AddressPolicy::default();
        let check = |u: &str| check_url(&Url::parse(u).expect("url"), &policy);
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("http://127.0.0.1:8080/x").is_err());
        assert!(check("http://[::1]/x").is_err());
        assert!(
            check("http://localhost/x").is_ok(),
            "names are checked when resolved"
        );
    }
}
