//! Length-prefixed framing: a 4-byte big-endian length, then that many bytes of protobuf.
//!
//! rstream caps a frame at 65,535 bytes; a reader may ask for a smaller bound ([`read_frame_within`]: the engine
//! does for the first frame of a peer that has not authenticated yet). Reads are exact (never buffered past the
//! frame), because after a `ProxyReq`/`StreamReq` the same connection turns into a raw byte stream and any
//! over-read byte would be lost. The body buffer grows with the bytes that really arrived, never from the
//! announced length alone: a 4-byte header promising 64 KiB costs [`FRAME_READ_START`] bytes until they come.
//! A malformed or oversize frame is a [`FrameError`]: the caller closes that one connection; nothing panics.

use std::fmt;
use std::io;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use prost::Message;

use crate::limits::{FRAME_READ_START, MAX_FRAME_LEN};

/// Why a frame could not be read or decoded.
#[derive(Debug)]
pub enum FrameError {
    /// The transport failed or closed mid-frame.
    Io(io::Error),
    /// The peer closed the connection cleanly before the first byte of a frame.
    Closed,
    /// The announced length exceeds the bound ([`MAX_FRAME_LEN`] or the reader's smaller one).
    TooLarge {
        /// The announced length.
        len: usize,
        /// The bound it exceeds.
        max: usize,
    },
    /// The bytes are not a valid protobuf message of the expected type.
    Malformed(prost::DecodeError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "frame i/o: {e}"),
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::TooLarge { len, max } => write!(f, "framed packet too large: {len} bytes (max {max})"),
            FrameError::Malformed(e) => write!(f, "malformed frame: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> io::Error {
        match e {
            FrameError::Io(e) => e,
            FrameError::Closed => io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Encodes `msg` as one frame (length prefix + body). Errors if the body would exceed [`MAX_FRAME_LEN`].
pub fn encode_frame<M: Message>(msg: &M) -> Result<Vec<u8>, FrameError> {
    let len = msg.encoded_len();
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len, max: MAX_FRAME_LEN });
    }
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    msg.encode(&mut out).map_err(|e| FrameError::Io(io::Error::other(e)))?;
    Ok(out)
}

/// Decodes one complete frame held in `bytes` (length prefix included). Trailing bytes are an error.
pub fn decode_frame<M: Message + Default>(bytes: &[u8]) -> Result<M, FrameError> {
    let (head, body) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| FrameError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "short frame header")))?;
    let len = u32::from_be_bytes(*head) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len, max: MAX_FRAME_LEN });
    }
    if body.len() != len {
        let msg = format!("frame announces {len} bytes, holds {}", body.len());
        return Err(FrameError::Io(io::Error::new(io::ErrorKind::InvalidData, msg)));
    }
    M::decode(body).map_err(FrameError::Malformed)
}

/// Writes `msg` as one frame and flushes.
pub async fn write_frame<W, M>(writer: &mut W, msg: &M) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    M: Message,
{
    let bytes = encode_frame(msg)?;
    writer.write_all(&bytes).await.map_err(FrameError::Io)?;
    writer.flush().await.map_err(FrameError::Io)
}

/// Reads exactly one frame and decodes it. Never reads past the end of the frame.
pub async fn read_frame<R, M>(reader: &mut R) -> Result<M, FrameError>
where
    R: AsyncRead + Unpin,
    M: Message + Default,
{
    read_frame_within(reader, MAX_FRAME_LEN).await
}

/// [`read_frame`] for a frame of at most `max` bytes (itself at most [`MAX_FRAME_LEN`]): a longer announced
/// length is [`FrameError::TooLarge`] before any of its body is read.
pub async fn read_frame_within<R, M>(reader: &mut R, max: usize) -> Result<M, FrameError>
where
    R: AsyncRead + Unpin,
    M: Message + Default,
{
    let max = max.min(MAX_FRAME_LEN);
    let mut head = [0u8; 4];
    let first = reader.read(&mut head).await.map_err(FrameError::Io)?;
    if first == 0 {
        return Err(FrameError::Closed);
    }
    reader.read_exact(&mut head[first..]).await.map_err(FrameError::Io)?;
    let len = u32::from_be_bytes(head) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let body = read_body(reader, len).await?;
    M::decode(body.as_slice()).map_err(FrameError::Malformed)
}

/// Reads exactly `len` bytes, growing the buffer (from [`FRAME_READ_START`], doubling) only as bytes arrive.
async fn read_body<R: AsyncRead + Unpin>(reader: &mut R, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::new();
    while body.len() < len {
        let filled = body.len();
        let room = filled.max(FRAME_READ_START).min(len - filled);
        body.resize(filled + room, 0);
        let n = reader.read(&mut body[filled..]).await.map_err(FrameError::Io)?;
        body.truncate(filled + n);
        if n == 0 {
            let msg = format!("connection closed {filled} bytes into a {len}-byte frame");
            return Err(FrameError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, msg)));
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rstream::{message::Payload, Heartbeat, Message as Envelope, StreamReq};

    fn stream_req() -> Envelope {
        Envelope::new(Payload::StreamReq(StreamReq {
            client_details: None,
            tunnel_id_name: "shell".into(),
            zero_rtt: Some(false.into()),
            datagram_channel: None,
        }))
    }

    #[test]
    fn frame_round_trips() {
        let bytes = encode_frame(&stream_req()).unwrap();
        assert_eq!(u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        let back: Envelope = decode_frame(&bytes).unwrap();
        assert_eq!(back, stream_req());
    }

    #[test]
    fn oversize_length_is_refused_before_allocating() {
        let mut bytes = (MAX_FRAME_LEN as u32 + 1).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert!(matches!(decode_frame::<Envelope>(&bytes), Err(FrameError::TooLarge { .. })));
        let mut reader = futures_lite::io::Cursor::new(bytes);
        let got = smol::block_on(read_frame::<_, Envelope>(&mut reader));
        assert!(matches!(got, Err(FrameError::TooLarge { len, max: MAX_FRAME_LEN }) if len == MAX_FRAME_LEN + 1));
    }

    /// Hands out the bytes of `data` at most `step` at a time, then stays pending; records the largest buffer a
    /// read offered it (how much the frame reader had allocated for bytes not yet received).
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        largest_offer: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.largest_offer = self.largest_offer.max(buf.len());
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            if n == 0 {
                return std::task::Poll::Pending;
            }
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn trickle(data: Vec<u8>, step: usize) -> Trickle {
        Trickle { data, pos: 0, step, largest_offer: 0 }
    }

    #[test]
    fn an_announced_length_allocates_nothing_until_its_bytes_arrive() {
        // A header announcing the largest frame, then silence: the reader waits holding a small buffer.
        let mut silent = trickle((MAX_FRAME_LEN as u32).to_be_bytes().to_vec(), usize::MAX);
        let pending =
            futures_lite::future::block_on(futures_lite::future::poll_once(read_frame::<_, Envelope>(&mut silent)));
        assert!(pending.is_none(), "the frame is incomplete");
        assert!(silent.largest_offer <= FRAME_READ_START, "offered {} bytes for nothing", silent.largest_offer);

        // A real frame arriving in small pieces: the buffer never runs more than twice ahead of what came.
        let big = Envelope::new(Payload::StreamReq(StreamReq {
            client_details: None,
            tunnel_id_name: "x".repeat(40_000),
            ..Default::default()
        }));
        let mut slow = trickle(encode_frame(&big).unwrap(), 700);
        let back: Envelope = smol::block_on(read_frame(&mut slow)).unwrap();
        assert_eq!(back, big);
        assert!(slow.largest_offer <= 40_000, "offered {} bytes at once", slow.largest_offer);
    }

    #[test]
    fn the_first_frame_of_an_unauthenticated_peer_has_a_small_bound() {
        use crate::limits::MAX_FIRST_FRAME_LEN;
        let mut bytes = (MAX_FIRST_FRAME_LEN as u32 + 1).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        let mut reader = trickle(bytes, usize::MAX);
        let got = smol::block_on(read_frame_within::<_, Envelope>(&mut reader, MAX_FIRST_FRAME_LEN));
        assert!(
            matches!(got, Err(FrameError::TooLarge { len, max: MAX_FIRST_FRAME_LEN }) if len == MAX_FIRST_FRAME_LEN + 1),
            "{got:?}"
        );
        assert_eq!(reader.pos, 4, "nothing past the header was read");
        let fits = encode_frame(&stream_req()).unwrap();
        let back: Envelope = smol::block_on(read_frame_within(&mut trickle(fits, 3), MAX_FIRST_FRAME_LEN)).unwrap();
        assert_eq!(back, stream_req());
    }

    #[test]
    fn garbage_body_is_malformed_not_a_panic() {
        for body in [&[0xff, 0xff, 0xff][..], &[0x0a, 0x05, 0x01], &[0x7a], &[0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]]
        {
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(body);
            assert!(matches!(decode_frame::<Envelope>(&bytes), Err(FrameError::Malformed(_))), "{body:?}");
        }
    }

    #[test]
    fn truncated_frame_is_an_io_error() {
        let mut bytes = encode_frame(&stream_req()).unwrap();
        bytes.truncate(bytes.len() - 2);
        assert!(matches!(decode_frame::<Envelope>(&bytes), Err(FrameError::Io(_))));
        let mut reader = futures_lite::io::Cursor::new(bytes);
        assert!(matches!(smol::block_on(read_frame::<_, Envelope>(&mut reader)), Err(FrameError::Io(_))));
    }

    #[test]
    fn clean_eof_before_a_frame_is_closed() {
        let mut reader = futures_lite::io::Cursor::new(Vec::new());
        assert!(matches!(smol::block_on(read_frame::<_, Envelope>(&mut reader)), Err(FrameError::Closed)));
    }

    #[test]
    fn reader_stops_exactly_at_frame_end() {
        let mut bytes = encode_frame(&Envelope::new(Payload::Heartbeat(Heartbeat::LEGACY))).unwrap();
        bytes.extend_from_slice(b"raw bytes after the frame");
        let mut reader = futures_lite::io::Cursor::new(bytes);
        smol::block_on(async {
            let _: Envelope = read_frame(&mut reader).await.unwrap();
            let mut rest = String::new();
            reader.read_to_string(&mut rest).await.unwrap();
            assert_eq!(rest, "raw bytes after the frame");
        });
    }
}
