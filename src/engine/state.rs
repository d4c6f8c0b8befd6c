//! The engine's state directory: a generated CA, a leaf certificate for the engine's host names and the HS256
//! secret, created on first start and reused afterwards.
//!
//! ```text
//! <state>/ca.pem        CA certificate (ECDSA P-256) — give it to clients (`transport.tls.caFile`)
//! <state>/ca-key.pem    CA private key (0600)
//! <state>/cert.pem      leaf certificate: localhost, *.t.localhost, 127.0.0.1, ::1, and H, *.t.H per --host
//! <state>/key.pem       leaf private key (0600)
//! <state>/cert-names    the names the leaf was issued for (a change of --host re-issues the leaf)
//! <state>/jwt-secret    32 random bytes, hex (0600); the HMAC key is the file's text
//! <state>/operator-token the local operator token written into the `local` context (0600), minted once
//! <state>/revoked-tokens token ids refused from now on, one per line (0600; `engine token revoke`)
//! ```
//! Every key is ECDSA P-256: the device's TLS client (embedded-tls) verifies only ECDSA-P256-SHA256.
//! Files are written atomically (temp file + rename) with the modes above; the directory is 0700.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use super::auth::{Authorizer, ALL_PERMISSIONS};
use super::clock::unix_now;
use super::ids;
use crate::http::date::civil_from_days;
use crate::state_layout::{self, CA_CERT, CA_KEY, CERT, CERT_NAMES, JWT_SECRET, KEY, OPERATOR_TOKEN, REVOKED_TOKENS};

/// Days a generated leaf certificate is valid (under Apple's 825-day ceiling for locally trusted roots).
const LEAF_VALID_DAYS: i64 = 800;
/// A leaf older than this is re-issued at start-up.
const LEAF_RENEW_AFTER_DAYS: u64 = 365;
/// Years the generated CA is valid.
const CA_VALID_YEARS: i64 = 20;
/// Shortest HS256 secret accepted from `--jwt-secret-file`.
pub const MIN_SECRET_LEN: usize = 16;
/// Subject of the local operator token (the engine's owner).
pub const OPERATOR_SUBJECT: &str = "operator";

/// A state-directory failure, naming the file involved.
#[derive(Debug)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

fn io_err<'a>(path: &'a Path, what: &str) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    let what = what.to_owned();
    move |e| StateError(format!("{what} {}: {e}", path.display()))
}

fn cert_err(e: rcgen::Error) -> StateError {
    StateError(format!("certificate generation failed: {e}"))
}

/// The engine's state directory and the paths inside it.
#[derive(Clone, Debug)]
pub struct StateDir {
    /// The directory.
    pub dir: PathBuf,
}

impl StateDir {
    /// `flag`, else `$XDG_STATE_HOME/rstream/engine`, else `~/.local/state/rstream/engine`.
    pub fn resolve(flag: Option<&str>) -> Result<StateDir, StateError> {
        let dir = match flag {
            Some(d) => PathBuf::from(d),
            None => state_layout::default_dir_from_env()
                .ok_or_else(|| StateError("neither --state-dir, XDG_STATE_HOME nor HOME is set".into()))?,
        };
        Ok(StateDir { dir })
    }

    /// CA certificate path.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }
    fn ca_key(&self) -> PathBuf {
        self.dir.join(CA_KEY)
    }
    /// Leaf certificate chain path (leaf then CA).
    pub fn cert(&self) -> PathBuf {
        self.dir.join(CERT)
    }
    /// Leaf private key path.
    pub fn key(&self) -> PathBuf {
        self.dir.join(KEY)
    }
    fn cert_names(&self) -> PathBuf {
        self.dir.join(CERT_NAMES)
    }
    /// HS256 secret path.
    pub fn secret(&self) -> PathBuf {
        self.dir.join(JWT_SECRET)
    }
    /// The local operator token's path.
    pub fn operator_token(&self) -> PathBuf {
        self.dir.join(OPERATOR_TOKEN)
    }
    /// The revocation list's path ([`super::revocation`]).
    pub fn revocations(&self) -> PathBuf {
        self.dir.join(REVOKED_TOKENS)
    }

    /// The local operator token (subject `operator`, every permission, no expiry): the stored one while `auth`
    /// still accepts it with every permission, else a new one, stored. So the `local` context keeps its token
    /// across restarts, and a revoked or foreign one is replaced.
    pub fn ensure_operator_token(&self, auth: &Authorizer) -> Result<String, StateError> {
        let path = self.operator_token();
        if let Ok(text) = fs::read_to_string(&path) {
            let token = text.trim();
            match auth.authorize(Some(token), None) {
                Ok(claims) if ALL_PERMISSIONS.iter().all(|p| claims.allows(p)) => return Ok(token.to_owned()),
                Ok(_) => log_info!("operator token in {} lacks a permission: minting a new one", path.display()),
                Err(e) => log_info!("operator token in {} is refused ({e}): minting a new one", path.display()),
            }
        }
        let token = auth.mint(OPERATOR_SUBJECT, &ALL_PERMISSIONS, None);
        write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)?;
        Ok(token)
    }

    /// Creates the directory (0700) if needed.
    pub fn create(&self) -> Result<(), StateError> {
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir, "cannot create state dir"))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err(&self.dir, "cannot restrict state dir"))
    }

    /// Loads the HS256 secret, generating it on first use.
    pub fn ensure_secret(&self) -> Result<Vec<u8>, StateError> {
        let path = self.secret();
        if !path.exists() {
            write_atomic(&path, format!("{}\n", ids::random_hex::<32>()).as_bytes(), 0o600)?;
        }
        read_secret_file(&path)
    }

    /// Loads the CA, generating it on first use, and (re-)issues the leaf when missing, old, or issued for
    /// other names than `hosts` require. Returns whether a new leaf was written.
    pub fn ensure_certificates(&self, hosts: &[String]) -> Result<bool, StateError> {
        let (ca_params, ca_key) = self.ensure_ca()?;
        let names = leaf_names(hosts)?;
        let wanted = names.join("\n");
        let current = fs::read_to_string(self.cert_names()).unwrap_or_default();
        let fresh = fs::metadata(self.cert())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() < LEAF_RENEW_AFTER_DAYS * 86_400);
        if fresh && current.trim_end() == wanted && self.key().exists() {
            return Ok(false);
        }
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
        let mut params = CertificateParams::new(names.clone()).map_err(cert_err)?;
        params.distinguished_name = dn(&names[0]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, LEAF_VALID_DAYS);
        let leaf = params.signed_by(&leaf_key, &issuer).map_err(cert_err)?;
        let ca_pem = fs::read_to_string(self.ca_cert()).map_err(io_err(&self.ca_cert(), "cannot read"))?;
        write_atomic(&self.key(), leaf_key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&self.cert(), format!("{}{ca_pem}", leaf.pem()).as_bytes(), 0o644)?;
        write_atomic(&self.cert_names(), format!("{wanted}\n").as_bytes(), 0o644)?;
        Ok(true)
    }

    fn ensure_ca(&self) -> Result<(CertificateParams, KeyPair), StateError> {
        let params = ca_params();
        let key_path = self.ca_key();
        if key_path.exists() && self.ca_cert().exists() {
            let pem = fs::read_to_string(&key_path).map_err(io_err(&key_path, "cannot read"))?;
            let key =
                KeyPair::from_pem(&pem).map_err(|e| StateError(format!("bad CA key {}: {e}", key_path.display())))?;
            return Ok((params, key));
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(cert_err)?;
        let cert = params.self_signed(&key).map_err(cert_err)?;
        write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&self.ca_cert(), cert.pem().as_bytes(), 0o644)?;
        // A new CA invalidates any old leaf.
        let _ = fs::remove_file(self.cert_names());
        Ok((params, key))
    }
}

/// The CA's parameters. Deterministic apart from dates, so the issuer name and key identifier of leaves
/// issued after a restart match the stored CA certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn("rstream engine local CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, CA_VALID_YEARS * 365);
    params
}

fn dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "rstream self-hosted engine");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let today = (unix_now() / 86_400) as i64;
    let ymd = |d: i64| {
        let (y, m, d) = civil_from_days(d);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    params.not_before = ymd(today - 1);
    params.not_after = ymd(today + days);
}

/// Longest `--host` name: `*.t.<host>` must stay within embedded-tls's 64-byte name buffer.
pub const MAX_HOST_LEN: usize = 60;
/// DNS names embedded-tls reads from a certificate (the rest are ignored by devices).
pub const DEVICE_VISIBLE_DNS_NAMES: usize = 3;

/// Subject alternative names of the leaf. embedded-tls (the device client) reads only the first
/// [`DEVICE_VISIBLE_DNS_NAMES`] DNS names, so the names devices dial come first — each `--host`, then
/// `localhost` — followed by the IP addresses and the `*.t.<host>` wildcards that only browsers need.
pub fn leaf_names(hosts: &[String]) -> Result<Vec<String>, StateError> {
    let mut bare: Vec<String> = Vec::new();
    let mut ips: Vec<String> = vec!["127.0.0.1".into(), "::1".into()];
    for host in hosts {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.len() > MAX_HOST_LEN || host.is_empty() {
            return Err(StateError(format!("--host {host:?}: use 1-{MAX_HOST_LEN} characters")));
        }
        let list = if host.parse::<std::net::IpAddr>().is_ok() { &mut ips } else { &mut bare };
        if !list.contains(&host) {
            list.push(host);
        }
    }
    if !bare.iter().any(|h| h == "localhost") {
        bare.push("localhost".into());
    }
    let wildcards: Vec<String> = bare.iter().map(|h| format!("*.t.{h}")).collect();
    Ok(bare.into_iter().chain(ips).chain(wildcards).collect())
}

/// Reads an HS256 secret: the file's text without trailing whitespace, at least [`MIN_SECRET_LEN`] bytes.
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, StateError> {
    let mut bytes = fs::read(path).map_err(io_err(path, "cannot read secret"))?;
    while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
        bytes.pop();
    }
    if bytes.len() < MIN_SECRET_LEN {
        return Err(StateError(format!(
            "secret {} is too short: {} bytes (min {MIN_SECRET_LEN})",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically with `mode` ([`crate::atomic_file::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StateError> {
    crate::atomic_file::write_atomic(path, bytes, mode).map_err(io_err(path, "cannot write"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_state(tag: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("rstream-state-{tag}-{}", ids::random_hex::<6>()));
        let state = StateDir { dir };
        state.create().unwrap();
        state
    }

    #[test]
    fn leaf_names_put_the_names_devices_dial_first() {
        let names = leaf_names(&["Relay.Example.com".into(), "10.0.0.1".into(), "localhost".into()]).unwrap();
        let want = [
            "relay.example.com",
            "localhost",
            "127.0.0.1",
            "::1",
            "10.0.0.1",
            "*.t.relay.example.com",
            "*.t.localhost",
        ];
        assert_eq!(names, want);
        assert_eq!(leaf_names(&[]).unwrap(), ["localhost", "127.0.0.1", "::1", "*.t.localhost"]);
        let long = format!("{}.example", "a".repeat(MAX_HOST_LEN));
        assert!(leaf_names(&[long]).unwrap_err().to_string().contains("--host"));
    }

    #[test]
    fn secret_and_ca_are_reused_and_leaf_reissued_only_for_new_hosts() {
        let state = temp_state("reuse");
        let secret = state.ensure_secret().unwrap();
        assert_eq!(secret.len(), 64);
        assert_eq!(state.ensure_secret().unwrap(), secret);
        let mode = fs::metadata(state.secret()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        assert!(state.ensure_certificates(&[]).unwrap());
        let ca = fs::read(state.ca_cert()).unwrap();
        assert!(!state.ensure_certificates(&[]).unwrap(), "same names: leaf reused");
        assert!(state.ensure_certificates(&["relay.example".into()]).unwrap(), "new host: leaf re-issued");
        assert_eq!(fs::read(state.ca_cert()).unwrap(), ca, "CA kept");
        let chain = fs::read_to_string(state.cert()).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "leaf + CA");
        let _ = fs::remove_dir_all(&state.dir);
    }

    #[test]
    fn the_operator_token_is_minted_once_and_replaced_when_refused() {
        let state = temp_state("operator");
        let auth = Authorizer::new(state.ensure_secret().unwrap());
        let token = state.ensure_operator_token(&auth).unwrap();
        assert_eq!(state.ensure_operator_token(&auth).unwrap(), token, "reused");
        assert_eq!(fs::metadata(state.operator_token()).unwrap().permissions().mode() & 0o777, 0o600);
        let claims = auth.authorize(Some(&token), None).unwrap();
        assert_eq!(claims.permissions.len(), ALL_PERMISSIONS.len());
        let other = Authorizer::new(b"another secret, another engine".to_vec());
        let fresh = state.ensure_operator_token(&other).unwrap();
        assert_ne!(fresh, token, "a token the secret no longer verifies is replaced");
        assert!(other.authorize(Some(&fresh), None).is_ok());
        let _ = fs::remove_dir_all(&state.dir);
    }

    #[test]
    fn short_secret_file_is_refused() {
        let state = temp_state("short");
        let path = state.dir.join("s");
        fs::write(&path, "tooshort\n").unwrap();
        assert!(read_secret_file(&path).unwrap_err().to_string().contains("too short"));
        let _ = fs::remove_dir_all(&state.dir);
    }
}
