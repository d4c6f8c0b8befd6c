//! The engine's certificate chain, judged by rustls-webpki: path building from the leaf to one of the
//! context's CA certificates (CA:TRUE basicConstraints on every issuer, path length, issuer/subject chaining,
//! every signature), the leaf's extendedKeyUsage (serverAuth, when present), validity dates, and the server
//! name against the leaf's subjectAltName DNS names only (never the subject CN). Signatures are ECDSA P-256 /
//! SHA-256 through [`super::ecdsa_p256`]; nothing here parses DER by hand.
//!
//! webpki does not look at an issuer's keyUsage (its path builder requires basicConstraints CA:TRUE, and keeps
//! keyUsage for CRL checks only), and neither does rustls. So once webpki has built the path, each intermediate
//! that carries a keyUsage extension must list keyCertSign (RFC 5280 §4.2.1.3, as OpenSSL checks); RustCrypto's
//! `x509-cert` decodes it. A CA without the extension may issue (RFC 5280 allows any use then). Cost: 39 KiB of
//! the aarch64 device image (1,341,896 → 1,381,192 bytes, measured with `cross/size.sh --device`).
//!
//! A chain that verified is remembered ([`super::verified_chains`], bound to its exact bytes, anchor and server
//! name) so the agent's per-stream connections do not re-verify it every time.
//!
//! Dates need a wall clock. A system clock before [`CLOCK_SANITY_FLOOR_UNIX`] was never set (a device without
//! RTC before NTP ran): the chain is then refused with an error saying so, rather than judged without dates —
//! the agent retries with backoff and connects once the clock is set. A chain remembered while the clock was
//! good stays trusted for its short TTL (that judgement needs no wall clock).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, Error, KeyUsage};

use super::ecdsa_p256::ECDSA_P256_SHA256;
use super::verified_chains;
use crate::limits::TLS_MAX_CERT_CHAIN_LEN;

/// System times before 2025-01-01T00:00:00Z mean the clock was never set: no chain can be judged then.
pub(super) const CLOCK_SANITY_FLOOR_UNIX: u64 = 1_735_689_600;

/// Verifies `chain` (DER, leaf first) for the DNS name `host` against `anchors` (DER CA certificates) at the
/// current time; the error explains what is wrong, naming the offending value.
pub(super) fn verify_server_chain(anchors: &[Vec<u8>], host: &str, chain: &[&[u8]]) -> Result<(), String> {
    let total: usize = chain.iter().map(|c| c.len()).sum();
    if total > TLS_MAX_CERT_CHAIN_LEN {
        return Err(format!(
            "the server's certificate chain is {total} bytes (this client takes at most {TLS_MAX_CERT_CHAIN_LEN})"
        ));
    }
    if verified_chains::is_verified(anchors, host, chain) {
        return Ok(());
    }
    let anchor = verify_at(anchors, host, chain, wall_clock()?)?;
    verified_chains::remember(anchor, host, chain);
    Ok(())
}

/// [`verify_server_chain`] at `now`, without the memo; returns the anchor the chain leads to.
fn verify_at<'a>(anchors: &'a [Vec<u8>], host: &str, chain: &[&[u8]], now: UnixTime) -> Result<&'a [u8], String> {
    let (leaf, intermediates) = chain.split_first().ok_or("the server sent an empty certificate chain")?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors.iter().map(|a| CertificateDer::from(a.as_slice())).collect();
    let trust = anchor_ders
        .iter()
        .enumerate()
        .map(|(i, der)| {
            webpki::anchor_from_trusted_cert(der)
                .map_err(|e| format!("CA certificate #{} of the CA file is not a usable certificate ({e:?})", i + 1))
        })
        .collect::<Result<Vec<TrustAnchor<'_>>, String>>()?;
    let name = ServerName::try_from(host).map_err(|_| format!("the server name {host:?} is not a valid DNS name"))?;
    let leaf = CertificateDer::from(*leaf);
    let intermediates: Vec<CertificateDer<'_>> = intermediates.iter().map(|c| CertificateDer::from(*c)).collect();
    let ee = EndEntityCert::try_from(&leaf).map_err(|e| explain(e, host))?;
    let path = ee
        .verify_for_usage(&[ECDSA_P256_SHA256], &trust, &intermediates, now, KeyUsage::server_auth(), None, None)
        .map_err(|e| explain(e, host))?;
    ee.verify_is_valid_for_subject_name(&name).map_err(|e| explain(e, host))?;
    for (i, issuer) in path.intermediate_certificates().enumerate() {
        may_issue_certificates(&issuer.der(), i + 2)?;
    }
    let reached = path.anchor();
    let index = trust
        .iter()
        .position(|t| t.subject == reached.subject && t.subject_public_key_info == reached.subject_public_key_info)
        .unwrap_or(0);
    Ok(&anchors[index])
}

/// Refuses an issuing certificate (number `position` of the chain, the leaf being 1) whose keyUsage extension is
/// present but lacks keyCertSign. Only the extensions are read: naming the subject in the error would pull
/// X.509 name formatting into the device image (≈ 90 KiB measured).
fn may_issue_certificates(der: &[u8], position: usize) -> Result<(), String> {
    use x509_cert::der::oid::AssociatedOid as _;
    use x509_cert::der::Decode as _;
    use x509_cert::ext::pkix::KeyUsage as X509KeyUsage;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| format!("an issuing certificate of the chain is not valid DER ({e})"))?;
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    let Some(ext) = extensions.iter().find(|ext| ext.extn_id == X509KeyUsage::OID) else {
        return Ok(());
    };
    let usage = X509KeyUsage::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("an issuing certificate's keyUsage is not valid DER ({e})"))?;
    if usage.key_cert_sign() {
        return Ok(());
    }
    Err(format!(
        "certificate #{position} of the chain is a CA whose keyUsage lacks keyCertSign: it may not issue certificates"
    ))
}

/// The wall clock for validity dates, or the reason it cannot be used.
fn wall_clock() -> Result<UnixTime, String> {
    judging_time(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// `now` (since the Unix epoch) as the time to judge certificates at, unless the clock was obviously never set.
fn judging_time(now: Duration) -> Result<UnixTime, String> {
    if now.as_secs() < CLOCK_SANITY_FLOOR_UNIX {
        return Err(format!(
            "the system clock is not set (unix time {}, before 2025-01-01): certificate dates cannot be checked, so \
             the engine cannot be trusted yet; set the clock (NTP) — connections are retried",
            now.as_secs()
        ));
    }
    Ok(UnixTime::since_unix_epoch(now))
}

/// A webpki refusal in words (webpki's own `Display` is its `Debug`).
fn explain(e: Error, host: &str) -> String {
    match e {
        Error::UnknownIssuer => "certificate is not signed by the trusted CA".to_owned(),
        Error::CertNotValidForName(context) => {
            let names: Vec<&str> = context.presented.iter().map(|n| presented_name(n)).collect();
            format!("certificate names {names:?} (subjectAltName) do not include the server name {host:?}")
        }
        Error::CertExpired { time, not_after } => format!(
            "certificate expired: valid until unix {}, system time is unix {}",
            not_after.as_secs(),
            time.as_secs()
        ),
        Error::CertNotValidYet { time, not_before } => format!(
            "certificate is not valid yet: valid from unix {}, system time is unix {}",
            not_before.as_secs(),
            time.as_secs()
        ),
        Error::EndEntityUsedAsCa => "a certificate that is not a CA (no basicConstraints CA:TRUE) issued another \
                                     certificate of the chain: only CA certificates may issue"
            .to_owned(),
        Error::CaUsedAsEndEntity => {
            "the server presented a CA certificate as its own (basicConstraints CA:TRUE)".into()
        }
        Error::RequiredEkuNotFoundContext(context) => format!(
            "certificate is not for TLS servers: its extendedKeyUsage {:?} lacks serverAuth (1.3.6.1.5.5.7.3.1)",
            context.present.iter().map(|oid| dotted(oid)).collect::<Vec<_>>()
        ),
        // An issuer of the right name whose key did not make the signature: most often another engine's CA
        // (generated CAs share their name).
        Error::InvalidSignatureForPublicKey => {
            "certificate is not signed by the trusted CA (a signature in the chain does not verify with the key of \
             the certificate that issued it)"
                .to_owned()
        }
        Error::UnsupportedSignatureAlgorithmContext(_) | Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "the chain uses a signature algorithm this client does not verify (ECDSA P-256 with SHA-256 only)".into()
        }
        Error::PathLenConstraintViolated => "the chain is longer than a CA's pathLenConstraint allows".to_owned(),
        Error::BadDer | Error::BadDerTime | Error::TrailingData(_) => {
            format!("the server's certificate chain is not valid DER ({e:?})")
        }
        other => format!("certificate not accepted ({other:?})"),
    }
}

/// `DnsName("x")` (how webpki lists presented names) as `x`; other kinds as webpki writes them.
fn presented_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"").and_then(|n| n.strip_suffix("\")")).unwrap_or(name)
}

fn dotted(oid: &[usize]) -> String {
    oid.iter().map(usize::to_string).collect::<Vec<_>>().join(".")
}

#[cfg(all(test, feature = "engine"))]
mod tests {
    use super::*;

    /// A CA (CA:TRUE, keyCertSign) and a way to issue from it.
    fn ca() -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        params.distinguished_name.push(rcgen::DnType::CommonName, "unit CA");
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
    }

    fn leaf_of(params: rcgen::CertificateParams, issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> Vec<u8> {
        params.signed_by(&rcgen::KeyPair::generate().unwrap(), issuer).unwrap().der().to_vec()
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    #[test]
    fn a_leaf_signed_by_the_ca_verifies_and_names_come_from_the_san() {
        let ca = ca();
        let anchors = vec![ca.der().to_vec()];
        let leaf = leaf_of(rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap(), &ca);
        assert!(verify_at(&anchors, "localhost", &[&leaf], now()).is_ok());
        let err = verify_at(&anchors, "engine.example", &[&leaf], now()).unwrap_err();
        assert!(err.contains("[\"localhost\"]") && err.contains("\"engine.example\""), "{err}");
        let mut cn_only = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        cn_only.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        let err = verify_at(&anchors, "localhost", &[&leaf_of(cn_only, &ca)], now()).unwrap_err();
        assert!(err.contains("do not include the server name"), "{err}");
    }

    #[test]
    fn every_san_counts_and_wildcards_cover_one_label() {
        let ca = ca();
        let anchors = vec![ca.der().to_vec()];
        let names = ["a.example", "b.example", "c.example", "d.example", "*.t.localhost", "localhost"];
        let leaf = leaf_of(rcgen::CertificateParams::new(names.map(String::from).to_vec()).unwrap(), &ca);
        for host in ["localhost", "d.example", "web.t.localhost"] {
            assert!(verify_at(&anchors, host, &[&leaf], now()).is_ok(), "{host}");
        }
        for host in ["a.b.t.localhost", "t.localhost", "example"] {
            assert!(verify_at(&anchors, host, &[&leaf], now()).is_err(), "{host}");
        }
    }

    #[test]
    fn a_non_ca_certificate_cannot_issue() {
        let ca = ca();
        let anchors = vec![ca.der().to_vec()];
        for is_ca in [rcgen::IsCa::ExplicitNoCa, rcgen::IsCa::NoCa] {
            let mut params = rcgen::CertificateParams::new(vec!["device.example".into()]).unwrap();
            params.is_ca = is_ca;
            let key = rcgen::KeyPair::generate().unwrap();
            let not_a_ca = rcgen::CertifiedIssuer::signed_by(params, key, &ca).unwrap();
            let forged = leaf_of(rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap(), &not_a_ca);
            let err = verify_at(&anchors, "localhost", &[&forged, not_a_ca.der()], now()).unwrap_err();
            assert!(err.contains("not a CA"), "{err}");
        }
    }

    #[test]
    fn an_issuing_ca_needs_key_cert_sign_when_it_has_key_usage() {
        let ca = ca();
        let anchors = vec![ca.der().to_vec()];
        let intermediate = |key_usages: Vec<rcgen::KeyUsagePurpose>| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = key_usages;
            params.distinguished_name.push(rcgen::DnType::CommonName, "unit intermediate");
            rcgen::CertifiedIssuer::signed_by(params, rcgen::KeyPair::generate().unwrap(), &ca).unwrap()
        };
        let verify = |issuer: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>| {
            let leaf = leaf_of(rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap(), issuer);
            verify_at(&anchors, "localhost", &[&leaf, issuer.der()], now()).map(|_| ())
        };
        let err = verify(&intermediate(vec![rcgen::KeyUsagePurpose::DigitalSignature])).unwrap_err();
        assert!(err.contains("certificate #2 of the chain") && err.contains("lacks keyCertSign"), "{err}");
        assert!(verify(&intermediate(vec![rcgen::KeyUsagePurpose::KeyCertSign])).is_ok());
        assert!(verify(&intermediate(Vec::new())).is_ok(), "no keyUsage extension: any use");
    }

    #[test]
    fn dates_and_key_usage_are_checked() {
        let ca = ca();
        let anchors = vec![ca.der().to_vec()];
        let mut expired = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let err = verify_at(&anchors, "localhost", &[&leaf_of(expired, &ca)], now()).unwrap_err();
        assert!(err.contains("certificate expired: valid until unix 1609459200"), "{err}");
        let mut client_only = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        client_only.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let err = verify_at(&anchors, "localhost", &[&leaf_of(client_only, &ca)], now()).unwrap_err();
        assert!(err.contains("lacks serverAuth") && err.contains("1.3.6.1.5.5.7.3.2"), "{err}");
        let err = verify_at(&anchors, "localhost", &[ca.der()], now()).unwrap_err();
        assert!(err.contains("CA certificate as its own"), "{err}");
    }

    #[test]
    fn the_anchor_the_chain_reaches_is_the_one_remembered() {
        let (other, ca) = (self::ca(), self::ca());
        let anchors = vec![other.der().to_vec(), ca.der().to_vec()];
        let leaf = leaf_of(rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap(), &ca);
        assert_eq!(verify_at(&anchors, "localhost", &[&leaf], now()).unwrap(), ca.der().as_ref());
        let err = verify_at(&anchors[..1], "localhost", &[&leaf], now()).unwrap_err();
        assert!(err.contains("not signed by the trusted CA"), "{err}");
    }

    #[test]
    fn an_unset_clock_refuses_instead_of_skipping_dates() {
        let err = judging_time(Duration::from_secs(86_400)).unwrap_err();
        assert!(err.contains("system clock is not set (unix time 86400"), "{err}");
        let set = Duration::from_secs(CLOCK_SANITY_FLOOR_UNIX + 1);
        assert_eq!(judging_time(set).unwrap().as_secs(), CLOCK_SANITY_FLOOR_UNIX + 1);
    }

    #[test]
    fn a_remembered_chain_is_not_trusted_for_another_name_or_other_bytes() {
        let ca = ca();
        let anchors = vec![ca.der().to_vec()];
        let leaf = leaf_of(rcgen::CertificateParams::new(vec!["memo.example".into()]).unwrap(), &ca);
        verify_server_chain(&anchors, "memo.example", &[&leaf]).unwrap();
        assert!(verified_chains::is_verified(&anchors, "memo.example", &[&leaf]));
        let err = verify_server_chain(&anchors, "other.example", &[&leaf]).unwrap_err();
        assert!(err.contains("do not include the server name \"other.example\""), "{err}");
        let mut forged = leaf.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1; // the signature's last byte
        assert!(verify_server_chain(&anchors, "memo.example", &[&forged]).is_err());
        let other_ca = self::ca();
        let err = verify_server_chain(&[other_ca.der().to_vec()], "memo.example", &[&leaf]).unwrap_err();
        assert!(err.contains("not signed by the trusted CA"), "{err}");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let ca = ca();
        let err = verify_at(&[ca.der().to_vec()], "localhost", &[b"not a certificate"], now()).unwrap_err();
        assert!(err.contains("not valid DER"), "{err}");
        let err = verify_at(&[b"junk".to_vec()], "localhost", &[ca.der()], now()).unwrap_err();
        assert!(err.contains("CA certificate #1"), "{err}");
        let big = vec![0u8; TLS_MAX_CERT_CHAIN_LEN + 1];
        let err = verify_server_chain(&[ca.der().to_vec()], "localhost", &[&big]).unwrap_err();
        assert!(err.contains(&format!("{} bytes", TLS_MAX_CERT_CHAIN_LEN + 1)), "{err}");
    }
}
