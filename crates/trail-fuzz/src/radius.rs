//! RADIUS (RFC 2865, 2866): what comes back from a server is accepted exactly when a reference
//! check written from the RFC accepts it, a genuine answer is never refused and an altered one
//! never accepted; what Trail sends is a well-formed packet whatever its attributes hold.
//! Input: a request authenticator (16 octets), a secret's length and the secret, then either a
//! response (when the first octet is even) or attributes to send.

use md5::{Digest, Md5};
use trail_forward::radius::packet::{self, Attributes, MAX_PACKET};

pub fn run(data: &[u8]) {
    let Some((authenticator, rest)) = data.split_first_chunk::<16>() else { return };
    let Some((&secret_length, rest)) = rest.split_first() else { return };
    let secret_length = usize::from(secret_length % 64).min(rest.len());
    let (secret, rest) = rest.split_at(secret_length);
    if authenticator[0] % 2 == 0 {
        check_response(rest, authenticator, secret);
    } else {
        check_request(rest, secret);
    }
}

fn check_response(response: &[u8], request: &[u8; 16], secret: &[u8]) {
    let verdict = packet::verify_response(response, request, secret).is_ok();
    assert_eq!(verdict, reference_accepts(response, request, secret), "on {response:?}");
    // The same octets made genuine are accepted, and a flipped octet of them is not.
    let Some(mut genuine) = genuine(response, request, secret) else { return };
    assert!(packet::verify_response(&genuine, request, secret).is_ok(), "a genuine answer is refused: {genuine:?}");
    let at = usize::from(response.first().copied().unwrap_or(0)) % genuine.len();
    genuine[at] ^= 0x01;
    assert!(packet::verify_response(&genuine, request, secret).is_err(), "an altered answer is accepted (octet {at})");
}

/// RFC 2866 section 3, read on its own: Code 5, a Length from 20 to the octets received (those
/// past it are padding), and ResponseAuth = MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
fn reference_accepts(response: &[u8], request: &[u8; 16], secret: &[u8]) -> bool {
    if response.len() < 20 || response[0] != 5 {
        return false;
    }
    let length = usize::from(response[2]) << 8 | usize::from(response[3]);
    if !(20..=response.len()).contains(&length) {
        return false;
    }
    let mut hashed = response[..4].to_vec();
    hashed.extend_from_slice(request);
    hashed.extend_from_slice(&response[20..length]);
    hashed.extend_from_slice(secret);
    Md5::digest(&hashed)[..] == response[4..20]
}

/// `response` as the genuine answer it could have been: code 5, its length, its authenticator.
fn genuine(response: &[u8], request: &[u8; 16], secret: &[u8]) -> Option<Vec<u8>> {
    let body = response.get(20..)?;
    let length = u16::try_from(20 + body.len()).ok()?;
    let mut packet = vec![5, response[1]];
    packet.extend(length.to_be_bytes());
    packet.extend([0; 16]);
    packet.extend_from_slice(body);
    let mut hashed = packet[..4].to_vec();
    hashed.extend_from_slice(request);
    hashed.extend_from_slice(body);
    hashed.extend_from_slice(secret);
    packet[4..20].copy_from_slice(&Md5::digest(&hashed));
    Some(packet)
}

/// Attributes from the input, `[kind, form, length, value...]` each, sent: the packet's Length is
/// its size, at most 4096 octets, and its attributes a chain of well-formed ones.
fn check_request(mut input: &[u8], secret: &[u8]) {
    let mut attributes = Attributes::default();
    while let [kind, form, length, rest @ ..] = input {
        let (value, tail) = rest.split_at(usize::from(*length).min(rest.len()));
        let text = String::from_utf8_lossy(value);
        // Type 26 is Vendor-Specific: only `vendor_text` makes one.
        let plain = if *kind == 26 { 25 } else { *kind };
        match form % 3 {
            0 => attributes.text(plain, &text),
            1 => attributes.vendor_text(32473, *kind, &text),
            _ => attributes.integer(plain, u32::from(*length)),
        }
        input = tail;
    }
    let request = packet::accounting_request(7, &attributes, secret);
    assert!(request.len() <= MAX_PACKET, "a request of {} octets", request.len());
    assert_eq!(usize::from(u16::from_be_bytes([request[2], request[3]])), request.len(), "Length");
    let mut at = 20;
    while at < request.len() {
        let length = usize::from(*request.get(at + 1).expect("an attribute's length"));
        assert!(length >= 3 && at + length <= request.len(), "a malformed attribute at {at}: {request:?}");
        let value = &request[at + 2..at + length];
        if request[at] == 26 {
            assert!(length >= 9 && usize::from(value[5]) == length - 6, "a malformed vendor attribute at {at}");
        }
        at += length;
    }
}
