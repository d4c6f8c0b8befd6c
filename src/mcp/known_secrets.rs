//! What a self-hosted engine's state directory holds that no tool result may show: the HS256 secret that signs
//! every token and the PEM private keys (as their base64 body lines, the whole body and the DER bytes).
//!
//! The MCP server often runs as the engine's user on the engine's machine, so `cat` through a local WebTTY server
//! or an fs read of the state directory would otherwise hand the agent the power to mint any token. Files that
//! are missing, unreadable or longer than [`MCP_SECRET_FILE_MAX`] are skipped.

use std::io::Read;
use std::path::Path;

use crate::encoding::Base64;
use crate::limits::MCP_SECRET_FILE_MAX;
use crate::state_layout::{JWT_SECRET, PRIVATE_KEYS};

/// The secret material in the engine state directory `dir` (nothing when it is not one).
pub fn engine_state_secrets(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(text) = read_small(&dir.join(JWT_SECRET)) {
        // The HMAC key is the file's text without trailing whitespace (see `engine::state::read_secret_file`).
        out.push(text.trim_end().as_bytes().to_vec());
    }
    for name in PRIVATE_KEYS {
        if let Some(pem) = read_small(&dir.join(name)) {
            out.extend(pem_key_secrets(&pem));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Each base64 body line of the PEM blocks in `pem`, the joined body, and the DER bytes it encodes.
fn pem_key_secrets(pem: &str) -> Vec<Vec<u8>> {
    let lines: Vec<&str> = pem.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect();
    let body = lines.concat();
    let mut out: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
    if let Ok(der) = Base64::Standard.decode(&body) {
        out.push(der);
    }
    out.push(body.into_bytes());
    out
}

fn read_small(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(MCP_SECRET_FILE_MAX + 1).read_to_string(&mut text).ok()?;
    (text.len() as u64 <= MCP_SECRET_FILE_MAX).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hs256_secret_and_private_key_material_are_found() {
        let dir = std::env::temp_dir().join(format!("rstream-known-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(JWT_SECRET), "00112233445566778899aabbccddeeff\n").unwrap();
        let der: Vec<u8> = (0..70u8).collect();
        let body = Base64::Standard.encode(&der);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n", &body[..64], &body[64..]);
        std::fs::write(dir.join("key.pem"), pem).unwrap();
        std::fs::write(dir.join("ca-key.pem"), "x".repeat(MCP_SECRET_FILE_MAX as usize + 1)).unwrap();
        let found = engine_state_secrets(&dir);
        assert!(found.contains(&b"00112233445566778899aabbccddeeff".to_vec()));
        assert!(found.contains(&body.as_bytes()[..64].to_vec()) && found.contains(&der), "{found:?}");
        assert!(!found.iter().any(|s| s.starts_with(b"xxx")), "oversized files are skipped");
        assert!(engine_state_secrets(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
