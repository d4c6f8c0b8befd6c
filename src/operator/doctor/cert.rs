//! Just enough DER to read a certificate's `notAfter`, so doctor can say when the context's CA expires.
//!
//! Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
//! issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }; times are UTCTime (YYMMDDHHMMSSZ) or
//! GeneralizedTime (YYYYMMDDHHMMSSZ). Anything unexpected yields `None`, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::transport::certificates_from_pem;

/// `notAfter` of the first certificate in a PEM file.
pub fn ca_not_after(pem: &[u8]) -> Option<SystemTime> {
    let der = certificates_from_pem(pem).ok()?.into_iter().next()?;
    not_after(&der)
}

/// `notAfter` of a DER certificate.
pub fn not_after(der: &[u8]) -> Option<SystemTime> {
    let (_, cert, _) = element(der)?;
    let (_, mut tbs, _) = element(cert)?;
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs)?.2; // skip [0] version
    }
    for _ in 0..3 {
        tbs = element(tbs)?.2; // serial, signature algorithm, issuer
    }
    let (_, validity, _) = element(tbs)?;
    let (_, _, rest) = element(validity)?; // notBefore
    let (tag, time, _) = element(rest)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// Splits one DER element: (tag, contents, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| acc << 8 | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn parse_time(tag: u8, s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let num = |i: usize| rest.get(i..i + 2)?.parse::<u64>().ok();
    let (month, day, h, m, sec) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = crate::http::date::days_from_civil(year, month as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal certificate-shaped DER: tbs { [0]{INTEGER 2}, INTEGER, SEQ, SEQ, SEQ { UTCTime, GeneralizedTime } }.
    fn fake_cert(not_after: &[u8]) -> Vec<u8> {
        let validity = [&[0x17, 13][..], b"250101000000Z", &[0x18, not_after.len() as u8], not_after].concat();
        let tbs =
            [&[0xa0, 3, 2, 1, 2, 2, 1, 7, 0x30, 0, 0x30, 0, 0x30][..], &[validity.len() as u8], &validity].concat();
        let tbs = [&[0x30, tbs.len() as u8][..], &tbs].concat();
        [&[0x30, tbs.len() as u8][..], &tbs].concat()
    }

    #[test]
    fn reads_not_after() {
        let t = not_after(&fake_cert(b"20361125161608Z")).unwrap();
        assert_eq!(crate::http::date::format_rfc3339(t), "2036-11-25T16:16:08Z");
    }

    #[test]
    fn garbage_is_none() {
        assert!(not_after(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_none());
        assert!(not_after(&fake_cert(b"2036112516Z")).is_none());
        assert!(not_after(&[]).is_none());
    }
}
