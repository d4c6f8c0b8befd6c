//! Certificate verification for the embedded-tls client: the engine's chain against the context's CA, plus the
//! server name, plus validity dates — and a clear diagnosis when any of it fails.
//!
//! embedded-tls skips verification entirely unless the crypto provider hands it a verifier, so the client always
//! builds an [`EngineVerifier`] (only an explicit `insecure_skip_verify` omits it). The checks themselves are
//! embedded-tls's `pki::CertVerifier` (ECDSA P-256 chains against one trust anchor, DNS names of the leaf); this
//! wrapper adds:
//! - several trust anchors (a CA file may hold more than one certificate: each is tried in turn);
//! - a clock that refuses to judge dates when the system time is obviously unset (a device booting without RTC
//!   would otherwise reject every certificate as "not yet valid" until NTP runs);
//! - a human diagnosis of failures, because embedded-tls reports every one of them as `InvalidCertificate`:
//!   wrong CA, name mismatch, expired, or a name beyond the first three DNS names (embedded-tls reads at most 3);
//! - a memory of chains that already verified ([`super::verified_chains`]): the agent opens one connection per
//!   stream to the same engine, and re-verifying the same chain each time was most of its CPU. The handshake
//!   signature is checked here, on every connection, against the leaf's P-256 key.

use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CertificateEntryRef, CertificateRef, CertificateVerifyRef, NoClock, Sha256,
    SignatureScheme, TlsClock, TlsError, TlsVerifier,
};
use p256::ecdsa::signature::Verifier as _;
use sha2::Digest as _;

use super::verified_chains;
use crate::limits::TLS_MAX_CERT_CHAIN_LEN;

/// The one TLS 1.3 cipher suite the client offers (mandatory-to-implement, so every TLS 1.3 server has it).
pub type Suite = Aes128GcmSha256;

/// How many DNS names of a certificate embedded-tls looks at (its `MAX_SAN_DNS_NAMES`).
const EMBEDDED_TLS_MAX_DNS_NAMES: usize = 3;
/// Longest server name embedded-tls can verify (its `HOSTNAME_MAXLEN`).
const EMBEDDED_TLS_MAX_HOSTNAME: usize = 64;
/// What a TLS 1.3 server signs in `CertificateVerify`, before the transcript hash (RFC 8446 §4.4.3): 64 spaces,
/// the context string and a zero byte.
const SERVER_SIGNATURE_CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify\0";
/// System times before 2025-01-01T00:00:00Z mean the clock was never set: validity dates are then not checked.
const CLOCK_SANITY_FLOOR_UNIX: u64 = 1_735_689_600;

/// Wall clock for certificate validity, `None` (do not check dates) while the system clock is obviously unset.
pub struct SystemClock;

impl TlsClock for SystemClock {
    fn now() -> Option<u64> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if now < CLOCK_SANITY_FLOOR_UNIX {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                log_warn!("system clock is not set (unix time {now}): certificate dates are not checked")
            });
            return None;
        }
        Some(now)
    }
}

type Checked<'a> = CertVerifier<'a, Suite, SystemClock, TLS_MAX_CERT_CHAIN_LEN>;
type Undated<'a> = CertVerifier<'a, Suite, NoClock, TLS_MAX_CERT_CHAIN_LEN>;

/// Verifies the engine's certificate chain against `anchors` (DER), the server name and the dates, then the
/// handshake signature against the trusted leaf.
pub struct EngineVerifier<'a> {
    anchors: &'a [Vec<u8>],
    host: Option<String>,
    /// Once the chain is trusted: the leaf certificate (DER) and the transcript hash up to the Certificate
    /// message, which the handshake signature covers.
    trusted: Option<(Vec<u8>, Sha256)>,
    /// The leaf certificate once its handshake signature verified too.
    verified_leaf: Option<Vec<u8>>,
    failure: Option<String>,
}

impl<'a> EngineVerifier<'a> {
    /// A verifier trusting the certificates in `anchors` (DER, at least one).
    pub fn new(anchors: &'a [Vec<u8>]) -> Self {
        EngineVerifier { anchors, host: None, trusted: None, verified_leaf: None, failure: None }
    }

    /// The engine's leaf certificate (DER), once chain and handshake signature both verified.
    pub fn take_verified_leaf(&mut self) -> Option<Vec<u8>> {
        self.verified_leaf.take()
    }

    /// Why verification failed, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn checked(&self, anchor: &'a [u8]) -> Result<Checked<'a>, TlsError> {
        let mut v = Checked::new(Certificate::X509(anchor));
        if let Some(host) = &self.host {
            v.set_hostname_verification(host)?;
        }
        Ok(v)
    }

    /// Explains a failed chain: name mismatch, dates, or an unknown issuer.
    fn diagnose(&self, transcript: &<Suite as embedded_tls::TlsCipherSuite>::Hash, cert: &CertificateRef) -> String {
        let names = match cert.entries.first() {
            Some(CertificateEntryRef::X509(der)) => leaf_dns_names(der),
            _ => Vec::new(),
        };
        if let (Some(host), false) = (&self.host, names.is_empty()) {
            match names.iter().position(|n| name_matches(n, host)) {
                None => return format!("certificate names {names:?} do not include the server name {host:?}"),
                Some(i) if i >= EMBEDDED_TLS_MAX_DNS_NAMES => {
                    return format!(
                        "the server name {host:?} is DNS name #{} of the certificate {names:?}, but embedded-tls \
                         only checks the first {EMBEDDED_TLS_MAX_DNS_NAMES}",
                        i + 1
                    )
                }
                Some(_) => {}
            }
        }
        let undated_ok = self.anchors.iter().any(|anchor| {
            let mut v = Undated::new(Certificate::X509(anchor));
            let host_ok = self.host.as_deref().is_none_or(|h| v.set_hostname_verification(h).is_ok());
            host_ok && v.verify_certificate(transcript, rebuild(cert)).is_ok()
        });
        if undated_ok {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            return format!("certificate is expired or not yet valid (system time: unix {now})");
        }
        "certificate is not signed by the trusted CA".to_owned()
    }
}

impl<'a> TlsVerifier<Suite> for EngineVerifier<'a> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        if hostname.len() > EMBEDDED_TLS_MAX_HOSTNAME {
            self.failure = Some(format!(
                "server name {hostname:?} is longer than {EMBEDDED_TLS_MAX_HOSTNAME} bytes (embedded-tls limit)"
            ));
            return Err(TlsError::InsufficientSpace);
        }
        self.host = Some(hostname.to_owned());
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &<Suite as embedded_tls::TlsCipherSuite>::Hash,
        cert: CertificateRef,
    ) -> Result<(), TlsError> {
        let chain: Vec<&[u8]> = cert
            .entries
            .iter()
            .filter_map(|e| match e {
                CertificateEntryRef::X509(der) => Some(*der),
                CertificateEntryRef::RawPublicKey(_) => None,
            })
            .collect();
        let Some(leaf) = chain.first().filter(|_| chain.len() == cert.entries.len()) else {
            self.failure = Some("the server sent no X.509 certificate chain".into());
            return Err(TlsError::InvalidCertificate);
        };
        let host = self.host.as_deref();
        if verified_chains::is_verified(self.anchors, host, &chain) {
            self.trusted = Some((leaf.to_vec(), transcript.clone()));
            return Ok(());
        }
        // The first anchor the chain verifies against wins; the handshake signature is checked separately.
        let winner = self.anchors.iter().find(|anchor| {
            self.checked(anchor).is_ok_and(|mut v| v.verify_certificate(transcript, rebuild(&cert)).is_ok())
        });
        match winner {
            Some(anchor) => {
                verified_chains::remember(anchor, host, &chain);
                self.trusted = Some((leaf.to_vec(), transcript.clone()));
                Ok(())
            }
            None => {
                self.failure = Some(self.diagnose(transcript, &cert));
                Err(TlsError::InvalidCertificate)
            }
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        let Some((leaf, transcript)) = self.trusted.take() else {
            self.failure = Some("the server sent no certificate before its handshake signature".into());
            return Err(TlsError::InvalidSignature);
        };
        match verify_handshake_signature(&leaf, transcript, &verify) {
            Ok(()) => {
                self.verified_leaf = Some(leaf);
                Ok(())
            }
            Err(why) => {
                self.failure = Some(why);
                Err(TlsError::InvalidSignature)
            }
        }
    }
}

/// Checks the server's `CertificateVerify`: an ECDSA P-256 / SHA-256 signature, by the key of `leaf` (DER),
/// over the TLS 1.3 server context and the transcript hash up to the Certificate message.
fn verify_handshake_signature(leaf: &[u8], transcript: Sha256, verify: &CertificateVerifyRef) -> Result<(), String> {
    if !matches!(verify.signature_scheme, SignatureScheme::EcdsaSecp256r1Sha256) {
        return Err(format!(
            "the server signed its handshake with {:?}; this client verifies ECDSA P-256 with SHA-256 only",
            verify.signature_scheme
        ));
    }
    let key = subject_public_key(leaf)
        .and_then(|sec1| p256::ecdsa::VerifyingKey::from_sec1_bytes(sec1).ok())
        .ok_or("the server's certificate does not hold a P-256 public key")?;
    let signature = p256::ecdsa::Signature::from_der(verify.signature)
        .map_err(|_| "the server's handshake signature is not a DER ECDSA signature".to_owned())?;
    let mut message = Vec::with_capacity(64 + SERVER_SIGNATURE_CONTEXT.len() + 32);
    message.extend_from_slice(&[b' '; 64]);
    message.extend_from_slice(SERVER_SIGNATURE_CONTEXT);
    message.extend_from_slice(&transcript.finalize());
    key.verify(&message, &signature)
        .map_err(|_| "the server's handshake signature does not match its certificate".to_owned())
}

/// The subjectPublicKey bits of a DER certificate (for P-256: the SEC1 point), or `None` when it is not a
/// well-formed certificate. TBSCertificate = [version], serial, signature, issuer, validity, subject, SPKI, ….
fn subject_public_key(der: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = der_tlv(der).filter(|(tag, _, _)| *tag == 0x30)?;
    let (_, tbs, _) = der_tlv(certificate).filter(|(tag, _, _)| *tag == 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der_tlv(rest)?.2; // [0] EXPLICIT version
    }
    for _ in 0..5 {
        rest = der_tlv(rest)?.2; // serial, signature algorithm, issuer, validity, subject
    }
    let (_, spki, _) = der_tlv(rest).filter(|(tag, _, _)| *tag == 0x30)?;
    let (_, bits, _) = der_tlv(der_tlv(spki)?.2).filter(|(tag, _, _)| *tag == 0x03)?;
    bits.split_first().filter(|(unused, _)| **unused == 0).map(|(_, key)| key)
}

/// A second `CertificateRef` over the same entries (embedded-tls's type is not `Clone`). Its raw bytes are empty,
/// so it serves chain and name checks only, never the signature check.
fn rebuild<'b>(cert: &CertificateRef<'b>) -> CertificateRef<'b> {
    let mut copy = CertificateRef::with_context(&[]);
    for entry in &cert.entries {
        let entry = match entry {
            CertificateEntryRef::X509(d) => CertificateEntryRef::X509(d),
            CertificateEntryRef::RawPublicKey(d) => CertificateEntryRef::RawPublicKey(d),
        };
        // Cannot overflow: `copy` has the same capacity as `cert.entries`.
        let _ = copy.add(entry);
    }
    copy
}

/// DNS names (subjectAltName dNSName entries) of a DER certificate, for diagnostics only.
fn leaf_dns_names(der: &[u8]) -> Vec<String> {
    const SAN_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x1d, 0x11];
    const DNS_NAME: u8 = 0x82;
    let Some(at) = der.windows(SAN_OID.len()).position(|w| w == SAN_OID) else {
        return Vec::new();
    };
    let mut rest = &der[at + SAN_OID.len()..];
    if rest.first() == Some(&0x01) {
        // `critical BOOLEAN`
        rest = der_tlv(rest).map_or(&[][..], |(_, _, r)| r);
    }
    let names = der_tlv(rest)
        .filter(|(tag, _, _)| *tag == 0x04)
        .and_then(|(_, octets, _)| der_tlv(octets))
        .filter(|(tag, _, _)| *tag == 0x30)
        .map(|(_, seq, _)| seq);
    let mut out = Vec::new();
    let mut seq = names.unwrap_or(&[]);
    while let Some((tag, value, next)) = der_tlv(seq) {
        if tag == DNS_NAME {
            out.push(String::from_utf8_lossy(value).into_owned());
        }
        seq = next;
    }
    out
}

/// One DER tag-length-value: `(tag, value, rest)`.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// RFC 6125-style match (exact, or `*.` for exactly one leftmost label), ASCII case-insensitive.
fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix))
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_names_match_one_label_only() {
        assert!(name_matches("*.t.localhost", "web.t.localhost"));
        assert!(name_matches("LOCALHOST", "localhost"));
        assert!(!name_matches("*.t.localhost", "a.b.t.localhost"));
        assert!(!name_matches("*.t.localhost", "t.localhost"));
        assert!(!name_matches("localhost", "example.com"));
    }

    #[test]
    fn der_tlv_handles_long_lengths_and_refuses_truncation() {
        let mut long = vec![0x04, 0x81, 200];
        long.extend(std::iter::repeat_n(7u8, 200));
        let (tag, value, rest) = der_tlv(&long).unwrap();
        assert_eq!((tag, value.len(), rest.len()), (0x04, 200, 0));
        assert!(der_tlv(&long[..100]).is_none());
        assert!(der_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(der_tlv(&[]).is_none());
    }

    #[cfg(feature = "engine")]
    #[test]
    fn leaf_dns_names_reads_the_subject_alt_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".into(), "*.t.localhost".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(leaf_dns_names(cert.der()), vec!["localhost".to_owned(), "*.t.localhost".to_owned()]);
        assert!(leaf_dns_names(b"not a certificate").is_empty());
    }
}
