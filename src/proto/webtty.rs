//! WebTTY session messages (upstream `webtty.proto`, no package), field numbers as upstream.
//!
//! Over a WebSocket each [`Message`] is one binary WebSocket message; over a plain byte stream it is framed
//! like the rstream protocol ([`super::frame`]). Flow: client `Open` → server `Ack` or `Error` → `Data`
//! (stdin from the client; stdout/stderr from the server; `eos` ends a stream) with `Parameter` resizes and
//! `Heartbeat`s both ways → server `Close{return_code}` when the process exits. Newer upstream messages
//! (attach, E2E hellos, 8–11) are unknown to us and skipped on decode.

/// Session options.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Options {
    /// Forward stdin.
    #[prost(bool, tag = "1")]
    pub interactive: bool,
    /// Run under a PTY.
    #[prost(bool, tag = "2")]
    pub allocate_tty: bool,
    /// Ask the server to send heartbeats.
    #[prost(bool, tag = "3")]
    pub send_heartbeat: bool,
}

/// One environment variable for the child.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Environment {
    /// Name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Working directory for the child.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Workdir {
    /// Path on the server.
    #[prost(string, tag = "1")]
    pub value: String,
}

/// User to run as; servers refuse it unless started with `--allow-client-user` (or it is their own user).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Username {
    /// Name or uid.
    #[prost(oneof = "username::Name", tags = "1, 2")]
    pub name: Option<username::Name>,
}

impl Username {
    /// A user given as `NAME` or `UID` (all digits is a uid), as `webtty exec|client --user` takes it.
    pub fn parse(user: &str) -> Username {
        let name = match user.parse::<u32>() {
            Ok(uid) => username::Name::Id(uid),
            Err(_) => username::Name::Name(user.to_owned()),
        };
        Username { name: Some(name) }
    }
}

/// Oneof of [`Username`].
pub mod username {
    /// Name or uid.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Name {
        /// User name.
        #[prost(string, tag = "1")]
        Name(String),
        /// Numeric uid.
        #[prost(uint32, tag = "2")]
        Id(u32),
    }
}

/// What to run and how.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Config {
    /// Session options.
    #[prost(message, optional, tag = "1")]
    pub options: Option<Options>,
    /// argv; empty = login shell.
    #[prost(string, repeated, tag = "2")]
    pub cmd_args: Vec<String>,
    /// Extra environment.
    #[prost(message, repeated, tag = "3")]
    pub env_vars: Vec<Environment>,
    /// Working directory.
    #[prost(message, optional, tag = "4")]
    pub workdir: Option<Workdir>,
    /// Requested user.
    #[prost(message, optional, tag = "5")]
    pub username: Option<Username>,
}

/// Opens a session.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Open {
    /// What to run.
    #[prost(message, optional, tag = "1")]
    pub config: Option<Config>,
}

/// Session accepted (empty).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Ack {}

/// Session refused or failed.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Error {
    /// Why.
    #[prost(string, tag = "1")]
    pub msg: String,
}

/// The process ended.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Close {
    /// Exit code (128+signal when killed by a signal).
    #[prost(int32, tag = "1")]
    pub return_code: i32,
}

/// End of one data stream (empty).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct EndOfStream {}

/// Which stream a [`Data`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// Client → server.
    Stdin = 0,
    /// Server → client.
    Stdout = 1,
    /// Server → client.
    Stderr = 2,
}

/// A chunk of one stream, or its end.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Data {
    /// Stream.
    #[prost(enumeration = "DataType", tag = "1")]
    pub r#type: i32,
    /// Bytes or end-of-stream.
    #[prost(oneof = "data::Payload", tags = "2, 3")]
    pub payload: Option<data::Payload>,
}

/// Oneof of [`Data`].
pub mod data {
    /// Bytes or end-of-stream.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Payload {
        /// Bytes.
        #[prost(bytes = "vec", tag = "2")]
        Data(Vec<u8>),
        /// The stream ended.
        #[prost(message, tag = "3")]
        Eos(super::EndOfStream),
    }
}

impl Data {
    /// A chunk of bytes on `stream`.
    pub fn bytes(stream: DataType, bytes: Vec<u8>) -> Self {
        Data { r#type: stream as i32, payload: Some(data::Payload::Data(bytes)) }
    }

    /// End of `stream`.
    pub fn eos(stream: DataType) -> Self {
        Data { r#type: stream as i32, payload: Some(data::Payload::Eos(EndOfStream {})) }
    }
}

/// Terminal size in cells and pixels.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct TerminalSize {
    /// Rows.
    #[prost(uint32, tag = "1")]
    pub row: u32,
    /// Columns.
    #[prost(uint32, tag = "2")]
    pub col: u32,
    /// Width in pixels.
    #[prost(uint32, tag = "3")]
    pub xpixel: u32,
    /// Height in pixels.
    #[prost(uint32, tag = "4")]
    pub ypixel: u32,
}

/// A session parameter change.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Parameter {
    /// Which parameter.
    #[prost(oneof = "parameter::Kind", tags = "1")]
    pub kind: Option<parameter::Kind>,
}

/// Oneof of [`Parameter`].
pub mod parameter {
    /// Which parameter.
    #[derive(Clone, Copy, PartialEq, Eq, prost::Oneof)]
    pub enum Kind {
        /// PTY resize.
        #[prost(message, tag = "1")]
        TerminalSize(super::TerminalSize),
    }
}

/// Liveness ping (empty).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Heartbeat {}

/// The envelope: one per WebSocket binary message.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Message {
    /// Which message.
    #[prost(oneof = "message::Payload", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub payload: Option<message::Payload>,
}

impl Message {
    /// Wraps a payload.
    pub fn new(payload: message::Payload) -> Self {
        Message { payload: Some(payload) }
    }
}

/// Oneof of [`Message`].
pub mod message {
    /// Payload kinds with upstream tags.
    #[derive(Clone, PartialEq, Eq, prost::Oneof)]
    pub enum Payload {
        /// Tag 1.
        #[prost(message, tag = "1")]
        Open(super::Open),
        /// Tag 2.
        #[prost(message, tag = "2")]
        Ack(super::Ack),
        /// Tag 3.
        #[prost(message, tag = "3")]
        Error(super::Error),
        /// Tag 4.
        #[prost(message, tag = "4")]
        Close(super::Close),
        /// Tag 5.
        #[prost(message, tag = "5")]
        Data(super::Data),
        /// Tag 6.
        #[prost(message, tag = "6")]
        Parameter(super::Parameter),
        /// Tag 7.
        #[prost(message, tag = "7")]
        Heartbeat(super::Heartbeat),
    }
}

#[cfg(test)]
mod tests {
    use super::message::Payload;
    use super::*;
    use prost::Message as _;

    #[test]
    fn open_round_trips_with_upstream_tags() {
        let open = Message::new(Payload::Open(Open {
            config: Some(Config {
                options: Some(Options { interactive: false, allocate_tty: false, send_heartbeat: true }),
                cmd_args: vec!["uname".into(), "-a".into()],
                env_vars: vec![Environment { key: "A".into(), value: "1".into() }],
                workdir: Some(Workdir { value: "/tmp".into() }),
                username: None,
            }),
        }));
        let bytes = open.encode_to_vec();
        assert_eq!(bytes[0], 0x0a, "open is field 1");
        assert_eq!(Message::decode(bytes.as_slice()).unwrap(), open);
    }

    #[test]
    fn data_and_close_round_trip() {
        for payload in [
            Payload::Data(Data::bytes(DataType::Stderr, b"err".to_vec())),
            Payload::Data(Data::eos(DataType::Stdout)),
            Payload::Close(Close { return_code: 3 }),
            Payload::Parameter(Parameter {
                kind: Some(parameter::Kind::TerminalSize(TerminalSize { row: 40, col: 120, xpixel: 0, ypixel: 0 })),
            }),
        ] {
            let msg = Message::new(payload);
            assert_eq!(Message::decode(msg.encode_to_vec().as_slice()).unwrap(), msg);
        }
        // Close is field 4 → key 0x22; return_code 3 → 0x08 0x03.
        assert_eq!(Message::new(Payload::Close(Close { return_code: 3 })).encode_to_vec(), vec![0x22, 2, 0x08, 3]);
    }

    #[test]
    fn newer_upstream_messages_decode_as_unknown() {
        // Field 9 (server_hello) from a newer server: skipped, payload None.
        let bytes = [0x4a, 0x00];
        assert_eq!(Message::decode(&bytes[..]).unwrap().payload, None);
    }
}
