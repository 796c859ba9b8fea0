//! Wall-clock time: converting the CMOS real-time clock's calendar reading to Unix seconds,
//! for `shared_info.wc_sec`/`wc_nsec` (the wall-clock time at system time 0).

/// A calendar reading of the real-time clock (already converted from BCD if needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcTime {
    /// Full year, e.g. 2026.
    pub year: u32,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    /// 0-59.
    pub minute: u32,
    /// 0-59.
    pub second: u32,
}

/// Decodes a BCD byte.
pub fn from_bcd(v: u8) -> u32 {
    (v >> 4) as u32 * 10 + (v & 0xf) as u32
}

/// Seconds since 1970-01-01 00:00:00 UTC, or `None` for an impossible date.
pub fn unix_seconds(t: &RtcTime) -> Option<u64> {
    if !(1..=12).contains(&t.month)
        || !(1..=31).contains(&t.day)
        || t.hour > 23
        || t.minute > 59
        || t.second > 60
        || t.year < 1970
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), exact for the proleptic Gregorian calendar.
    let y = if t.month <= 2 { t.year - 1 } else { t.year } as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = t.month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + t.day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as u64 * 86_400 + (t.hour * 3600 + t.minute * 60 + t.second) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let t = |year, month, day, hour, minute, second| RtcTime { year, month, day, hour, minute, second };
        assert_eq!(unix_seconds(&t(1970, 1, 1, 0, 0, 0)), Some(0));
        assert_eq!(unix_seconds(&t(2000, 3, 1, 0, 0, 0)), Some(951_868_800));
        assert_eq!(unix_seconds(&t(2026, 11, 24, 1, 40, 55)), Some(1_795_484_455));
        assert_eq!(unix_seconds(&t(2024, 2, 29, 12, 0, 0)), Some(1_709_208_000));
        assert_eq!(unix_seconds(&t(2026, 13, 1, 0, 0, 0)), None);
        assert_eq!(from_bcd(0x59), 59);
    }
}
