//! A hand-written TLS 1.3 server for attacker tests: it speaks just enough of RFC 8446 (TLS_AES_128_GCM_SHA256,
//! a P-256 key share, ECDSA P-256/SHA-256 signatures) to finish a handshake with the rstream client, and it can
//! leave out or repeat the messages that authenticate a server — which rustls cannot be told to do.
//!
//! ```ignore
//! let fake = FakeTls13::start(Flight::NoCertificate, identity);
//! // point a context at fake.addr(), run the client …
//! assert!(fake.app_data().is_empty(), "the client sent application data (its token) to an impostor");
//! ```
//! Every connection is served on its own thread with a read timeout; the server records how far each client
//! got ([`Seen`]) and every application-data record it decrypted. In the honest flight it answers an
//! `http/1.1` request with `200 []`, so a real client can complete a call against it (proof that the server
//! is faithful and that the other flights fail for the reason they test).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{DerSignature, SigningKey};
use sha2::{Digest, Sha256};

/// What the server sends between ServerHello and its Finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flight {
    /// EncryptedExtensions, Finished: no Certificate, no CertificateVerify.
    NoCertificate,
    /// EncryptedExtensions, Certificate: the chain without proof of its key.
    CertificateWithoutVerify,
    /// EncryptedExtensions, Certificate, CertificateVerify made by a key that is not the leaf's.
    ForeignKeyVerify,
    /// EncryptedExtensions, Certificate, Certificate, CertificateVerify (valid for the transcript).
    TwoCertificates,
    /// EncryptedExtensions, CertificateVerify, Certificate: the signature before the certificate.
    VerifyBeforeCertificate,
    /// EncryptedExtensions, Certificate, CertificateVerify, Finished: a faithful server.
    Honest,
}

/// The chain the server presents (DER, leaf first) and the key it signs CertificateVerify with.
#[derive(Clone)]
pub struct Identity {
    pub chain: Vec<Vec<u8>>,
    pub key: SigningKey,
}

impl Identity {
    /// `chain` with the leaf key in PKCS#8 DER (as rcgen's `KeyPair::serialize_der`).
    pub fn from_pkcs8(chain: Vec<Vec<u8>>, pkcs8_der: &[u8]) -> Identity {
        use p256::pkcs8::DecodePrivateKey;
        Identity { chain, key: SigningKey::from_pkcs8_der(pkcs8_der).expect("P-256 PKCS#8 key") }
    }
}

/// How far one client got.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// A ClientHello arrived and the ServerHello went out: the client reached the TLS handshake.
    pub server_hello: bool,
    /// The client's Finished arrived and verified: the client accepted the server.
    pub client_finished: bool,
    /// The alert the client sent (description), if any.
    pub alert: Option<u8>,
    /// The connection has ended (the record is complete).
    pub ended: bool,
}

struct Shared {
    flight: Flight,
    identity: Identity,
    stop: AtomicBool,
    connections: Mutex<Vec<Arc<Mutex<Seen>>>>,
    app_data: Mutex<Vec<Vec<u8>>>,
}

/// A running fake TLS 1.3 server on 127.0.0.1 (stopped on drop).
pub struct FakeTls13 {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeTls13 {
    /// Listens on an ephemeral loopback port and serves every connection with `flight`.
    pub fn start(flight: Flight, identity: Identity) -> FakeTls13 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake TLS server");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            flight,
            identity,
            stop: AtomicBool::new(false),
            connections: Mutex::default(),
            app_data: Mutex::default(),
        });
        let server = Arc::clone(&shared);
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if server.stop.load(Ordering::Acquire) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let seen = Arc::new(Mutex::new(Seen::default()));
                server.connections.lock().unwrap().push(Arc::clone(&seen));
                let server = Arc::clone(&server);
                std::thread::spawn(move || {
                    let _ = serve(tcp, &server, &seen);
                    seen.lock().unwrap().ended = true;
                });
            }
        });
        FakeTls13 { addr, shared }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What each connection so far got to, in accept order.
    pub fn connections(&self) -> Vec<Seen> {
        self.shared.connections.lock().unwrap().iter().map(|s| s.lock().unwrap().clone()).collect()
    }

    /// How many connections have ended.
    pub fn ended(&self) -> usize {
        self.connections().iter().filter(|s| s.ended).count()
    }

    /// Every application-data record received (decrypted), across connections.
    pub fn app_data(&self) -> Vec<Vec<u8>> {
        self.shared.app_data.lock().unwrap().clone()
    }
}

impl Drop for FakeTls13 {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const ALERT: u8 = 21;
const CHANGE_CIPHER_SPEC: u8 = 20;
const TLS_AES_128_GCM_SHA256: u16 = 0x1301;
const SECP256R1: u16 = 23;
const ECDSA_SECP256R1_SHA256: u16 = 0x0403;

/// One TLS 1.3 connection with the configured flight.
fn serve(mut tcp: TcpStream, server: &Shared, seen: &Mutex<Seen>) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (kind, hello) = read_record(&mut tcp)?;
    if kind != HANDSHAKE {
        return Err(bad("the first record is not a handshake"));
    }
    let client = parse_client_hello(&hello)?;
    let mut transcript = Sha256::new();
    transcript.update(&hello);

    // ServerHello, in the clear, with our P-256 share.
    let secret = p256::ecdh::EphemeralSecret::random(&mut rand_core::OsRng);
    let share = p256::EncodedPoint::from(secret.public_key());
    let peer = p256::PublicKey::from_sec1_bytes(&client.key_share).map_err(|_| bad("client key share"))?;
    let shared_secret = secret.diffie_hellman(&peer);
    let mut body = vec![3, 3];
    body.extend(rand_bytes::<32>());
    body.push(client.session_id.len() as u8);
    body.extend(&client.session_id);
    body.extend(TLS_AES_128_GCM_SHA256.to_be_bytes());
    body.push(0);
    let mut extensions = extension(43, &[3, 4]);
    let mut key_share = SECP256R1.to_be_bytes().to_vec();
    key_share.extend(u16_prefixed(share.as_bytes()));
    extensions.extend(extension(51, &key_share));
    body.extend(u16_prefixed(&extensions));
    let server_hello = handshake_message(2, &body);
    transcript.update(&server_hello);
    write_record(&mut tcp, HANDSHAKE, &server_hello)?;
    seen.lock().unwrap().server_hello = true;

    let keys = KeySchedule::new(shared_secret.raw_secret_bytes(), &transcript.clone().finalize());
    let mut to_client = RecordKeys::new(&keys.server_handshake);
    let mut from_client = RecordKeys::new(&keys.client_handshake);

    let mut send = |tcp: &mut TcpStream, transcript: &mut Sha256, message: Vec<u8>| {
        transcript.update(&message);
        to_client.seal(tcp, HANDSHAKE, &message)
    };
    let alpn = client.alpn.first().cloned();
    let mut ee = Vec::new();
    if let Some(proto) = &alpn {
        let mut names = vec![proto.len() as u8];
        names.extend(proto);
        ee = extension(16, &u16_prefixed(&names));
    }
    send(&mut tcp, &mut transcript, handshake_message(8, &u16_prefixed(&ee)))?;
    let identity = &server.identity;
    let certificate = || certificate_message(&identity.chain);
    let verify = |transcript: &Sha256, key: &SigningKey| certificate_verify_message(transcript, key);
    match server.flight {
        Flight::NoCertificate => {}
        Flight::CertificateWithoutVerify => send(&mut tcp, &mut transcript, certificate())?,
        Flight::ForeignKeyVerify => {
            send(&mut tcp, &mut transcript, certificate())?;
            let other = SigningKey::random(&mut rand_core::OsRng);
            let cv = verify(&transcript, &other);
            send(&mut tcp, &mut transcript, cv)?;
        }
        Flight::TwoCertificates => {
            send(&mut tcp, &mut transcript, certificate())?;
            send(&mut tcp, &mut transcript, certificate())?;
            let cv = verify(&transcript, &identity.key);
            send(&mut tcp, &mut transcript, cv)?;
        }
        Flight::VerifyBeforeCertificate => {
            let cv = verify(&transcript, &identity.key);
            send(&mut tcp, &mut transcript, cv)?;
            send(&mut tcp, &mut transcript, certificate())?;
        }
        Flight::Honest => {
            send(&mut tcp, &mut transcript, certificate())?;
            let cv = verify(&transcript, &identity.key);
            send(&mut tcp, &mut transcript, cv)?;
        }
    }
    let finished = handshake_message(20, &finished_mac(&keys.server_handshake, &transcript));
    send(&mut tcp, &mut transcript, finished)?;
    let client_finished_expected = finished_mac(&keys.client_handshake, &transcript);
    let application = keys.application(&transcript.clone().finalize());

    // The client's Finished (under the handshake keys), then application data (under the application keys).
    loop {
        let (kind, record) = match read_record(&mut tcp) {
            Ok(r) => r,
            Err(_) => return Ok(()), // closed (or timed out): the record is complete
        };
        match kind {
            CHANGE_CIPHER_SPEC => continue,
            ALERT => {
                seen.lock().unwrap().alert = record.get(1).copied();
                return Ok(());
            }
            APPLICATION_DATA => {}
            _ => return Err(bad("unexpected record type")),
        }
        let (inner, plain) = from_client.open(&record)?;
        match inner {
            ALERT => {
                seen.lock().unwrap().alert = plain.get(1).copied();
                return Ok(());
            }
            HANDSHAKE if !seen.lock().unwrap().client_finished => {
                if plain.len() != 36 || plain[0] != 20 || plain[4..] != client_finished_expected[..] {
                    return Err(bad("client Finished does not verify"));
                }
                seen.lock().unwrap().client_finished = true;
                from_client = RecordKeys::new(&application.client);
                to_client = RecordKeys::new(&application.server);
            }
            APPLICATION_DATA => {
                server.app_data.lock().unwrap().push(plain.clone());
                if server.flight == Flight::Honest && alpn.as_deref() == Some(b"http/1.1") {
                    let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
                                   Connection: close\r\n\r\n[]";
                    to_client.seal(&mut tcp, APPLICATION_DATA, answer)?;
                    let _ = tcp.shutdown(Shutdown::Write);
                }
            }
            _ => {} // post-handshake messages (none expected)
        }
    }
}

/// The parts of a ClientHello the server needs.
struct ClientHello {
    session_id: Vec<u8>,
    key_share: Vec<u8>,
    alpn: Vec<Vec<u8>>,
}

fn parse_client_hello(message: &[u8]) -> std::io::Result<ClientHello> {
    let mut r = Reader(message);
    if r.u8()? != 1 {
        return Err(bad("not a ClientHello"));
    }
    let len = r.u24()?;
    let mut body = Reader(r.take(len)?);
    body.take(2 + 32)?; // legacy_version, random
    let session_id = body.u8_prefixed()?.to_vec();
    let suites = body.u16_prefixed()?;
    if !suites.chunks(2).any(|s| s == TLS_AES_128_GCM_SHA256.to_be_bytes()) {
        return Err(bad("client does not offer TLS_AES_128_GCM_SHA256"));
    }
    body.u8_prefixed()?; // compression methods
    let mut extensions = Reader(body.u16_prefixed()?);
    let (mut key_share, mut alpn) = (None, Vec::new());
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let mut data = Reader(extensions.u16_prefixed()?);
        match kind {
            51 => {
                let mut shares = Reader(data.u16_prefixed()?);
                while !shares.0.is_empty() {
                    let group = shares.u16()?;
                    let key = shares.u16_prefixed()?;
                    if group == SECP256R1 {
                        key_share = Some(key.to_vec());
                    }
                }
            }
            16 => {
                let mut names = Reader(data.u16_prefixed()?);
                while !names.0.is_empty() {
                    alpn.push(names.u8_prefixed()?.to_vec());
                }
            }
            _ => {}
        }
    }
    let key_share = key_share.ok_or_else(|| bad("no P-256 key share"))?;
    Ok(ClientHello { session_id, key_share, alpn })
}

/// Certificate: empty request context, then each DER certificate with no extensions.
fn certificate_message(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut list = Vec::new();
    for der in chain {
        list.extend(u24(der.len()));
        list.extend(der);
        list.extend([0, 0]);
    }
    let mut body = vec![0];
    body.extend(u24(list.len()));
    body.extend(list);
    handshake_message(11, &body)
}

/// CertificateVerify by `key` over the transcript so far (RFC 8446 §4.4.3).
fn certificate_verify_message(transcript: &Sha256, key: &SigningKey) -> Vec<u8> {
    let mut signed = vec![b' '; 64];
    signed.extend(b"TLS 1.3, server CertificateVerify\0");
    signed.extend(transcript.clone().finalize());
    let signature: DerSignature = key.sign(&signed);
    let mut body = ECDSA_SECP256R1_SHA256.to_be_bytes().to_vec();
    body.extend(u16_prefixed(signature.as_bytes()));
    handshake_message(15, &body)
}

/// Finished verify_data: HMAC(finished_key(base), transcript hash).
fn finished_mac(base_secret: &[u8; 32], transcript: &Sha256) -> Vec<u8> {
    let finished_key = expand_label(base_secret, "finished", &[], 32);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&finished_key).unwrap();
    mac.update(&transcript.clone().finalize());
    mac.finalize().into_bytes().to_vec()
}

/// The handshake and application traffic secrets of one connection.
struct KeySchedule {
    handshake_secret: [u8; 32],
    client_handshake: [u8; 32],
    server_handshake: [u8; 32],
}

/// Application traffic secrets.
struct Application {
    client: [u8; 32],
    server: [u8; 32],
}

impl KeySchedule {
    /// From the ECDHE secret and the hash of ClientHello..ServerHello.
    fn new(ecdhe: &[u8], hello_hash: &[u8]) -> KeySchedule {
        let early = extract(&[0; 32], &[0; 32]);
        let handshake_secret = extract(&derive_secret(&early, "derived", &Sha256::digest([])), ecdhe);
        KeySchedule {
            client_handshake: derive_secret(&handshake_secret, "c hs traffic", hello_hash),
            server_handshake: derive_secret(&handshake_secret, "s hs traffic", hello_hash),
            handshake_secret,
        }
    }

    /// From the hash of ClientHello..server Finished.
    fn application(&self, finished_hash: &[u8]) -> Application {
        let master = extract(&derive_secret(&self.handshake_secret, "derived", &Sha256::digest([])), &[0; 32]);
        Application {
            client: derive_secret(&master, "c ap traffic", finished_hash),
            server: derive_secret(&master, "s ap traffic", finished_hash),
        }
    }
}

fn extract(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    Hkdf::<Sha256>::extract(Some(salt), ikm).0.into()
}

fn derive_secret(secret: &[u8; 32], label: &str, hash: &[u8]) -> [u8; 32] {
    expand_label(secret, label, hash, 32).try_into().unwrap()
}

/// HKDF-Expand-Label (RFC 8446 §7.1).
fn expand_label(secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let mut info = (len as u16).to_be_bytes().to_vec();
    let full = format!("tls13 {label}");
    info.push(full.len() as u8);
    info.extend(full.as_bytes());
    info.push(context.len() as u8);
    info.extend(context);
    let mut out = vec![0; len];
    Hkdf::<Sha256>::from_prk(secret).unwrap().expand(&info, &mut out).unwrap();
    out
}

/// AES-128-GCM record protection for one direction.
struct RecordKeys {
    cipher: Aes128Gcm,
    iv: [u8; 12],
    seq: u64,
}

impl RecordKeys {
    fn new(secret: &[u8; 32]) -> RecordKeys {
        let key = expand_label(secret, "key", &[], 16);
        let iv = expand_label(secret, "iv", &[], 12);
        RecordKeys { cipher: <Aes128Gcm as KeyInit>::new_from_slice(&key).unwrap(), iv: iv.try_into().unwrap(), seq: 0 }
    }

    fn nonce(&mut self) -> [u8; 12] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        nonce
    }

    /// Encrypts `content` of `kind` into one record and writes it.
    fn seal(&mut self, tcp: &mut TcpStream, kind: u8, content: &[u8]) -> std::io::Result<()> {
        let mut inner = content.to_vec();
        inner.push(kind);
        let header = record_header(APPLICATION_DATA, inner.len() + 16);
        let nonce = self.nonce();
        let sealed = self.cipher.encrypt(&nonce.into(), Payload { msg: &inner, aad: &header }).unwrap();
        tcp.write_all(&header)?;
        tcp.write_all(&sealed)
    }

    /// Decrypts one record body: (inner content type, content).
    fn open(&mut self, body: &[u8]) -> std::io::Result<(u8, Vec<u8>)> {
        let header = record_header(APPLICATION_DATA, body.len());
        let nonce = self.nonce();
        let mut plain = self
            .cipher
            .decrypt(&nonce.into(), Payload { msg: body, aad: &header })
            .map_err(|_| bad("record does not decrypt"))?;
        while plain.last() == Some(&0) {
            plain.pop();
        }
        let kind = plain.pop().ok_or_else(|| bad("empty inner plaintext"))?;
        Ok((kind, plain))
    }
}

fn record_header(kind: u8, len: usize) -> [u8; 5] {
    let len = (len as u16).to_be_bytes();
    [kind, 3, 3, len[0], len[1]]
}

fn read_record(tcp: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0; 5];
    tcp.read_exact(&mut header)?;
    let mut body = vec![0; u16::from_be_bytes([header[3], header[4]]) as usize];
    tcp.read_exact(&mut body)?;
    Ok((header[0], body))
}

fn write_record(tcp: &mut TcpStream, kind: u8, body: &[u8]) -> std::io::Result<()> {
    tcp.write_all(&record_header(kind, body.len()))?;
    tcp.write_all(body)
}

fn handshake_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![kind];
    message.extend(u24(body.len()));
    message.extend(body);
    message
}

fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(u16_prefixed(data));
    out
}

fn u16_prefixed(data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u16).to_be_bytes().to_vec();
    out.extend(data);
    out
}

fn u24(len: usize) -> [u8; 3] {
    let b = (len as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0; N];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut out);
    out
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("fake TLS server: {what}"))
}

/// A cursor over TLS wire bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> std::io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::io::Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> std::io::Result<usize> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize)
    }
    fn u8_prefixed(&mut self) -> std::io::Result<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn u16_prefixed(&mut self) -> std::io::Result<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}
