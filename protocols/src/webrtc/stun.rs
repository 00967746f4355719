//! Zero-copy STUN message view (RFC 8489), just enough to route ICE connectivity checks.
//!
//! The proxy reads the header and `USERNAME`; it never answers, never builds a message and
//! never checks `MESSAGE-INTEGRITY` or `FINGERPRINT` (RFC 8489 §14.5, §14.7). Those protect the
//! check end to end: the key is the origin's `ice-pwd`, which the origin verifies itself (it
//! answers a bad check with 401 or drops it, RFC 8445 §7.3). A forged `USERNAME` can therefore
//! only steer a datagram to the origin that owns that ufrag, which rejects it; checking here
//! would cost an HMAC per check and a copy of every session's password on every core, and buy
//! nothing.
//!
//! Every length is checked before use ([`StunMessage::parse`] walks all attributes once), so the
//! accessors cannot fail afterwards and nothing panics on any input (spec §10 #20; Go panics on
//! a truncated attribute header, §5.6 step 2).

use super::error::StunError;

/// RFC 8489 §5: the fixed value in bytes 4..8 of every RFC 5389+ message.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Header size (RFC 8489 §5).
pub const HEADER_LEN: usize = 20;
/// Binding method (RFC 8489 §18.2).
pub const METHOD_BINDING: u16 = 0x001;
/// `USERNAME` attribute type (RFC 8489 §14.3).
pub const ATTR_USERNAME: u16 = 0x0006;
/// `MESSAGE-INTEGRITY` (RFC 8489 §14.5): attributes after it are ignored, except the two below.
pub const ATTR_MESSAGE_INTEGRITY: u16 = 0x0008;
/// `MESSAGE-INTEGRITY-SHA256` (RFC 8489 §14.6).
pub const ATTR_MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// `FINGERPRINT` (RFC 8489 §14.7).
pub const ATTR_FINGERPRINT: u16 = 0x8028;
/// RFC 8489 §14.3: `USERNAME` is "fewer than 509 bytes".
pub const MAX_USERNAME_LEN: usize = 508;

/// Message class: the C1/C0 bits of the type (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunClass {
    /// `0b00`: a request (ICE connectivity checks are Binding requests, RFC 8445 §7.2.4).
    Request,
    /// `0b01`: an indication (ICE keepalives may be Binding indications, RFC 8445 §11).
    Indication,
    /// `0b10`: a success response.
    SuccessResponse,
    /// `0b11`: an error response.
    ErrorResponse,
}

/// One attribute: type and unpadded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunAttribute<'a> {
    /// Attribute type (RFC 8489 §18.3).
    pub kind: u16,
    /// Value without the padding.
    pub value: &'a [u8],
}

/// A validated STUN message borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StunMessage<'a> {
    // INVARIANT: `buf.len() >= HEADER_LEN` and every attribute fits (checked by `parse`, the
    // only constructor), so the fixed header slices below cannot panic.
    buf: &'a [u8],
}

impl<'a> StunMessage<'a> {
    /// Validates one UDP payload as exactly one STUN message: 20-byte header, top two bits
    /// zero, magic cookie, length a multiple of 4 that equals the bytes after the header
    /// (RFC 8489 §5; Go also requires the exact length), and every attribute header and padded
    /// value inside it (RFC 8489 §14: values are padded to 4 bytes; the padding bytes are
    /// ignored, whatever they hold).
    pub fn parse(datagram: &'a [u8]) -> Result<Self, StunError> {
        let Some(header) = datagram.get(..HEADER_LEN) else {
            return Err(StunError::TooShort {
                len: datagram.len(),
            });
        };
        if header[0] & 0xC0 != 0 {
            return Err(StunError::NotStun);
        }
        if be32(&header[4..8]) != MAGIC_COOKIE {
            return Err(StunError::BadMagicCookie);
        }
        let declared = usize::from(be16(&header[2..4]));
        let actual = datagram.len() - HEADER_LEN;
        if declared != actual || declared % 4 != 0 {
            return Err(StunError::LengthMismatch { declared, actual });
        }
        let msg = StunMessage { buf: datagram };
        let walk = RawAttributes {
            buf: datagram,
            pos: HEADER_LEN,
        };
        for attr in walk {
            attr?;
        }
        Ok(msg)
    }

    /// The 14-bit message type (method and class bits interleaved, RFC 8489 §5).
    pub fn message_type(&self) -> u16 {
        be16(&self.buf[0..2]) & 0x3FFF
    }

    /// The class (C1 = bit 8, C0 = bit 4 of the type, RFC 8489 §5).
    pub fn class(&self) -> StunClass {
        let t = self.message_type();
        match ((t >> 7) & 0b10) | ((t >> 4) & 0b01) {
            0b00 => StunClass::Request,
            0b01 => StunClass::Indication,
            0b10 => StunClass::SuccessResponse,
            _ => StunClass::ErrorResponse,
        }
    }

    /// The 12-bit method: type bits M0–M11 with the class bits taken out (RFC 8489 §5).
    pub fn method(&self) -> u16 {
        let t = self.message_type();
        (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    }

    /// A Binding request (type `0x0001`): what ICE sends to open and keep a pair (RFC 8445 §7.2.4).
    pub fn is_binding_request(&self) -> bool {
        self.method() == METHOD_BINDING && self.class() == StunClass::Request
    }

    /// The 96-bit transaction id (RFC 8489 §5).
    pub fn transaction_id(&self) -> &'a [u8] {
        &self.buf[8..HEADER_LEN]
    }

    /// The message as received (header and attributes).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Every attribute in order, including those after `MESSAGE-INTEGRITY`.
    pub fn attributes(&self) -> StunAttributes<'a> {
        StunAttributes {
            raw: RawAttributes {
                buf: self.buf,
                pos: HEADER_LEN,
            },
        }
    }

    /// The first attribute of type `kind` that counts: RFC 8489 §14.5 says attributes after
    /// `MESSAGE-INTEGRITY` (other than the integrity and fingerprint attributes themselves)
    /// are ignored, so an unprotected trailing copy cannot override the protected one.
    pub fn attribute(&self, kind: u16) -> Option<&'a [u8]> {
        let mut after_integrity = false;
        for attr in self.attributes() {
            if attr.kind == kind && !after_integrity {
                return Some(attr.value);
            }
            if attr.kind == ATTR_MESSAGE_INTEGRITY || attr.kind == ATTR_MESSAGE_INTEGRITY_SHA256 {
                after_integrity = true;
            }
        }
        None
    }

    /// `USERNAME` (RFC 8489 §14.3) as UTF-8, `Ok(None)` when absent. In ICE it is
    /// `<receiver ufrag>:<sender ufrag>` (RFC 8445 §7.2.2), so on a check from the client it is
    /// the proxy's session key `answer-ufrag:offer-ufrag` (spec §5.5 step 9).
    pub fn username(&self) -> Result<Option<&'a str>, StunError> {
        let Some(value) = self.attribute(ATTR_USERNAME) else {
            return Ok(None);
        };
        if value.len() > MAX_USERNAME_LEN {
            return Err(StunError::BadUsername);
        }
        std::str::from_utf8(value)
            .map(Some)
            .map_err(|_| StunError::BadUsername)
    }
}

/// Splits an ICE `USERNAME` at the first `:` into `(answer_ufrag, offer_ufrag)` as seen on a
/// check from the client (RFC 8445 §7.2.2: `<remote ufrag>:<local ufrag>` from the sender).
/// `None` when there is no `:` or either side is empty: such a name matches no session.
/// ufrags are `ice-char`s (RFC 8839 §5.4), which exclude `:`, so the split is unambiguous.
pub fn session_key(username: &str) -> Option<(&str, &str)> {
    let (answer, offer) = username.split_once(':')?;
    if answer.is_empty() || offer.is_empty() {
        return None;
    }
    Some((answer, offer))
}

/// Builds the session key the signalling path stores and the media path looks up
/// (`<answer-ufrag>:<offer-ufrag>`, spec §5.5 step 9; also the Redis `ufrag` value, §4.3).
pub fn format_session_key(answer_ufrag: &str, offer_ufrag: &str) -> String {
    let mut key = String::with_capacity(answer_ufrag.len() + 1 + offer_ufrag.len());
    key.push_str(answer_ufrag);
    key.push(':');
    key.push_str(offer_ufrag);
    key
}

/// Iterator over a validated message's attributes.
#[derive(Debug, Clone)]
pub struct StunAttributes<'a> {
    raw: RawAttributes<'a>,
}

impl<'a> Iterator for StunAttributes<'a> {
    type Item = StunAttribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // `parse` walked the same bytes and found no error, so `Err` cannot occur here; ending
        // the iteration on one keeps this panic-free anyway.
        self.raw.next()?.ok()
    }
}

/// The checked TLV walk shared by `parse` and the iterator (RFC 8489 §14).
#[derive(Debug, Clone)]
struct RawAttributes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for RawAttributes<'a> {
    type Item = Result<StunAttribute<'a>, StunError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.pos;
        let truncated = StunError::TruncatedAttribute { offset };
        let Some(header) = self.buf.get(offset..offset + 4) else {
            self.pos = self.buf.len();
            return Some(Err(truncated));
        };
        let kind = be16(&header[0..2]);
        let len = usize::from(be16(&header[2..4]));
        let start = offset + 4;
        // Padding to a 4-byte boundary (RFC 8489 §14); `len` ≤ 0xFFFF so this cannot overflow.
        let padded = (len + 3) & !3;
        match (
            self.buf.get(start..start + len),
            start + padded <= self.buf.len(),
        ) {
            (Some(value), true) => {
                self.pos = start + padded;
                Some(Ok(StunAttribute { kind, value }))
            }
            _ => {
                self.pos = self.buf.len();
                Some(Err(truncated))
            }
        }
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ty: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attrs {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = Vec::new();
        m.extend_from_slice(&ty.to_be_bytes());
        m.extend_from_slice(&(body.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn classes_and_methods_decode_per_rfc_8489_section_5() {
        let cases = [
            (0x0001, StunClass::Request, 1),
            (0x0011, StunClass::Indication, 1),
            (0x0101, StunClass::SuccessResponse, 1),
            (0x0111, StunClass::ErrorResponse, 1),
            (0x0003, StunClass::Request, 3),
        ];
        for (ty, class, method) in cases {
            let m = message(ty, &[]);
            let msg = StunMessage::parse(&m).unwrap();
            assert_eq!((msg.class(), msg.method()), (class, method), "{ty:#06x}");
            assert_eq!(msg.is_binding_request(), ty == 0x0001);
        }
    }

    #[test]
    fn username_after_message_integrity_is_ignored() {
        let m = message(
            1,
            &[(ATTR_MESSAGE_INTEGRITY, &[0; 20]), (ATTR_USERNAME, b"a:b")],
        );
        assert_eq!(StunMessage::parse(&m).unwrap().username(), Ok(None));
        let m = message(1, &[(ATTR_USERNAME, b"a:b"), (ATTR_USERNAME, b"c:d")]);
        assert_eq!(StunMessage::parse(&m).unwrap().username(), Ok(Some("a:b")));
    }

    #[test]
    fn session_key_splits_at_the_first_colon_and_needs_both_sides() {
        assert_eq!(session_key("02q4474o:di4q"), Some(("02q4474o", "di4q")));
        assert_eq!(session_key("a:b:c"), Some(("a", "b:c")));
        assert_eq!(session_key("ab"), None);
        assert_eq!(session_key(":b"), None);
        assert_eq!(session_key("a:"), None);
        assert_eq!(format_session_key("02q4474o", "di4q"), "02q4474o:di4q");
    }

    #[test]
    fn rejects_an_attribute_whose_padding_is_missing() {
        let mut m = message(1, &[(ATTR_USERNAME, b"abcde")]);
        // Drop the 3 padding bytes and fix the header length to a non-multiple of 4.
        m.truncate(m.len() - 3);
        let len = (m.len() - HEADER_LEN) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        assert!(StunMessage::parse(&m).is_err());
    }
}
