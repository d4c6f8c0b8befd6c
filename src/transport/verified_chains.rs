//! A small process-wide memory of engine certificate chains that already verified, so that the agent's
//! per-stream legs do not verify the same chain again on every handshake.
//!
//! rstream 1.3 opens one TLS connection per stream; each handshake would otherwise check every signature of
//! the engine's chain (with the generated CA sent along: two ECDSA verifications) on top of the handshake
//! signature and the key exchange — most of the agent's CPU under connection-per-request traffic. What is
//! remembered is exactly what a chain check proves: *these* certificate bytes chain to *this* trust anchor and
//! name *this* server. The handshake signature (`CertificateVerify`, proof that the server holds the leaf's
//! private key) is still verified on every connection, so a remembered chain is worth nothing to a server
//! that merely copied the certificates.
//!
//! Entries live [`VERIFIED_CHAIN_TTL`]: dates are checked when a chain is first verified, not on each reuse,
//! so a certificate that expires is refused at most that long after its `notAfter`. At most
//! [`VERIFIED_CHAIN_CACHE_LEN`] chains are kept (the oldest is forgotten first).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use crate::limits::{VERIFIED_CHAIN_CACHE_LEN, VERIFIED_CHAIN_TTL};

/// One chain that verified: against which anchor, for which server name, when.
struct VerifiedChain {
    anchor: Vec<u8>,
    host: String,
    chain: Vec<Vec<u8>>,
    verified_at: Instant,
}

static VERIFIED: Mutex<VecDeque<VerifiedChain>> = Mutex::new(VecDeque::new());

/// Whether `chain` (DER, leaf first) verified for `host` against one of `anchors` less than
/// [`VERIFIED_CHAIN_TTL`] ago.
pub(super) fn is_verified(anchors: &[Vec<u8>], host: &str, chain: &[&[u8]]) -> bool {
    let mut verified = VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    verified.retain(|v| v.verified_at.elapsed() < VERIFIED_CHAIN_TTL);
    verified.iter().any(|v| {
        v.host == host
            && anchors.contains(&v.anchor)
            && v.chain.len() == chain.len()
            && v.chain.iter().zip(chain).all(|(a, b)| a == b)
    })
}

/// Remembers that `chain` verified for `host` against `anchor`.
pub(super) fn remember(anchor: &[u8], host: &str, chain: &[&[u8]]) {
    let mut verified = VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    if verified.len() >= VERIFIED_CHAIN_CACHE_LEN {
        verified.pop_front();
    }
    verified.push_back(VerifiedChain {
        anchor: anchor.to_vec(),
        host: host.to_owned(),
        chain: chain.iter().map(|c| c.to_vec()).collect(),
        verified_at: Instant::now(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_remembered_only_for_its_anchor_host_and_exact_bytes() {
        let (anchor, other_anchor) = (b"anchor-under-test".to_vec(), b"another-anchor".to_vec());
        let chain: [&[u8]; 2] = [b"leaf-under-test", b"ca-under-test"];
        assert!(!is_verified(std::slice::from_ref(&anchor), "engine.test", &chain));
        remember(&anchor, "engine.test", &chain);
        assert!(is_verified(&[other_anchor.clone(), anchor.clone()], "engine.test", &chain));
        assert!(!is_verified(&[other_anchor], "engine.test", &chain), "another trust anchor");
        assert!(!is_verified(std::slice::from_ref(&anchor), "other.test", &chain), "another server name");
        assert!(!is_verified(std::slice::from_ref(&anchor), "engine.test", &chain[..1]), "a shorter chain");
        let forged: [&[u8]; 2] = [b"leaf-under-tesT", b"ca-under-test"];
        assert!(!is_verified(&[anchor], "engine.test", &forged), "other bytes");
    }
}
