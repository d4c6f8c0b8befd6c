//! Server authentication for the embedded-tls client: the engine must present a chain that verifies
//! ([`super::server_chain`], rustls-webpki) *and* prove with CertificateVerify that it holds the leaf's key —
//! in that order, each exactly once.
//!
//! embedded-tls 0.19 only calls the verifier when the messages arrive, and accepts EncryptedExtensions,
//! Certificate, CertificateVerify and Finished in any order and any number of times; a server that sends no
//! Certificate at all is never verified. So [`EngineVerifier`] is a small state machine
//! (awaiting certificate → chain verified → authenticated) that refuses anything out of order, and the client
//! asks it after the handshake ([`EngineVerifier::authenticated_leaf`]): a handshake that did not reach
//! "authenticated" is a failure, whatever embedded-tls says.

use embedded_tls::{
    Aes128GcmSha256, CertificateEntryRef, CertificateRef, CertificateVerifyRef, Sha256, SignatureScheme, TlsError,
    TlsVerifier,
};
use rustls_pki_types::CertificateDer;
use sha2::Digest as _;
use webpki::EndEntityCert;

use super::ecdsa_p256::ECDSA_P256_SHA256;
use super::server_chain::verify_server_chain;

/// The one TLS 1.3 cipher suite the client offers (mandatory-to-implement, so every TLS 1.3 server has it).
pub type Suite = Aes128GcmSha256;

/// What a TLS 1.3 server signs in `CertificateVerify`, before the transcript hash (RFC 8446 §4.4.3): 64 spaces,
/// the context string and a zero byte.
const SERVER_SIGNATURE_CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify\0";

/// How far the server got in proving who it is.
enum Stage {
    /// No Certificate yet.
    AwaitingCertificate,
    /// The chain verified: its leaf (DER) and the transcript hash up to the Certificate message, which the
    /// CertificateVerify signature covers.
    ChainVerified { leaf: Vec<u8>, transcript: Sha256 },
    /// CertificateVerify checked with the leaf's key.
    Authenticated { leaf: Vec<u8> },
    /// A check failed (the reason is in `failure`); nothing more is accepted.
    Refused,
}

/// Verifies the engine's Certificate (chain, name, dates) and then its CertificateVerify against that leaf.
pub struct EngineVerifier<'a> {
    anchors: &'a [Vec<u8>],
    host: Option<String>,
    stage: Stage,
    failure: Option<String>,
}

impl<'a> EngineVerifier<'a> {
    /// A verifier trusting the certificates in `anchors` (DER, at least one).
    pub fn new(anchors: &'a [Vec<u8>]) -> Self {
        EngineVerifier { anchors, host: None, stage: Stage::AwaitingCertificate, failure: None }
    }

    /// The server's leaf certificate once the server is authenticated (chain and handshake signature both
    /// verified), or why it is not. Call after the handshake: embedded-tls completes a handshake in which the
    /// server skipped its Certificate or CertificateVerify, and this is where that is caught.
    pub fn authenticated_leaf(self) -> Result<Vec<u8>, String> {
        match self.stage {
            Stage::Authenticated { leaf } => Ok(leaf),
            Stage::AwaitingCertificate => {
                Err("the server sent no certificate: it did not authenticate itself (not the engine?)".into())
            }
            Stage::ChainVerified { .. } => Err("the server sent its certificate but no handshake signature \
                                                (CertificateVerify): it did not prove it holds the certificate's key"
                .into()),
            Stage::Refused => Err(self.failure.unwrap_or_else(|| "the server's certificate was refused".into())),
        }
    }

    /// Why verification failed, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn refuse(&mut self, why: String, error: TlsError) -> TlsError {
        self.stage = Stage::Refused;
        self.failure = Some(why);
        error
    }
}

impl TlsVerifier<Suite> for EngineVerifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        self.host = Some(hostname.to_owned());
        Ok(())
    }

    fn verify_certificate(&mut self, transcript: &Sha256, cert: CertificateRef) -> Result<(), TlsError> {
        match self.stage {
            Stage::AwaitingCertificate => {}
            Stage::Refused => return Err(TlsError::InvalidCertificate),
            Stage::ChainVerified { .. } | Stage::Authenticated { .. } => {
                let why = "the server sent a second Certificate message (protocol violation)".into();
                return Err(self.refuse(why, TlsError::InvalidHandshake));
            }
        }
        let Some(host) = self.host.clone() else {
            let why = "no server name to verify the certificate against".into();
            return Err(self.refuse(why, TlsError::InvalidCertificate));
        };
        let chain: Vec<&[u8]> = cert
            .entries
            .iter()
            .filter_map(|e| match e {
                CertificateEntryRef::X509(der) => Some(*der),
                CertificateEntryRef::RawPublicKey(_) => None,
            })
            .collect();
        if chain.is_empty() || chain.len() != cert.entries.len() {
            let why = "the server sent no X.509 certificate chain".into();
            return Err(self.refuse(why, TlsError::InvalidCertificate));
        }
        match verify_server_chain(self.anchors, &host, &chain) {
            Ok(()) => {
                self.stage = Stage::ChainVerified { leaf: chain[0].to_vec(), transcript: transcript.clone() };
                Ok(())
            }
            Err(why) => Err(self.refuse(why, TlsError::InvalidCertificate)),
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef) -> Result<(), TlsError> {
        let (leaf, transcript) = match std::mem::replace(&mut self.stage, Stage::Refused) {
            Stage::ChainVerified { leaf, transcript } => (leaf, transcript),
            Stage::AwaitingCertificate => {
                let why = "the server sent its handshake signature before its certificate (protocol violation)";
                return Err(self.refuse(why.into(), TlsError::InvalidHandshake));
            }
            Stage::Authenticated { .. } => {
                let why = "the server sent a second CertificateVerify message (protocol violation)";
                return Err(self.refuse(why.into(), TlsError::InvalidHandshake));
            }
            Stage::Refused => return Err(TlsError::InvalidSignature),
        };
        match verify_handshake_signature(&leaf, transcript, &verify) {
            Ok(()) => {
                self.stage = Stage::Authenticated { leaf };
                Ok(())
            }
            Err(why) => Err(self.refuse(why, TlsError::InvalidSignature)),
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
    let der = CertificateDer::from(leaf);
    let leaf = EndEntityCert::try_from(&der).map_err(|e| format!("the server's certificate is malformed ({e:?})"))?;
    let mut message = Vec::with_capacity(64 + SERVER_SIGNATURE_CONTEXT.len() + 32);
    message.extend_from_slice(&[b' '; 64]);
    message.extend_from_slice(SERVER_SIGNATURE_CONTEXT);
    message.extend_from_slice(&transcript.finalize());
    leaf.verify_signature(ECDSA_P256_SHA256, &message, verify.signature).map_err(|e| match e {
        webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "the server's certificate does not hold a P-256 public key".to_owned()
        }
        _ => "the server's handshake signature does not match its certificate".to_owned(),
    })
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use embedded_tls::CertificateRef;
    use p256::ecdsa::signature::Signer as _;
    use p256::ecdsa::{DerSignature, SigningKey};
    use p256::pkcs8::DecodePrivateKey as _;

    use super::*;

    /// A trusted CA (DER) and a `localhost` leaf it issued, with the leaf's signing key.
    fn identity() -> (Vec<u8>, Vec<u8>, SigningKey) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&key, &ca).unwrap();
        let signer = SigningKey::from_pkcs8_der(&key.serialize_der()).unwrap();
        (ca.der().to_vec(), leaf.der().to_vec(), signer)
    }

    /// A handshake as embedded-tls drives the verifier, the transcript standing in for the messages so far.
    struct Handshake<'a> {
        verifier: EngineVerifier<'a>,
        transcript: Sha256,
    }

    impl<'a> Handshake<'a> {
        fn new(anchors: &'a [Vec<u8>]) -> Self {
            let mut verifier = EngineVerifier::new(anchors);
            verifier.set_hostname_verification("localhost").unwrap();
            Handshake { verifier, transcript: Sha256::new_with_prefix(b"ClientHello..EncryptedExtensions") }
        }

        fn certificate(&mut self, leaf: &[u8]) -> Result<(), TlsError> {
            self.transcript.update(b"Certificate");
            let mut cert = CertificateRef::with_context(&[]);
            cert.add(CertificateEntryRef::X509(leaf)).unwrap();
            self.verifier.verify_certificate(&self.transcript, cert)
        }

        fn certificate_verify(&mut self, key: &SigningKey) -> Result<(), TlsError> {
            let mut signed = vec![b' '; 64];
            signed.extend_from_slice(SERVER_SIGNATURE_CONTEXT);
            signed.extend_from_slice(&self.transcript.clone().finalize());
            let signature: DerSignature = key.sign(&signed);
            self.transcript.update(b"CertificateVerify");
            let verify = CertificateVerifyRef {
                signature_scheme: SignatureScheme::EcdsaSecp256r1Sha256,
                signature: signature.as_bytes(),
            };
            self.verifier.verify_signature(verify)
        }

        fn verdict(self) -> Result<Vec<u8>, String> {
            self.verifier.authenticated_leaf()
        }
    }

    #[test]
    fn certificate_then_its_signature_authenticates_the_leaf() {
        let (ca, leaf, key) = identity();
        let anchors = [ca];
        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        hs.certificate_verify(&key).unwrap();
        assert_eq!(hs.verdict().unwrap(), leaf);
    }

    #[test]
    fn a_missing_certificate_or_signature_is_never_success() {
        let (ca, leaf, _) = identity();
        let anchors = [ca];
        let err = Handshake::new(&anchors).verdict().unwrap_err();
        assert!(err.contains("sent no certificate"), "{err}");
        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        let err = hs.verdict().unwrap_err();
        assert!(err.contains("no handshake signature"), "{err}");
    }

    #[test]
    fn messages_out_of_order_or_repeated_are_refused() {
        let (ca, leaf, key) = identity();
        let anchors = [ca];
        let mut hs = Handshake::new(&anchors);
        assert!(hs.certificate_verify(&key).is_err());
        assert!(hs.certificate(&leaf).is_err(), "nothing is accepted after a refusal");
        assert!(hs.verdict().unwrap_err().contains("before its certificate"));

        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        assert!(matches!(hs.certificate(&leaf), Err(TlsError::InvalidHandshake)));
        assert!(hs.certificate_verify(&key).is_err());
        assert!(hs.verdict().unwrap_err().contains("second Certificate"));

        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        hs.certificate_verify(&key).unwrap();
        assert!(hs.certificate(&leaf).is_err());
        assert!(hs.verdict().unwrap_err().contains("second Certificate"), "a late Certificate undoes the verdict");

        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        hs.certificate_verify(&key).unwrap();
        assert!(hs.certificate_verify(&key).is_err());
        assert!(hs.verdict().unwrap_err().contains("second CertificateVerify"));
    }

    #[test]
    fn a_signature_by_another_key_or_scheme_is_refused() {
        let (ca, leaf, _) = identity();
        let anchors = [ca];
        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        assert!(hs.certificate_verify(&SigningKey::random(&mut rand_core::OsRng)).is_err());
        assert!(hs.verdict().unwrap_err().contains("does not match its certificate"));

        let mut hs = Handshake::new(&anchors);
        hs.certificate(&leaf).unwrap();
        let verify = CertificateVerifyRef { signature_scheme: SignatureScheme::Ed25519, signature: &[0; 64] };
        assert!(hs.verifier.verify_signature(verify).is_err());
        assert!(hs.verdict().unwrap_err().contains("ECDSA P-256 with SHA-256 only"));
    }
}
