//! Engine impersonation: the real binary's clients (`tunnels list`, `webtty exec`, `webtty server --rstream`,
//! `forward`, `doctor`) against a hand-written TLS 1.3 server ([`fake_tls13`]) that leaves out, repeats or
//! reorders the messages that prove who a server is, or presents a chain no validator should accept. A client
//! that accepts such a server hands it its bearer token in the first application-data record, so every refusal
//! is checked twice: the command fails, and the fake server never received a single application-data record.
//!
//! The honest flight (a valid chain, signed with the leaf's key) is the control: the same clients succeed
//! against the same fake server and it does receive the token, so a refusal in the other flights is about
//! what they test, not about a broken fake.

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;
#[path = "common/fake_tls13.rs"]
mod fake_tls13;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{wait_until, ChildGuard, TempDir, BIN};
use fake_tls13::{FakeTls13, Flight, Identity};

/// Longest a client command may take (a hang is a failure).
const CLIENT_DEADLINE: Duration = Duration::from_secs(30);
/// The bearer token every context here carries: what an impostor is after.
const TOKEN: &str = "impostor-bait-token-5f3c9a";

/// A CA and what it issued, as files and DER.
struct Pki {
    _dir: TempDir,
    ca_file: PathBuf,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("impostor-pki");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(rcgen::DnType::CommonName, "impostor test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki { _dir: dir, ca_file, ca }
    }

    /// A `localhost` server identity signed by the CA (the chain: leaf, CA).
    fn localhost(&self) -> Identity {
        leaf(server_params(&["localhost"]), &self.ca, &[self.ca.der().to_vec()])
    }
}

/// Parameters of a server leaf for `names` (SAN), with EKU serverAuth.
fn server_params(names: &[&str]) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A leaf from `params` issued by `issuer`, presented with `rest` of the chain.
fn leaf(params: rcgen::CertificateParams, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>, rest: &[Vec<u8>]) -> Identity {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let mut chain = vec![cert.der().to_vec()];
    chain.extend_from_slice(rest);
    Identity::from_pkcs8(chain, &key.serialize_der())
}

/// A config file with one default context `fake` pointing at `engine`, trusting `ca_file`, holding [`TOKEN`].
fn context(dir: &Path, engine: std::net::SocketAddr, ca_file: &Path) -> PathBuf {
    let path = dir.join(format!("config-{}.yaml", engine.port()));
    let yaml = format!(
        "version: 1\ndefaults:\n  context:\n    name: fake\ncontexts:\n- name: fake\n  engine: {engine}\n  auth:\n    \
         token:\n      storage:\n        kind: inline\n        value: {TOKEN}\n  transport:\n    tls:\n      caFile: \
         {}\n      serverName: localhost\n",
        ca_file.display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The client commands under test (each talks to the context's engine first thing).
const CLIENTS: [&[&str]; 5] = [
    &["tunnels", "list"],
    &["webtty", "exec", "--url", "rstrm://x", "--", "true"],
    &["webtty", "server", "--rstream", "--no-retry"],
    &["forward", "9", "--no-publish", "--no-retry"],
    &["doctor", "-o", "json"],
];

/// Runs `rstream args…` with `config` as its only configuration, within [`CLIENT_DEADLINE`] (killed otherwise).
fn run(config: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("RSTREAM_CONFIG", config)
        .env_remove("RSTREAM_CONTEXT")
        .env_remove("RSTREAM_ENGINE")
        .env_remove("RSTREAM_AUTHENTICATION_TOKEN")
        .env_remove("RSTREAM_WEBTTY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn rstream");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let mut child = ChildGuard(child);
    let status = child.wait_exit(CLIENT_DEADLINE);
    let status = status.unwrap_or_else(|| panic!("rstream {args:?} still running after {CLIENT_DEADLINE:?}"));
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// What one client command did against one fake server.
struct Attempt {
    out: Output,
    fake: FakeTls13,
}

impl Attempt {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// Every application-data byte the fake server received.
    fn app_data(&self) -> Vec<u8> {
        self.fake.app_data().concat()
    }
}

/// Runs `args` against a fresh fake server with `flight` and `identity`, the client trusting `ca_file`. Waits
/// until the fake server has seen the client's connection end, after the client reached the TLS handshake.
fn attempt(flight: Flight, identity: Identity, ca_file: &Path, args: &[&str]) -> Attempt {
    let fake = FakeTls13::start(flight, identity);
    let dir = TempDir::new("impostor-client");
    let config = context(dir.path(), fake.addr(), ca_file);
    let out = run(&config, args);
    wait_until(Duration::from_secs(10), "the fake server saw the client's connection end", || {
        (fake.ended() > 0).then_some(())
    });
    let reached = fake.connections().iter().any(|c| c.server_hello);
    assert!(reached, "rstream {args:?} never reached the TLS handshake: {}", String::from_utf8_lossy(&out.stderr));
    Attempt { out, fake }
}

/// Every client refuses `flight`: non-zero exit, no application data (no token) at the fake server, and
/// `diagnosis` (when given) in its output. Reports every client that did not, not just the first.
fn every_client_refuses(flight: Flight, identity: &Identity, ca_file: &Path, diagnosis: Option<&str>) {
    let mut failures = Vec::new();
    for args in CLIENTS {
        let attempt = attempt(flight, identity.clone(), ca_file, args);
        let (stderr, stdout) = (attempt.stderr(), String::from_utf8_lossy(&attempt.out.stdout).into_owned());
        let app_data = attempt.app_data();
        if !app_data.is_empty() {
            let leaked = contains(&app_data, TOKEN.as_bytes());
            failures.push(format!(
                "rstream {args:?} sent {} bytes of application data to the impostor (token in it: {leaked})",
                app_data.len()
            ));
        } else if attempt.out.status.success() {
            failures.push(format!("rstream {args:?} succeeded against the impostor"));
        } else if let Some(diagnosis) = diagnosis.filter(|d| !stderr.contains(d) && !stdout.contains(d)) {
            failures.push(format!("rstream {args:?} does not say {diagnosis:?}:\nstderr: {stderr}\nstdout: {stdout}"));
        }
    }
    assert!(failures.is_empty(), "{flight:?}:\n{}", failures.join("\n"));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn honest_server_control_every_client_completes_the_handshake_and_sends_its_token() {
    let pki = Pki::new();
    let identity = pki.localhost();
    for args in CLIENTS {
        let attempt = attempt(Flight::Honest, identity.clone(), &pki.ca_file, args);
        assert!(
            contains(&attempt.app_data(), TOKEN.as_bytes()),
            "rstream {args:?} did not send its token to the honest fake server; stderr: {}",
            attempt.stderr()
        );
        assert!(attempt.fake.connections().iter().any(|c| c.client_finished));
    }
    // And a whole call completes: `tunnels list` prints the (empty) list and exits 0.
    let attempt = attempt(Flight::Honest, identity, &pki.ca_file, &["tunnels", "list", "-o", "json"]);
    assert!(attempt.out.status.success(), "tunnels list against the honest fake failed: {}", attempt.stderr());
    assert_eq!(String::from_utf8_lossy(&attempt.out.stdout).trim(), "[]");
}

#[test]
fn a_server_without_any_certificate_is_refused() {
    let pki = Pki::new();
    every_client_refuses(Flight::NoCertificate, &pki.localhost(), &pki.ca_file, Some("sent no certificate"));
}

#[test]
fn a_copy_of_the_real_engine_chain_without_its_key_is_refused() {
    let engine = common::Engine::start();
    let state = engine.state_dir();
    let pem = |name: &str| std::fs::read_to_string(state.join(name)).unwrap();
    let mut chain: Vec<Vec<u8>> = pem_blocks(&pem("cert.pem"));
    let ca = pem_blocks(&pem("ca.pem"));
    if !chain.contains(&ca[0]) {
        chain.extend(ca);
    }
    // The attacker has the certificates (public) but not key.pem: any key of its own.
    let identity = Identity { chain, key: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng) };
    let ca_file = engine.ca_path();
    every_client_refuses(Flight::CertificateWithoutVerify, &identity, &ca_file, Some("no handshake signature"));
    every_client_refuses(Flight::ForeignKeyVerify, &identity, &ca_file, Some("does not match its certificate"));
}

#[test]
fn a_valid_chain_signed_for_by_another_key_is_refused() {
    let pki = Pki::new();
    every_client_refuses(Flight::ForeignKeyVerify, &pki.localhost(), &pki.ca_file, Some("does not match"));
}

#[test]
fn a_second_certificate_message_is_refused() {
    let pki = Pki::new();
    every_client_refuses(Flight::TwoCertificates, &pki.localhost(), &pki.ca_file, Some("second Certificate"));
}

#[test]
fn a_signature_before_the_certificate_is_refused() {
    let pki = Pki::new();
    let identity = pki.localhost();
    every_client_refuses(Flight::VerifyBeforeCertificate, &identity, &pki.ca_file, Some("before its certificate"));
}

/// DER of every CERTIFICATE block in `pem`.
fn pem_blocks(pem: &str) -> Vec<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).map(|c| c.unwrap().to_vec()).collect()
}

/// A `localhost` leaf signed by an intermediate that the trusted CA issued with `is_ca`; chain: leaf,
/// intermediate (what an operator's `webtty server --listen` certificate could be turned into).
fn via_intermediate(pki: &Pki, is_ca: rcgen::IsCa) -> Identity {
    via_intermediate_with(pki, is_ca, Vec::new())
}

/// [`via_intermediate`] with the intermediate's keyUsage (none when empty).
fn via_intermediate_with(pki: &Pki, is_ca: rcgen::IsCa, key_usages: Vec<rcgen::KeyUsagePurpose>) -> Identity {
    let mut params = server_params(&["device.example"]);
    params.is_ca = is_ca;
    params.key_usages = key_usages;
    params.distinguished_name.push(rcgen::DnType::CommonName, "an operator's device certificate");
    let intermediate = rcgen::CertifiedIssuer::signed_by(params, rcgen::KeyPair::generate().unwrap(), &pki.ca).unwrap();
    leaf(server_params(&["localhost"]), &intermediate, &[intermediate.der().to_vec()])
}

/// `tunnels list` completes against the fake engine presenting `identity` (control for the chain tests).
fn tunnels_list_succeeds(pki: &Pki, identity: Identity) {
    let attempt = attempt(Flight::Honest, identity, &pki.ca_file, &["tunnels", "list", "-o", "json"]);
    assert!(attempt.out.status.success(), "tunnels list failed: {}", attempt.stderr());
    assert!(contains(&attempt.app_data(), TOKEN.as_bytes()));
}

#[test]
fn a_certificate_that_is_not_a_ca_cannot_issue_the_engine_certificate() {
    let pki = Pki::new();
    let forged = via_intermediate(&pki, rcgen::IsCa::ExplicitNoCa);
    every_client_refuses(Flight::Honest, &forged, &pki.ca_file, Some("not a CA (no basicConstraints CA:TRUE)"));
    let unmarked = via_intermediate(&pki, rcgen::IsCa::NoCa);
    every_client_refuses(Flight::Honest, &unmarked, &pki.ca_file, Some("not a CA (no basicConstraints CA:TRUE)"));
    // Control: the same shape of chain with a real (CA:TRUE) intermediate is accepted.
    tunnels_list_succeeds(&pki, via_intermediate(&pki, rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained)));
}

#[test]
fn a_ca_whose_key_usage_lacks_key_cert_sign_cannot_issue_the_engine_certificate() {
    let pki = Pki::new();
    let ca = || rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let signing_only = via_intermediate_with(&pki, ca(), vec![rcgen::KeyUsagePurpose::DigitalSignature]);
    every_client_refuses(Flight::Honest, &signing_only, &pki.ca_file, Some("lacks keyCertSign"));
    // Control: keyCertSign listed.
    let issuing = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    tunnels_list_succeeds(&pki, via_intermediate_with(&pki, ca(), issuing));
}

#[test]
fn a_leaf_for_tls_clients_only_is_refused() {
    let pki = Pki::new();
    let mut params = server_params(&["localhost"]);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let identity = leaf(params, &pki.ca, &[pki.ca.der().to_vec()]);
    every_client_refuses(Flight::Honest, &identity, &pki.ca_file, Some("lacks serverAuth"));
}

#[test]
fn an_expired_leaf_is_refused() {
    let pki = Pki::new();
    let mut params = server_params(&["localhost"]);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let identity = leaf(params, &pki.ca, &[pki.ca.der().to_vec()]);
    every_client_refuses(Flight::Honest, &identity, &pki.ca_file, Some("certificate expired"));
}

#[test]
fn a_name_only_in_the_subject_cn_is_refused() {
    let pki = Pki::new();
    let mut params = server_params(&[]);
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let identity = leaf(params, &pki.ca, &[pki.ca.der().to_vec()]);
    every_client_refuses(Flight::Honest, &identity, &pki.ca_file, Some("do not include the server name"));
    tunnels_list_succeeds(&pki, pki.localhost());
}
