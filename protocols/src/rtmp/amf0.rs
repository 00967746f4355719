//! AMF0 values (Adobe AMF0 spec §2) with an order-preserving object model.
//!
//! Decoding is defensive: nesting is capped at [`MAX_DEPTH`], counts from the wire are never
//! used to pre-allocate more than the remaining input could hold, and every read is bounds
//! checked, so hostile bytes produce an error, never a panic or a large allocation.
//! Strings that are not UTF-8 are decoded lossily (stream names on the wire are ASCII in
//! practice; keeping `String` keeps the public API simple).

use super::error::RtmpError;

/// Deepest object/array nesting accepted. Real commands nest 3 levels (`_result` → info →
/// data); 32 leaves headroom without letting recursion blow the stack.
pub const MAX_DEPTH: usize = 32;

const MARKER_NUMBER: u8 = 0x00;
const MARKER_BOOLEAN: u8 = 0x01;
const MARKER_STRING: u8 = 0x02;
const MARKER_OBJECT: u8 = 0x03;
const MARKER_NULL: u8 = 0x05;
const MARKER_UNDEFINED: u8 = 0x06;
const MARKER_ECMA_ARRAY: u8 = 0x08;
const MARKER_OBJECT_END: u8 = 0x09;
const MARKER_STRICT_ARRAY: u8 = 0x0a;
const MARKER_DATE: u8 = 0x0b;
const MARKER_LONG_STRING: u8 = 0x0c;

/// One AMF0 value. Objects and ECMA arrays keep their property order, because the order is
/// part of the byte-identical replies (spec §5.1 D).
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// IEEE-754 double.
    Number(f64),
    /// Boolean.
    Boolean(bool),
    /// Short string (≤ 65535 bytes); longer strings are encoded as long strings.
    String(String),
    /// Anonymous object, properties in wire order.
    Object(Vec<(String, Amf0Value)>),
    /// Null.
    Null,
    /// Undefined.
    Undefined,
    /// ECMA (associative) array, properties in wire order.
    EcmaArray(Vec<(String, Amf0Value)>),
    /// Strict (dense) array.
    StrictArray(Vec<Amf0Value>),
    /// Date: milliseconds since the epoch and the (unused) timezone field.
    Date {
        /// Milliseconds since 1970-01-01.
        millis: f64,
        /// Time zone offset in minutes (reserved, usually 0).
        timezone: i16,
    },
    /// Long string (> 65535 bytes, or sent as such).
    LongString(String),
}

impl Amf0Value {
    /// Convenience constructor for string values.
    pub fn string(s: &str) -> Self {
        Amf0Value::String(s.to_owned())
    }

    /// The string content of `String`/`LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The number content of `Number`.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Properties of an `Object` or `EcmaArray`.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// First property named `key` of an `Object` or `EcmaArray`.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Appends the AMF0 encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Amf0Value::Number(n) => {
                out.push(MARKER_NUMBER);
                out.extend_from_slice(&n.to_be_bytes());
            }
            Amf0Value::Boolean(b) => {
                out.push(MARKER_BOOLEAN);
                out.push(u8::from(*b));
            }
            Amf0Value::String(s) if s.len() <= u16::MAX as usize => {
                out.push(MARKER_STRING);
                encode_utf8(s, out);
            }
            Amf0Value::String(s) | Amf0Value::LongString(s) => {
                out.push(MARKER_LONG_STRING);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Amf0Value::Object(props) => {
                out.push(MARKER_OBJECT);
                encode_properties(props, out);
            }
            Amf0Value::Null => out.push(MARKER_NULL),
            Amf0Value::Undefined => out.push(MARKER_UNDEFINED),
            Amf0Value::EcmaArray(props) => {
                out.push(MARKER_ECMA_ARRAY);
                out.extend_from_slice(&(props.len() as u32).to_be_bytes());
                encode_properties(props, out);
            }
            Amf0Value::StrictArray(items) => {
                out.push(MARKER_STRICT_ARRAY);
                out.extend_from_slice(&(items.len() as u32).to_be_bytes());
                for item in items {
                    item.encode(out);
                }
            }
            Amf0Value::Date { millis, timezone } => {
                out.push(MARKER_DATE);
                out.extend_from_slice(&millis.to_be_bytes());
                out.extend_from_slice(&timezone.to_be_bytes());
            }
        }
    }

    /// Decodes one value from the start of `input`; returns it and the bytes used.
    pub fn decode(input: &[u8]) -> Result<(Amf0Value, usize), RtmpError> {
        let mut r = Reader { buf: input, pos: 0 };
        let v = r.value(0)?;
        Ok((v, r.pos))
    }

    /// Decodes consecutive values until `input` is exhausted (a command body).
    pub fn decode_all(input: &[u8]) -> Result<Vec<Amf0Value>, RtmpError> {
        let mut r = Reader { buf: input, pos: 0 };
        let mut values = Vec::new();
        while r.pos < input.len() {
            values.push(r.value(0)?);
        }
        Ok(values)
    }
}

/// Encodes a sequence of values back to back (a command body).
pub fn encode_all(values: &[Amf0Value], out: &mut Vec<u8>) {
    for v in values {
        v.encode(out);
    }
}

fn encode_utf8(s: &str, out: &mut Vec<u8>) {
    // Keys and short strings: callers only pass ≤ 65535 bytes (checked above for values; keys
    // longer than that are truncated rather than producing a corrupt length prefix).
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode_properties(props: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (k, v) in props {
        encode_utf8(k, out);
        v.encode(out);
    }
    out.extend_from_slice(&[0, 0, MARKER_OBJECT_END]);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RtmpError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(RtmpError::Malformed("AMF0 value truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, RtmpError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, RtmpError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, RtmpError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, RtmpError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn utf8(&mut self, len: usize) -> Result<String, RtmpError> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, RtmpError> {
        if depth >= MAX_DEPTH {
            return Err(RtmpError::LimitExceeded {
                what: "AMF0 nesting depth",
                value: depth as u64 + 1,
                limit: MAX_DEPTH as u64,
            });
        }
        Ok(match self.u8()? {
            MARKER_NUMBER => Amf0Value::Number(self.f64()?),
            MARKER_BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            MARKER_STRING => {
                let n = self.u16()? as usize;
                Amf0Value::String(self.utf8(n)?)
            }
            MARKER_OBJECT => Amf0Value::Object(self.properties(depth)?),
            MARKER_NULL => Amf0Value::Null,
            MARKER_UNDEFINED => Amf0Value::Undefined,
            MARKER_ECMA_ARRAY => {
                // The count is advisory (encoders get it wrong); the object-end marker rules.
                let _count = self.u32()?;
                Amf0Value::EcmaArray(self.properties(depth)?)
            }
            MARKER_STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Each value takes at least one byte: never reserve more than the input holds.
                let mut items = Vec::with_capacity(count.min(self.buf.len() - self.pos));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(items)
            }
            MARKER_DATE => {
                let millis = self.f64()?;
                let tz = self.u16()? as i16;
                Amf0Value::Date {
                    millis,
                    timezone: tz,
                }
            }
            MARKER_LONG_STRING => {
                let n = self.u32()? as usize;
                Amf0Value::LongString(self.utf8(n)?)
            }
            _ => return Err(RtmpError::Malformed("unsupported AMF0 marker")),
        })
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, RtmpError> {
        let mut props = Vec::new();
        loop {
            let klen = self.u16()? as usize;
            if klen == 0 {
                // Empty key: must be followed by the object-end marker (AMF0 §2.5).
                if self.u8()? == MARKER_OBJECT_END {
                    return Ok(props);
                }
                return Err(RtmpError::Malformed("AMF0 empty key without object end"));
            }
            let key = self.utf8(klen)?;
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value_kind() {
        let v = Amf0Value::StrictArray(vec![
            Amf0Value::Number(1.5),
            Amf0Value::Boolean(true),
            Amf0Value::string("abc"),
            Amf0Value::Object(vec![("k".into(), Amf0Value::Null)]),
            Amf0Value::Undefined,
            Amf0Value::EcmaArray(vec![("a".into(), Amf0Value::Number(0.0))]),
            Amf0Value::Date {
                millis: 12.0,
                timezone: 0,
            },
            Amf0Value::LongString("x".repeat(70000)),
        ]);
        let mut out = Vec::new();
        v.encode(&mut out);
        let (back, used) = Amf0Value::decode(&out).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(back, v);
    }

    #[test]
    fn rejects_deep_nesting_without_overflowing_the_stack() {
        let mut bytes = [MARKER_STRICT_ARRAY, 0, 0, 0, 1].repeat(100_000);
        bytes.push(MARKER_NULL);
        assert!(matches!(
            Amf0Value::decode(&bytes),
            Err(RtmpError::LimitExceeded { .. })
        ));
    }

    #[test]
    fn huge_strict_array_count_does_not_preallocate() {
        let bytes = [MARKER_STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, MARKER_NULL];
        assert!(Amf0Value::decode(&bytes).is_err());
    }

    #[test]
    fn truncated_values_are_errors() {
        let mut out = Vec::new();
        Amf0Value::Object(vec![("tcUrl".into(), Amf0Value::string("rtmp://h/app"))])
            .encode(&mut out);
        for n in 0..out.len() {
            assert!(Amf0Value::decode(&out[..n]).is_err(), "prefix {n}");
        }
    }
}
