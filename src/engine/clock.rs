//! Wall-clock readings in the units the engine stores: Unix seconds (JWT `iat`/`exp`) and protobuf
//! `Timestamp` parts (`creation_date`). Calendar formatting lives in [`crate::http::date`].

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now as (seconds, nanoseconds) since the Unix epoch.
pub fn unix_now_precise() -> (i64, i32) {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i32)
}

/// A protobuf timestamp as a `SystemTime` (negative or malformed values clamp to the epoch).
pub fn to_system_time(seconds: i64, nanos: i32) -> SystemTime {
    let secs = u64::try_from(seconds).unwrap_or(0);
    let nanos = u32::try_from(nanos).unwrap_or(0).min(999_999_999);
    UNIX_EPOCH + std::time::Duration::new(secs, nanos)
}
