//! Which network addresses kluis may send to on someone's say-so.
//!
//! Venue managers name webhook URLs and operators name alert and mail
//! servers; the outbox then connects from every node, inside whatever
//! network the nodes live in. A URL that points at loopback, a private
//! network or a cloud's metadata service would turn kluis into a way to
//! reach (and, for metadata, read credentials from) machines that are not
//! meant to be reachable from outside. This module says which addresses
//! are such internal targets; the callers refuse them unless the operator
//! has opted in (development and tests).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a target for outgoing requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// A cloud's instance metadata service (credentials live there).
    Metadata,
    /// This machine: 127.0.0.0/8, ::1, `localhost`.
    Loopback,
    /// 0.0.0.0, :: (connects to this machine on most systems) and the rest
    /// of 0.0.0.0/8.
    Unspecified,
    /// RFC 1918 networks, unique-local fc00::/7 and deprecated site-local.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10, carrier-grade NAT, shared between a provider's
    /// customers.
    SharedAddressSpace,
    Multicast,
    Broadcast,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32,
    /// 3fff::/20: never in use on the internet.
    Documentation,
    /// Benchmarking, protocol-assignment, discard, future-use and tunnel
    /// ranges: nothing a receiver of ours lives in.
    Reserved,
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Metadata => "a cloud metadata service",
            Self::Loopback => "a loopback address",
            Self::Unspecified => "an unspecified address",
            Self::Private => "a private network address",
            Self::LinkLocal => "a link-local address",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "a broadcast address",
            Self::Documentation => "a documentation address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// Metadata services by address: AWS, GCP, Azure, OpenStack and others at
/// 169.254.169.254, AWS ECS task credentials, Alibaba Cloud, Oracle's
/// older endpoint, and AWS's IPv6 endpoint.
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)];

/// Metadata services by name (they resolve to internal addresses inside
/// the cloud, and may not resolve at all where a URL is checked).
const METADATA_HOSTS: [&str; 6] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

/// Whether an IPv4 address is in `network`/`prefix`.
fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

/// Whether an IPv6 address is in `network`/`prefix`.
fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(network) & mask
}

/// Why `ip` is internal, or `None` for an address on the public internet.
pub fn internal_v4(ip: Ipv4Addr) -> Option<Internal> {
    if METADATA_V4.contains(&ip) {
        return Some(Internal::Metadata);
    }
    let ranges: [([u8; 4], u32, Internal); 16] = [
        ([0, 0, 0, 0], 8, Internal::Unspecified),
        ([10, 0, 0, 0], 8, Internal::Private),
        ([100, 64, 0, 0], 10, Internal::SharedAddressSpace),
        ([127, 0, 0, 0], 8, Internal::Loopback),
        ([169, 254, 0, 0], 16, Internal::LinkLocal),
        ([172, 16, 0, 0], 12, Internal::Private),
        ([192, 0, 0, 0], 24, Internal::Reserved),
        ([192, 0, 2, 0], 24, Internal::Documentation),
        ([192, 88, 99, 0], 24, Internal::Reserved),
        ([192, 168, 0, 0], 16, Internal::Private),
        ([198, 18, 0, 0], 15, Internal::Reserved),
        ([198, 51, 100, 0], 24, Internal::Documentation),
        ([203, 0, 113, 0], 24, Internal::Documentation),
        ([224, 0, 0, 0], 4, Internal::Multicast),
        ([255, 255, 255, 255], 32, Internal::Broadcast),
        ([240, 0, 0, 0], 4, Internal::Reserved),
    ];
    ranges
        .iter()
        .find(|(network, prefix, _)| in_v4(ip, *network, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why `ip` is internal, or `None` for an address on the public internet.
/// IPv6 addresses that carry an IPv4 address (mapped, NAT64, 6to4) are
/// judged by the IPv4 address they reach.
pub fn internal_v6(ip: Ipv6Addr) -> Option<Internal> {
    if METADATA_V6.contains(&ip) {
        return Some(Internal::Metadata);
    }
    if ip.is_unspecified() {
        return Some(Internal::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Internal::Loopback);
    }
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(0));
    // ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64) reach a.b.c.d.
    if in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
        || in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return internal_v4(low_v4);
    }
    // 2002:a.b.c.d::/48 (6to4) reaches a.b.c.d.
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let embedded = u32::try_from((bits >> 80) & 0xffff_ffff).unwrap_or(0);
        return internal_v4(Ipv4Addr::from(embedded));
    }
    let ranges: [(Ipv6Addr, u32, Internal); 11] = [
        // IPv4-compatible (deprecated) and other ::/96 forms.
        (
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
            96,
            Internal::Reserved,
        ),
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            Internal::Private,
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            Internal::Reserved,
        ),
        // Teredo tunnels and benchmarking inside the IETF block.
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            32,
            Internal::Reserved,
        ),
        (
            Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
            48,
            Internal::Reserved,
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            Internal::Documentation,
        ),
        (
            Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
            20,
            Internal::Documentation,
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            Internal::Private,
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            10,
            Internal::LinkLocal,
        ),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            Internal::Private,
        ),
        (
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
            Internal::Multicast,
        ),
    ];
    ranges
        .iter()
        .find(|(network, prefix, _)| in_v6(ip, *network, *prefix))
        .map(|(_, _, why)| *why)
}

/// Why `ip` is internal, or `None` for an address on the public internet.
pub fn internal(ip: IpAddr) -> Option<Internal> {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

/// Why a URL's host names an internal target before any lookup: an
/// address written out (with or without IPv6 brackets), `localhost` and
/// its subdomains, or a known metadata host name. Other names are judged
/// by what they resolve to, when a connection is made.
pub fn internal_host(host: &str) -> Option<Internal> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return internal(ip);
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Some(Internal::Loopback);
    }
    if METADATA_HOSTS.contains(&name.as_str()) {
        return Some(Internal::Metadata);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Option<Internal> {
        internal(text.parse::<Ipv4Addr>().expect(text).into())
    }

    fn v6(text: &str) -> Option<Internal> {
        internal(text.parse::<Ipv6Addr>().expect(text).into())
    }

    #[test]
    fn public_ipv4_addresses_are_targets() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "11.0.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(v4(address), None, "{address}");
        }
    }

    #[test]
    fn loopback_unspecified_and_this_network_ipv4_are_internal() {
        assert_eq!(v4("127.0.0.1"), Some(Internal::Loopback));
        assert_eq!(v4("127.255.255.254"), Some(Internal::Loopback));
        assert_eq!(v4("0.0.0.0"), Some(Internal::Unspecified));
        assert_eq!(v4("0.1.2.3"), Some(Internal::Unspecified));
    }

    #[test]
    fn private_link_local_and_carrier_nat_ipv4_are_internal() {
        for address in [
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
        ] {
            assert_eq!(v4(address), Some(Internal::Private), "{address}");
        }
        assert_eq!(v4("169.254.0.1"), Some(Internal::LinkLocal));
        assert_eq!(v4("100.64.0.1"), Some(Internal::SharedAddressSpace));
        assert_eq!(v4("100.127.255.255"), Some(Internal::SharedAddressSpace));
    }

    #[test]
    fn cloud_metadata_addresses_are_named_as_such() {
        for address in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "192.0.0.192",
        ] {
            assert_eq!(v4(address), Some(Internal::Metadata), "{address}");
        }
        assert_eq!(v6("fd00:ec2::254"), Some(Internal::Metadata));
        assert_eq!(v6("::ffff:169.254.169.254"), Some(Internal::Metadata));
    }

    #[test]
    fn multicast_broadcast_documentation_and_reserved_ipv4_are_internal() {
        assert_eq!(v4("224.0.0.1"), Some(Internal::Multicast));
        assert_eq!(v4("239.255.255.250"), Some(Internal::Multicast));
        assert_eq!(v4("255.255.255.255"), Some(Internal::Broadcast));
        assert_eq!(v4("240.0.0.1"), Some(Internal::Reserved));
        assert_eq!(v4("198.18.0.1"), Some(Internal::Reserved));
        assert_eq!(v4("192.0.0.8"), Some(Internal::Reserved));
        for address in ["192.0.2.1", "198.51.100.7", "203.0.113.255"] {
            assert_eq!(v4(address), Some(Internal::Documentation), "{address}");
        }
    }

    #[test]
    fn public_ipv6_addresses_are_targets() {
        for address in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "2001:4860::8888",
        ] {
            assert_eq!(v6(address), None, "{address}");
        }
    }

    #[test]
    fn internal_ipv6_ranges_are_internal() {
        assert_eq!(v6("::1"), Some(Internal::Loopback));
        assert_eq!(v6("::"), Some(Internal::Unspecified));
        assert_eq!(v6("fd12:3456::1"), Some(Internal::Private));
        assert_eq!(v6("fc00::1"), Some(Internal::Private));
        assert_eq!(v6("fe80::1"), Some(Internal::LinkLocal));
        assert_eq!(v6("febf:ffff::1"), Some(Internal::LinkLocal));
        assert_eq!(v6("fec0::1"), Some(Internal::Private));
        assert_eq!(v6("ff02::1"), Some(Internal::Multicast));
        assert_eq!(v6("2001:db8::1"), Some(Internal::Documentation));
        assert_eq!(v6("3fff::1"), Some(Internal::Documentation));
        assert_eq!(v6("100::1"), Some(Internal::Reserved));
        assert_eq!(v6("2001::1"), Some(Internal::Reserved));
        assert_eq!(v6("::7f00:1"), Some(Internal::Reserved));
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        assert_eq!(v6("::ffff:127.0.0.1"), Some(Internal::Loopback));
        assert_eq!(v6("::ffff:10.0.0.1"), Some(Internal::Private));
        assert_eq!(v6("::ffff:0.0.0.0"), Some(Internal::Unspecified));
        assert_eq!(v6("::ffff:8.8.8.8"), None);
        assert_eq!(v6("64:ff9b::a9fe:a9fe"), Some(Internal::Metadata));
        assert_eq!(v6("64:ff9b::808:808"), None);
        assert_eq!(v6("2002:c0a8:0101::1"), Some(Internal::Private));
        assert_eq!(v6("2002:0808:0808::1"), None);
    }

    #[test]
    fn hosts_are_judged_by_written_address_or_known_name() {
        assert_eq!(internal_host("127.0.0.1"), Some(Internal::Loopback));
        assert_eq!(internal_host("[::1]"), Some(Internal::Loopback));
        assert_eq!(internal_host("[fd00:ec2::254]"), Some(Internal::Metadata));
        assert_eq!(internal_host("LocalHost."), Some(Internal::Loopback));
        assert_eq!(internal_host("api.localhost"), Some(Internal::Loopback));
        assert_eq!(
            internal_host("metadata.google.internal"),
            Some(Internal::Metadata)
        );
        assert_eq!(
            internal_host("Metadata.Google.Internal."),
            Some(Internal::Metadata)
        );
        assert_eq!(internal_host("hooks.example.com"), None);
        assert_eq!(internal_host("1.1.1.1"), None);
        assert_eq!(internal_host("localhost.example.com"), None);
    }
}
