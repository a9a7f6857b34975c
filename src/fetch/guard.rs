//! The SSRF guard: addresses reached because of what a feed says (article links, images,
//! redirects of those) must be public unless the operator allows a range. Sources the operator
//! configured are trusted and never go through here.
//!
//! Names are checked where they are resolved, so every redirect hop and every connection is
//! covered; IP-literal hosts never reach a resolver, so [`check_url`] checks them per hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net};
use url::{Host, Url};

/// Which addresses content-driven fetches may connect to.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// `ranges` (`fetch.allow_private`, parsed by config) are allowed although not public.
    pub fn new(ranges: &[IpNet]) -> Self {
        Self {
            allowed: ranges.iter().copied().map(canonical_net).collect(),
        }
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|net| net.contains(&ip))
    }
}

/// A range of IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1/128`) is the IPv4 range it maps,
/// because addresses are judged as [`canonical`] makes them: otherwise such a range would
/// never match anything.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .network()
            .to_ipv4_mapped()
            .and_then(|v4| Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, IpNet::V4),
        other => other,
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
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

/// What a refusal adds: why, and the way to allow it.
const ALLOW_PRIVATE: &str = "feed content may reach only public addresses; \
                             `fetch.allow_private` allows ranges of others, in CIDR notation";

/// Why a content-driven URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}: only http and https are fetched")]
    Scheme(Url),
    #[error("{0}: no host")]
    NoHost(Url),
    #[error("{url}: refused to connect to non-public address {ip} ({ALLOW_PRIVATE})")]
    NonPublic { url: Url, ip: IpAddr },
}

/// Why a content-driven URL may not be fetched, if it may not.
pub fn check_url(url: &Url, policy: &AddressPolicy) -> Result<(), Refusal> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::Scheme(url.clone()));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) => return Ok(()),
        None => return Err(Refusal::NoHost(url.clone())),
    };
    if policy.permits(ip) {
        Ok(())
    } else {
        Err(Refusal::NonPublic {
            url: url.clone(),
            ip,
        })
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
                    "refused to connect to {host}: it resolves only to non-public addresses \
                     ({ALLOW_PRIVATE})"
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

    fn allowing(ranges: &[&str]) -> AddressPolicy {
        let ranges: Vec<IpNet> = ranges.iter().map(|r| r.parse().expect("range")).collect();
        AddressPolicy::new(&ranges)
    }

    #[test]
    fn allowed_ranges_open_exactly_themselves() {
        let policy = allowing(&["127.0.0.1/32"]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
    }

    #[test]
    fn ipv4_ranges_cover_their_prefix_whatever_the_host_bits() {
        let policy = allowing(&["10.1.2.3/16"]);
        assert!(policy.permits(ip("10.1.0.1")));
        assert!(policy.permits(ip("10.1.255.254")));
        assert!(!policy.permits(ip("10.2.0.1")));
        assert!(!policy.permits(ip("192.168.1.1")));
    }

    #[test]
    fn ipv6_ranges_cover_their_prefix_and_not_ipv4() {
        let policy = allowing(&["fd00:1234::/32", "::1/128"]);
        assert!(policy.permits(ip("fd00:1234:5678::9")));
        assert!(policy.permits(ip("::1")));
        assert!(!policy.permits(ip("fd00:1235::1")));
        assert!(!policy.permits(ip("127.0.0.1")));
        // The whole IPv6 space opens no IPv4 address, mapped or not.
        let v6_only = allowing(&["::/0"]);
        assert!(v6_only.permits(ip("fe80::1")));
        assert!(!v6_only.permits(ip("10.0.0.1")));
        assert!(!v6_only.permits(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn mapped_ipv6_ranges_are_their_ipv4_ranges() {
        // The hand-written matcher computed `32 - 128` for these: a panic in debug builds, and
        // in release a zero mask that opened every IPv4 address.
        let policy = allowing(&["::ffff:127.0.0.1/128", "::ffff:10.0.0.0/104"]);
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(policy.permits(ip("10.200.0.1")));
        assert!(!policy.permits(ip("172.16.0.1")));
    }

    #[test]
    fn refusals_name_the_url_and_the_reason() {
        let url = Url::parse("http://10.0.0.1/x").expect("url");
        let refusal = check_url(&url, &AddressPolicy::default()).expect_err("private");
        assert_eq!(
            refusal,
            Refusal::NonPublic {
                url: url.clone(),
                ip: ip("10.0.0.1")
            }
        );
        assert_eq!(
            refusal.to_string(),
            "http://10.0.0.1/x: refused to connect to non-public address 10.0.0.1 (feed \
             content may reach only public addresses; `fetch.allow_private` allows ranges of \
             others, in CIDR notation)"
        );
        assert!(check_url(&url, &allowing(&["10.0.0.0/8"])).is_ok());
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
