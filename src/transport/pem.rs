//! PEM certificate files → DER, for the trust anchors of the TLS client.
//!
//! A context's `transport.tls.caFile` is a PEM file with one or more `CERTIFICATE` blocks. Only those blocks are
//! used; anything else in the file (keys, comments) is ignored. Decoding is strict base64 (standard alphabet,
//! whitespace allowed between lines), so a damaged file is a clear error rather than a certificate that silently
//! never matches.

use std::fmt;

use crate::encoding::Base64;
use crate::limits::MAX_CA_CERTS;

/// Why a PEM file could not be turned into certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemError {
    /// No `-----BEGIN CERTIFICATE-----` block in the file.
    NoCertificate,
    /// A block has no matching END line.
    Unterminated,
    /// A block's body is not valid base64 (what is wrong with it).
    BadBase64(String),
    /// More certificate blocks than [`MAX_CA_CERTS`].
    TooMany(usize),
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NoCertificate => f.write_str("no PEM CERTIFICATE block found"),
            PemError::Unterminated => f.write_str("PEM CERTIFICATE block without an END line"),
            PemError::BadBase64(why) => write!(f, "PEM CERTIFICATE block: {why}"),
            PemError::TooMany(n) => write!(f, "{n} certificates in one CA file (at most {MAX_CA_CERTS})"),
        }
    }
}

impl std::error::Error for PemError {}

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Extracts the DER bytes of every `CERTIFICATE` block in `pem`, in file order.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    let text = String::from_utf8_lossy(pem);
    let mut rest: &str = &text;
    let mut certs = Vec::new();
    while let Some(start) = rest.find(BEGIN) {
        let body_and_more = &rest[start + BEGIN.len()..];
        let end = body_and_more.find(END).ok_or(PemError::Unterminated)?;
        if certs.len() == MAX_CA_CERTS {
            return Err(PemError::TooMany(certs.len() + 1));
        }
        certs.push(decode_base64(&body_and_more[..end])?);
        rest = &body_and_more[end + END.len()..];
    }
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certs)
}

/// Decodes a block body: standard base64 split over lines.
fn decode_base64(body: &str) -> Result<Vec<u8>, PemError> {
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    Base64::Standard.decode(&compact).map_err(PemError::BadBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_certificate_block_and_ignores_the_rest() {
        let pem = "junk\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
                   -----BEGIN CERTIFICATE-----\nTWFu\nTWE=\n-----END CERTIFICATE-----\n\
                   -----BEGIN CERTIFICATE-----\r\naGVsbG8gd29ybGQ=\r\n-----END CERTIFICATE-----\n";
        let certs = certificates_from_pem(pem.as_bytes()).unwrap();
        assert_eq!(certs, vec![b"ManMa".to_vec(), b"hello world".to_vec()]);
    }

    #[test]
    fn file_without_certificate_is_refused() {
        assert_eq!(certificates_from_pem(b"hello"), Err(PemError::NoCertificate));
        assert_eq!(certificates_from_pem(b""), Err(PemError::NoCertificate));
    }

    #[test]
    fn damaged_blocks_are_clear_errors() {
        let unterminated = "-----BEGIN CERTIFICATE-----\nTWFu\n";
        assert_eq!(certificates_from_pem(unterminated.as_bytes()), Err(PemError::Unterminated));
        let bad = "-----BEGIN CERTIFICATE-----\nTW*u\n-----END CERTIFICATE-----";
        let err = certificates_from_pem(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("'*'"), "{err}");
    }

    #[test]
    fn too_many_certificates_are_refused() {
        let block = "-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----\n";
        let pem = block.repeat(MAX_CA_CERTS + 1);
        assert_eq!(certificates_from_pem(pem.as_bytes()), Err(PemError::TooMany(MAX_CA_CERTS + 1)));
    }
}
