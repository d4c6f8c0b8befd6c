//! HTTP dates in IMF-fixdate form (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
//!
//! Used for the `Date` header, `Last-Modified` and `If-Modified-Since`. Civil-date conversion uses the
//! days-from-civil algorithm on the proleptic Gregorian calendar; only IMF-fixdate is parsed (the obsolete
//! RFC 850 and asctime forms are treated as absent, which the conditional-request rules allow).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Converts days since 1970-01-01 into (year, month 1..=12, day 1..=31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Converts a civil date (proleptic Gregorian) into days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats `time` as an IMF-fixdate; times before 1970 are clamped to the epoch.
pub fn format_http_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[month as usize - 1];
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{weekday}, {day:02} {month} {year:04} {h:02}:{m:02}:{s:02} GMT")
}

/// Formats `time` as RFC 3339 UTC with second precision (`2026-11-25T16:16:08Z`), as JSON APIs use it.
pub fn format_rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs() as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The current time as an IMF-fixdate (the `Date` header).
pub fn http_date_now() -> String {
    format_http_date(SystemTime::now())
}

fn number(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Parses an IMF-fixdate; anything else (including the obsolete formats) is `None`.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.trim().split(' ');
    let weekday = parts.next()?.strip_suffix(',')?;
    let day = number(parts.next()?, 2)?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year = number(parts.next()?, 4)?;
    let mut hms = parts.next()?.split(':');
    let (h, m, s) = (number(hms.next()?, 2)?, number(hms.next()?, 2)?, number(hms.next()?, 2)?);
    if parts.next()? != "GMT" || parts.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    if civil_from_days(days) != (i64::from(year), month, day) || DAYS[days.rem_euclid(7) as usize] != weekday {
        return None;
    }
    let secs = days as u64 * 86_400 + u64::from(h * 3600 + m * 60 + s.min(59));
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH + Duration::from_secs(784_111_777)), "1994-11-06T08:49:37Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_450_568)), "2026-11-23T16:16:08Z");
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format_http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(format_http_date(at(4_102_444_799)), "Thu, 31 Dec 2099 23:59:59 GMT");
        assert_eq!(format_http_date(at(1_709_164_800 + 86_399)), "Thu, 29 Feb 2024 23:59:59 GMT");
    }

    #[test]
    fn sub_second_precision_is_truncated() {
        assert_eq!(format_http_date(at(1) + Duration::from_millis(999)), "Thu, 01 Jan 1970 00:00:01 GMT");
    }

    #[test]
    fn parse_inverts_format_across_years() {
        for secs in (0..4_200_000_000u64).step_by(7_777_777) {
            let text = format_http_date(at(secs));
            assert_eq!(parse_http_date(&text), Some(at(secs)), "{text}");
        }
    }

    #[test]
    fn parse_refuses_other_forms_and_impossible_dates() {
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Fri, 31 Feb 2023 00:00:00 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }
}
