//! Fuzz target: the 4-byte big-endian length framing of `rstream::proto::frame`, carrying rstream envelopes.
//!
//! Properties, for any bytes delivered in any chunking:
//! - `read_frame` (from a stream) and `decode_frame` (a frame held in memory) agree on every outcome;
//! - `read_frame` consumes exactly the announced frame and never a byte past it (the connection turns into a
//!   raw byte stream right after some frames);
//! - an oversize length is refused as `TooLarge` whatever follows it;
//! - a decoded message re-encodes into a frame that decodes to the same message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rstream::limits::MAX_FRAME_LEN;
use rstream::proto::frame::{decode_frame, encode_frame, read_frame, FrameError};
use rstream::proto::rstream::Message as Envelope;
use rstream_fuzz::{split_chunking, ChunkedConn};

fuzz_target!(|input: &[u8]| {
    let (chunk, bytes) = split_chunking(input);
    let mut conn = ChunkedConn::new(bytes, chunk);
    let streamed = futures_lite::future::block_on(read_frame::<_, Envelope>(&mut conn));
    let whole = decode_frame::<Envelope>(bytes);
    let Some(len) = bytes.first_chunk::<4>().map(|head| u32::from_be_bytes(*head) as usize) else {
        assert!(matches!(streamed, Err(FrameError::Closed | FrameError::Io(_))), "short header: {streamed:?}");
        assert!(matches!(whole, Err(FrameError::Io(_))), "short header: {whole:?}");
        return;
    };
    let frame_end = 4 + len;
    match streamed {
        Ok(msg) => {
            assert_eq!(conn.consumed(), frame_end, "read_frame must stop exactly at the end of the frame");
            let exact =
                decode_frame::<Envelope>(&bytes[..frame_end]).expect("decode_frame refuses a frame read_frame took");
            assert_eq!(exact, msg);
            match whole {
                Ok(whole) => assert_eq!(whole, msg),
                Err(e) => assert!(bytes.len() > frame_end, "decode_frame refused a whole frame: {e}"),
            }
            assert_re_encodes(&msg);
        }
        Err(FrameError::TooLarge { len: n, max }) => {
            assert!(n == len && len > max && max == MAX_FRAME_LEN, "TooLarge({n}, max {max}) for announced length {len}");
            assert_eq!(conn.consumed(), 4, "an oversize frame is refused before reading its body");
            assert!(matches!(whole, Err(FrameError::TooLarge { len: m, .. }) if m == n), "decode_frame: {whole:?}");
        }
        Err(FrameError::Malformed(e)) => {
            assert_eq!(conn.consumed(), frame_end, "read_frame must stop exactly at the end of the frame");
            let exact = decode_frame::<Envelope>(&bytes[..frame_end]);
            assert!(matches!(exact, Err(FrameError::Malformed(_))), "read_frame: {e}; decode_frame: {exact:?}");
        }
        Err(FrameError::Io(e)) => {
            assert!(bytes.len() < frame_end, "read_frame failed on a complete frame: {e}");
            assert!(matches!(whole, Err(FrameError::Io(_))), "decode_frame on a truncated frame: {whole:?}");
        }
        Err(FrameError::Closed) => panic!("Closed after a complete 4-byte header"),
    }
});

/// A decoded envelope frames again (unless re-encoding grew it past the limit) and decodes to itself.
fn assert_re_encodes(msg: &Envelope) {
    use prost::Message as _;
    match encode_frame(msg) {
        Ok(frame) => assert_eq!(decode_frame::<Envelope>(&frame).expect("re-encoded frame decodes"), *msg),
        Err(FrameError::TooLarge { len, .. }) => assert!(len > MAX_FRAME_LEN && len == msg.encoded_len()),
        Err(e) => panic!("encode_frame failed: {e}"),
    }
}
