//! Who a request comes from: the TCP peer, or, when the peer is a proxy the configuration
//! trusts, the address that proxy names in `X-Forwarded-For`. Events record it, and the login
//! throttle counts by it, so that behind a proxy one attacker is not everyone.

use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The proxies whose `X-Forwarded-For` is believed (`[auth] trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Networks (`10.0.0.0/8`) or single addresses (`127.0.0.1`, `::1`).
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        entries
            .iter()
            .map(|entry| {
                entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    format!("[auth] trusted_proxies: {entry:?} is not an address or a network such as 10.0.0.0/8")
                })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a request from `peer`: walking `X-Forwarded-For` from the right (the
    /// entries trusted proxies appended), the first address no trusted proxy holds. A header
    /// from an untrusted peer is anyone's text and is ignored; so is a malformed one.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            let Ok(address) = entry.parse::<IpAddr>() else { return client };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// The client address of the request (the one recorded in events).
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(ClientAddress(state.trusted_proxies.client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let forged = headers(&["203.0.113.9"]);
        assert_eq!(proxies.client(ip("198.51.100.1"), &forged), ip("198.51.100.1"), "an untrusted peer's header");
        assert_eq!(proxies.client(ip("10.1.2.3"), &forged), ip("203.0.113.9"));
        // The client may send its own header first; only what trusted proxies appended counts.
        let chain = headers(&["1.2.3.4, 203.0.113.9", "10.9.9.9"]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &chain), ip("203.0.113.9"));
        assert_eq!(proxies.client(ip("::1"), &headers(&["garbage"])), ip("::1"), "a malformed header is ignored");
        assert_eq!(proxies.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err().contains("10.0.0.0/33"));
    }
}
