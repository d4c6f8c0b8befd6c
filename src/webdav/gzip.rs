//! gzip (RFC 1952) encoding of GET answers: a streaming raw-deflate compressor from `miniz_oxide` wrapped in
//! the gzip header and the CRC-32 + length trailer.
//!
//! Each encoder holds a deflate state of about 300 KiB, so at most `limits::MAX_GZIP_STREAMS` exist at once
//! (see [`GzipSlot`]); output is produced one input chunk at a time, so memory stays flat for any file size.

use std::sync::atomic::{AtomicUsize, Ordering};

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

use crate::limits::{COPY_BUF_LEN, MAX_GZIP_STREAMS};

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) lookup table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Continues a CRC-32 over `data` (start with 0).
pub fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The fixed gzip member header: deflate, no name, no mtime, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A streaming gzip encoder.
pub struct GzipEncoder {
    deflate: Box<CompressorOxide>,
    crc: u32,
    len: u32,
    started: bool,
    scratch: Vec<u8>,
}

impl Default for GzipEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl GzipEncoder {
    /// An encoder at compression level 6 (zlib's default).
    pub fn new() -> Self {
        let flags = create_comp_flags_from_zip_params(6, -15, 0);
        Self {
            deflate: Box::new(CompressorOxide::new(flags)),
            crc: 0,
            len: 0,
            started: false,
            scratch: vec![0; COPY_BUF_LEN],
        }
    }

    fn run(&mut self, mut input: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&HEADER);
            self.started = true;
        }
        loop {
            let (status, used, written) = compress(&mut self.deflate, input, &mut self.scratch, flush);
            out.extend_from_slice(&self.scratch[..written]);
            input = &input[used..];
            let done = match flush {
                TDEFLFlush::Finish => status == TDEFLStatus::Done,
                _ => input.is_empty() && written < self.scratch.len(),
            };
            if done || matches!(status, TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed) {
                return;
            }
        }
    }

    /// Compresses `input`, appending whatever output is ready to `out`.
    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.crc = crc32_update(self.crc, input);
        self.len = self.len.wrapping_add(input.len() as u32);
        self.run(input, TDEFLFlush::None, out);
    }

    /// Ends the stream: the last deflate block and the trailer go to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.run(&[], TDEFLFlush::Finish, out);
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
    }
}

/// A claim on one of the `limits::MAX_GZIP_STREAMS` encoder slots, released on drop.
pub struct GzipSlot<'a>(&'a AtomicUsize);

impl<'a> GzipSlot<'a> {
    /// Takes a slot from `counter`, or `None` when all are in use.
    pub fn acquire(counter: &'a AtomicUsize) -> Option<Self> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_GZIP_STREAMS).then_some(n + 1))
            .ok()
            .map(|_| GzipSlot(counter))
    }
}

impl Drop for GzipSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether an `Accept-Encoding` value admits gzip (`gzip` or `*` with a non-zero quality).
pub fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    header.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let q = parts.find_map(|p| p.strip_prefix("q=").map(|q| q.trim().parse::<f32>().unwrap_or(0.0)));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q.unwrap_or(1.0) > 0.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a gzip member (for tests): checks header, inflates, checks CRC and length.
    pub(crate) fn gunzip(data: &[u8]) -> Vec<u8> {
        assert_eq!(&data[..3], &[0x1f, 0x8b, 8]);
        let body = &data[10..data.len() - 8];
        let out = miniz_oxide::inflate::decompress_to_vec(body).expect("valid deflate");
        let trailer = &data[data.len() - 8..];
        assert_eq!(u32::from_le_bytes(trailer[..4].try_into().unwrap()), crc32_update(0, &out));
        assert_eq!(u32::from_le_bytes(trailer[4..].try_into().unwrap()), out.len() as u32);
        out
    }

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32_update(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_update(crc32_update(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn streaming_round_trip_in_chunks() {
        let text: Vec<u8> = (0..200_000).map(|i| b"webdav gzip round trip "[i % 23]).collect();
        let mut enc = GzipEncoder::new();
        let mut out = Vec::new();
        for chunk in text.chunks(COPY_BUF_LEN) {
            enc.write(chunk, &mut out);
        }
        enc.finish(&mut out);
        assert!(out.len() < text.len() / 10, "compressed to {}", out.len());
        assert_eq!(gunzip(&out), text);
        let mut empty = Vec::new();
        GzipEncoder::new().finish(&mut empty);
        assert!(gunzip(&empty).is_empty());
    }

    #[test]
    fn accept_encoding_qualities() {
        assert!(accepts_gzip(Some("gzip, deflate")));
        assert!(accepts_gzip(Some("br;q=1.0, gzip;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn slots_are_bounded() {
        let counter = AtomicUsize::new(0);
        let held: Vec<_> = (0..MAX_GZIP_STREAMS).map(|_| GzipSlot::acquire(&counter).unwrap()).collect();
        assert!(GzipSlot::acquire(&counter).is_none());
        drop(held);
        assert!(GzipSlot::acquire(&counter).is_some());
    }
}
