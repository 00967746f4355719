//! AMF0 command messages (RTMP spec §7.2): `[name, transaction id, command object, args…]`.

use super::amf0::{encode_all, Amf0Value};
use super::chunk::ChunkEncoder;
use super::error::RtmpError;
use super::message::{CSID_COMMAND, TYPE_COMMAND_AMF0, TYPE_COMMAND_AMF3};

/// A decoded command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// `connect`, `createStream`, `publish`, `_result`, `onStatus`, …
    pub name: String,
    /// Transaction id (a number on the wire).
    pub transaction_id: f64,
    /// Third value (an object for `connect`/`_result`, usually `null` otherwise).
    pub command_object: Amf0Value,
    /// Remaining values.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// Builds a command from its parts.
    pub fn new(name: &str, transaction_id: f64, command_object: Amf0Value) -> Self {
        Command {
            name: name.to_owned(),
            transaction_id,
            command_object,
            args: Vec::new(),
        }
    }

    /// Appends an argument (builder style).
    pub fn arg(mut self, v: Amf0Value) -> Self {
        self.args.push(v);
        self
    }

    /// Decodes a type 20 payload, or a type 17 one after its leading format byte (§5.1 C).
    /// Returns `Ok(None)` for other message types.
    pub fn decode(type_id: u8, payload: &[u8]) -> Result<Option<Command>, RtmpError> {
        let body = match type_id {
            TYPE_COMMAND_AMF0 => payload,
            TYPE_COMMAND_AMF3 => payload.get(1..).unwrap_or_default(),
            _ => return Ok(None),
        };
        let mut values = Amf0Value::decode_all(body)?.into_iter();
        let name = match values.next() {
            Some(Amf0Value::String(s)) => s,
            _ => return Err(RtmpError::Malformed("command without a name")),
        };
        let transaction_id = match values.next() {
            Some(Amf0Value::Number(n)) => n,
            // `onStatus`-style notifications from some servers omit it; treat as 0.
            None => 0.0,
            Some(_) => return Err(RtmpError::Malformed("command transaction id not a number")),
        };
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Some(Command {
            name,
            transaction_id,
            command_object,
            args: values.collect(),
        }))
    }

    /// The AMF0 body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Amf0Value::String(self.name.clone()).encode(out);
        Amf0Value::Number(self.transaction_id).encode(out);
        self.command_object.encode(out);
        encode_all(&self.args, out);
    }

    /// Appends this command as a type 20 message on csid 3 with message stream `stream_id`.
    pub fn write(&self, enc: &ChunkEncoder, stream_id: u32, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(128);
        self.encode(&mut body);
        enc.write_message(CSID_COMMAND, 0, TYPE_COMMAND_AMF0, stream_id, &body, out);
    }

    /// The `code` of an `onStatus`/`_error` info object (first argument), if any.
    pub fn status_code(&self) -> Option<&str> {
        self.args.first()?.get("code")?.as_str()
    }

    /// The `level` of an info object, if any.
    pub fn status_level(&self) -> Option<&str> {
        self.args.first()?.get("level")?.as_str()
    }

    /// The `description` of an info object, if any.
    pub fn status_description(&self) -> Option<&str> {
        self.args.first()?.get("description")?.as_str()
    }
}

/// Shorthand for an ordered AMF0 object from `(key, value)` pairs.
pub fn object(props: &[(&str, Amf0Value)]) -> Amf0Value {
    Amf0Value::Object(
        props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}
