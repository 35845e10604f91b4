//! `--http-allow`: the hosts `http` tasks may reach, so that a URL built from a job's
//! store cannot reach an internal address the operator did not intend (SSRF).
//!
//! Rules, each with an optional `:PORT` (else any port):
//! - `api.example.com`: that host name exactly (case-insensitive);
//! - `*.example.com`: any name under `example.com` (not `example.com` itself);
//! - `10.0.0.0/8`, `192.0.2.7`, `[fd00::]/8`, `::1`: addresses in a CIDR block (a bare
//!   address is a block of one; an IPv6 block with a port is bracketed: `[fd00::]/8:443`).
//!
//! What is checked, with a list set:
//! 1. Before anything is sent, the URL's host: a name must match a name rule, an IP
//!    literal a CIDR rule, and the URL's port (or its scheme's) the rule's port.
//! 2. When a name is resolved, every address it resolves to: a public address is
//!    reached as the name rule allows, but an internal one (loopback, private,
//!    link-local, unique-local, CGNAT, multicast, unspecified; IPv4-mapped IPv6 as its
//!    IPv4) only if a CIDR rule *without a port* holds it (the resolver does not see
//!    the port, so `127.0.0.1:8080` admits that literal URL but no name resolving to
//!    127.0.0.1). The connection is made only to the addresses that passed, so a name
//!    cannot be re-pointed between the check and the connect.
//! 3. Redirects are never followed (see the kind's doc), so no answer moves a request
//!    to another host; proxy variables are not read.

use std::net::IpAddr;

use http::Uri;

/// Why an allow-list entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--http-allow {entry:?}: {why}")]
pub struct BadRule {
    /// The entry as given.
    pub entry: String,
    /// What is wrong with it.
    pub why: String,
}

/// One rule of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// A host name, lowercase.
    Exact(String),
    /// `*.suffix`: the suffix with its leading dot, lowercase.
    Under(String),
    /// An address block.
    Block(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    host: Host,
    port: Option<u16>,
}

/// The hosts `http` tasks may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    /// Parses the entries (`--http-allow`, comma-separated); blank entries are skipped.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, BadRule> {
        let rules = entries
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .map(|entry| rule(entry).map_err(|why| BadRule { entry: entry.to_owned(), why }))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { rules })
    }

    /// True when the list names nothing (which would deny every URL).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `uri` may be requested: `Err` says why not, without the path or query.
    pub fn check_url(&self, uri: &Uri) -> Result<(), String> {
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        let allowed =
            self.rules.iter().filter(|r| r.port.is_none_or(|p| p == port)).any(|r| match (&r.host, literal) {
                (Host::Block(net, bits), Some(ip)) => contains(*net, *bits, ip),
                (Host::Exact(name), None) => host.eq_ignore_ascii_case(name),
                (Host::Under(suffix), None) => {
                    host.len() > suffix.len() && host.to_ascii_lowercase().ends_with(suffix.as_str())
                }
                _ => false,
            });
        if allowed {
            Ok(())
        } else {
            Err(format!("host {host} port {port} is not allowed by --http-allow"))
        }
    }

    /// Whether a name that passed [`AllowList::check_url`] may be reached at `ip`:
    /// public addresses may, internal ones only inside a CIDR rule without a port.
    pub fn permits_resolved(&self, ip: IpAddr) -> bool {
        let any_port_block =
            |r: &Rule| r.port.is_none() && matches!(r.host, Host::Block(net, bits) if contains(net, bits, ip));
        !is_internal(ip) || self.rules.iter().any(any_port_block)
    }
}

fn rule(entry: &str) -> Result<Rule, String> {
    // `[v6]`, `[v6]/bits`, each with an optional `:port`.
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("an opening `[` without its `]`")?;
        let (bits, port) = match after.split_once(':') {
            Some((bits, port)) => (bits, Some(port)),
            None => (after, None),
        };
        let bits = bits.strip_prefix('/').map(str::to_owned);
        if !after.is_empty() && bits.is_none() && !after.starts_with(':') {
            return Err(format!("unexpected {after:?} after `]`"));
        }
        return Ok(Rule { host: block(inside, bits.as_deref())?, port: port.map(parse_port).transpose()? });
    }
    // A bare IPv6 address or block has colons of its own and no port.
    if entry.matches(':').count() > 1 {
        let (addr, bits) = entry.split_once('/').map_or((entry, None), |(a, b)| (a, Some(b)));
        return Ok(Rule { host: block(addr, bits)?, port: None });
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((host, port)) => (host, Some(parse_port(port)?)),
        None => (entry, None),
    };
    let (addr, bits) = host.split_once('/').map_or((host, None), |(a, b)| (a, Some(b)));
    if addr.parse::<IpAddr>().is_ok() {
        return Ok(Rule { host: block(addr, bits)?, port });
    }
    if bits.is_some() {
        return Err("a /prefix needs an IP address before it".into());
    }
    let name = host.to_ascii_lowercase();
    let (wild, bare) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name.as_str()),
    };
    let label_ok = |l: &str| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if bare.is_empty() || !bare.trim_end_matches('.').split('.').all(label_ok) {
        return Err("expected a host name, `*.suffix`, an IP address or a CIDR block".into());
    }
    let host = if wild { Host::Under(format!(".{bare}")) } else { Host::Exact(bare.to_owned()) };
    Ok(Rule { host, port })
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{text:?} is not a port"))
}

fn block(addr: &str, bits: Option<&str>) -> Result<Host, String> {
    let ip: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(text) => {
            text.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("/{text} is not a prefix length"))?
        }
    };
    Ok(Host::Block(ip, bits))
}

/// Whether `ip` lies in `net/bits` (an IPv4-mapped IPv6 address counts as its IPv4).
fn contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    let ip = unmapped(ip);
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses inside a host or a private network, which a public name should not lead to.
pub fn is_internal(ip: IpAddr) -> bool {
    match unmapped(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // CGNAT, 100.64.0.0/10
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(entries).unwrap()
    }

    fn url(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn names_wildcards_and_ports() {
        let allow = list(&["api.example.com", "*.corp.example:8443", "Example.ORG"]);
        assert!(allow.check_url(&url("https://API.example.com/x?q=1")).is_ok());
        assert!(allow.check_url(&url("http://example.org/")).is_ok());
        assert!(allow.check_url(&url("https://a.b.corp.example:8443/")).is_ok());
        let denied = allow.check_url(&url("https://a.corp.example/")).unwrap_err();
        assert_eq!(denied, "host a.corp.example port 443 is not allowed by --http-allow");
        assert!(allow.check_url(&url("https://corp.example:8443/")).is_err(), "the wildcard needs a label");
        assert!(allow.check_url(&url("https://evilexample.com/")).is_err());
        assert!(allow.check_url(&url("https://api.example.com.evil.net/")).is_err());
    }

    #[test]
    fn literals_need_a_block() {
        let allow = list(&["10.1.0.0/16", "192.0.2.7:8080", "[fd00::]/8:443", "::1"]);
        assert!(allow.check_url(&url("http://10.1.2.3/")).is_ok());
        assert!(allow.check_url(&url("http://10.2.0.1/")).is_err());
        assert!(allow.check_url(&url("http://192.0.2.7:8080/")).is_ok());
        assert!(allow.check_url(&url("http://192.0.2.7/")).is_err());
        assert!(allow.check_url(&url("https://[fd12::1]/")).is_ok());
        assert!(allow.check_url(&url("http://[::1]:9/")).is_ok());
        // A name rule never admits a literal, nor a block a name.
        assert!(list(&["localhost"]).check_url(&url("http://127.0.0.1/")).is_err());
        assert!(list(&["127.0.0.0/8"]).check_url(&url("http://localhost/")).is_err());
    }

    #[test]
    fn resolved_addresses_internal_only_by_a_block() {
        let allow = list(&["api.example.com", "10.0.0.0/8"]);
        assert!(allow.permits_resolved("93.184.216.34".parse().unwrap()));
        assert!(allow.permits_resolved("10.9.9.9".parse().unwrap()));
        let with_port = list(&["localhost", "127.0.0.1:8080"]);
        assert!(!with_port.permits_resolved("127.0.0.1".parse().unwrap()), "a block with a port admits no name");
        for internal in
            ["127.0.0.1", "169.254.169.254", "192.168.1.1", "100.64.0.1", "::1", "fe80::1", "::ffff:127.0.0.1"]
        {
            assert!(!allow.permits_resolved(internal.parse().unwrap()), "{internal}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["http://x", "a b", "10.0.0.0/33", "host:0", "x/8", "[::1", "*.", "[::1]x"] {
            let err = AllowList::parse(&[bad]).unwrap_err();
            assert_eq!(err.entry, bad);
        }
    }
}
