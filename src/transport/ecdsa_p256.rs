//! ECDSA P-256 with SHA-256 for rustls-webpki, computed by RustCrypto's `p256` (pure Rust: no ring, no C on
//! the device). This is only the glue webpki asks for — "verify this signature with this public key" — the
//! mathematics is `p256`'s, the certificate logic webpki's.
//!
//! webpki hands over the subjectPublicKey bits of a certificate (for P-256: the SEC1 point) and the DER-encoded
//! `ECDSA-Sig-Value`, for certificate signatures and for the TLS 1.3 CertificateVerify alike.

use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use rustls_pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// ECDSA over P-256 with SHA-256 (`ecdsa-with-SHA256` signatures by `id-ecPublicKey`/`prime256v1` keys): the
/// one algorithm the engine's certificates and handshake signatures use.
pub(super) static ECDSA_P256_SHA256: &dyn SignatureVerificationAlgorithm = &EcdsaP256Sha256;

#[derive(Debug)]
struct EcdsaP256Sha256;

impl SignatureVerificationAlgorithm for EcdsaP256Sha256 {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let signature = Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        key.verify(message, &signature).map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P256
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_SHA256
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{DerSignature, SigningKey};

    use super::*;

    fn key_pair() -> (SigningKey, Vec<u8>) {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let point = key.verifying_key().to_encoded_point(false).as_bytes().to_vec();
        (key, point)
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let (key, point) = key_pair();
        let (_, other_point) = key_pair();
        let signature: DerSignature = key.sign(b"signed bytes");
        assert!(ECDSA_P256_SHA256.verify_signature(&point, b"signed bytes", signature.as_bytes()).is_ok());
        assert!(ECDSA_P256_SHA256.verify_signature(&point, b"other bytes", signature.as_bytes()).is_err());
        assert!(ECDSA_P256_SHA256.verify_signature(&other_point, b"signed bytes", signature.as_bytes()).is_err());
    }

    #[test]
    fn malformed_keys_and_signatures_are_refused_not_panics() {
        let (key, point) = key_pair();
        let signature: DerSignature = key.sign(b"m");
        assert!(ECDSA_P256_SHA256.verify_signature(&point[..40], b"m", signature.as_bytes()).is_err());
        assert!(ECDSA_P256_SHA256.verify_signature(&[], b"m", signature.as_bytes()).is_err());
        assert!(ECDSA_P256_SHA256.verify_signature(&point, b"m", &signature.as_bytes()[1..]).is_err());
        assert!(ECDSA_P256_SHA256.verify_signature(&point, b"m", &[0x30, 0x00]).is_err());
    }

    #[cfg(feature = "engine")]
    #[test]
    fn webpki_verifies_an_rcgen_chain_with_it() {
        use rustls_pki_types::{CertificateDer, UnixTime};
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let anchors = [webpki::anchor_from_trusted_cert(ca.der()).unwrap()];
        let leaf_der = CertificateDer::from(leaf.der().to_vec());
        let ee = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
        let verified = ee.verify_for_usage(
            &[ECDSA_P256_SHA256],
            &anchors,
            &[],
            UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        );
        assert!(verified.is_ok(), "{:?}", verified.err());
        // Without the algorithm webpki cannot check anything, so it must refuse.
        let unverifiable =
            ee.verify_for_usage(&[], &anchors, &[], UnixTime::now(), webpki::KeyUsage::server_auth(), None, None);
        assert!(unverifiable.is_err());
    }
}
