//! RADIUS packets (RFC 2865 section 3, RFC 2866): attributes, Accounting-Request with its
//! authenticator, and the checks on an Accounting-Response.

use md5::{Digest, Md5};
use trail_core::event::prefix_within;

pub const ACCOUNTING_REQUEST: u8 = 4;
pub const ACCOUNTING_RESPONSE: u8 = 5;
const HEADER: usize = 20;
pub const MAX_PACKET: usize = 4096;
const VENDOR_SPECIFIC: u8 = 26;
/// A string attribute holds at most 253 octets; inside a vendor-specific one, 247.
const MAX_VALUE: usize = 253;
const MAX_VENDOR_VALUE: usize = 247;

/// Encoded attributes, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(Vec<u8>);

impl Attributes {
    /// A text attribute, cut to 253 octets at a character boundary. Empty text is left out
    /// (RFC 2865: strings are at least one octet).
    pub fn text(&mut self, kind: u8, value: &str) {
        let value = prefix_within(value, MAX_VALUE);
        if !value.is_empty() {
            self.push(&[&[kind, (2 + value.len()) as u8], value.as_bytes()]);
        }
    }

    pub fn integer(&mut self, kind: u8, value: u32) {
        self.push(&[&[kind, 6], &value.to_be_bytes()]);
    }

    /// A vendor-specific text attribute (RFC 2865 5.26, the recommended format).
    pub fn vendor_text(&mut self, vendor: u32, kind: u8, value: &str) {
        let value = prefix_within(value, MAX_VENDOR_VALUE);
        if !value.is_empty() {
            let header = [VENDOR_SPECIFIC, (8 + value.len()) as u8];
            self.push(&[&header, &vendor.to_be_bytes(), &[kind, (2 + value.len()) as u8], value.as_bytes()]);
        }
    }

    /// Appends one attribute made of `parts`, whole, or leaves it out when the packet has no
    /// room left for it: a packet cut inside an attribute would be malformed (found by fuzzing).
    fn push(&mut self, parts: &[&[u8]]) {
        let length: usize = parts.iter().map(|part| part.len()).sum();
        if self.0.len() + length <= MAX_PACKET - HEADER {
            parts.iter().for_each(|part| self.0.extend_from_slice(part));
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An Accounting-Request: the Request Authenticator is MD5(Code, Identifier, Length, 16 zero
/// octets, Attributes, Secret) (RFC 2866 3).
pub fn accounting_request(id: u8, attributes: &Attributes, secret: &[u8]) -> Vec<u8> {
    let attributes = &attributes.0;
    let length = (HEADER + attributes.len()) as u16;
    let mut packet = Vec::with_capacity(usize::from(length));
    packet.extend([ACCOUNTING_REQUEST, id]);
    packet.extend(length.to_be_bytes());
    packet.extend([0u8; 16]);
    packet.extend_from_slice(attributes);
    let authenticator = Md5::new().chain_update(&packet).chain_update(secret).finalize();
    packet[4..HEADER].copy_from_slice(&authenticator);
    packet
}

pub fn authenticator(packet: &[u8]) -> [u8; 16] {
    packet[4..HEADER].try_into().expect("a request has a header")
}

/// Whether `response` is a genuine Accounting-Response to the request with `request_authenticator`:
/// the right code and length, and a Response Authenticator of MD5(Code, Identifier, Length,
/// Request Authenticator, Attributes, Secret).
pub fn verify_response(response: &[u8], request_authenticator: &[u8; 16], secret: &[u8]) -> Result<(), &'static str> {
    if response.len() < HEADER {
        return Err("shorter than a RADIUS header");
    }
    if response[0] != ACCOUNTING_RESPONSE {
        return Err("not an Accounting-Response");
    }
    let length = usize::from(u16::from_be_bytes([response[2], response[3]]));
    if length < HEADER || length > response.len() {
        return Err("its length field is wrong");
    }
    let response = &response[..length];
    let expected = Md5::new()
        .chain_update(&response[..4])
        .chain_update(request_authenticator)
        .chain_update(&response[HEADER..])
        .chain_update(secret)
        .finalize();
    if expected[..] == response[4..HEADER] { Ok(()) } else { Err("its authenticator is wrong (another secret?)") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_authenticators() {
        let mut attributes = Attributes::default();
        attributes.text(1, "alice");
        attributes.integer(40, 1);
        attributes.vendor_text(32473, 1, "AUTH_LOGIN_SUCCESS");
        let request = accounting_request(7, &attributes, b"testing123");
        assert_eq!(&request[..2], &[4, 7]);
        assert_eq!(usize::from(u16::from_be_bytes([request[2], request[3]])), request.len());
        let mut zeroed = request.clone();
        zeroed[4..20].fill(0);
        let expected = Md5::new().chain_update(&zeroed).chain_update(b"testing123").finalize();
        assert_eq!(&request[4..20], &expected[..]);

        let mut response = vec![ACCOUNTING_RESPONSE, 7, 0, 20];
        let good = Md5::new()
            .chain_update(&response)
            .chain_update(authenticator(&request))
            .chain_update(b"testing123")
            .finalize();
        response.extend_from_slice(&good);
        assert_eq!(verify_response(&response, &authenticator(&request), b"testing123"), Ok(()));
        assert!(verify_response(&response, &authenticator(&request), b"other").is_err());
        assert!(verify_response(&response[..10], &authenticator(&request), b"testing123").is_err());
        response[0] = 2;
        assert!(verify_response(&response, &authenticator(&request), b"testing123").is_err());
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        let mut attributes = Attributes::default();
        attributes.text(1, &"é".repeat(200));
        assert_eq!(attributes.bytes()[1], 2 + 252);
        let mut empty = Attributes::default();
        empty.text(1, "");
        assert!(empty.bytes().is_empty());
    }

    #[test]
    fn attributes_past_the_largest_packet_are_left_out_whole() {
        let mut attributes = Attributes::default();
        for _ in 0..20 {
            attributes.text(18, &"x".repeat(253));
        }
        let request = accounting_request(1, &attributes, b"secret");
        assert!(request.len() <= MAX_PACKET);
        assert_eq!((request.len() - HEADER) % 255, 0, "only whole attributes: {}", request.len());
    }
}
