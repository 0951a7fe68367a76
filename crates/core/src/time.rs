//! Whole-second UTC instants.
//!
//! Owns the one time type the core uses. OCSP and CRL times must be whole seconds
//! (RFC 5280 §4.1.2.5.2 forbids fractions; Python `cryptography` rejects them), so the
//! type cannot hold a fraction at all. The core never reads the clock: callers pass `now`.

use std::fmt;

/// Seconds since the Unix epoch, UTC. Never carries a fraction of a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The current time, truncated to the second. The only clock read in the crate's core
    /// paths; binaries call it and pass the value down.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixTime(since.as_secs() as i64)
    }

    /// Seconds since the Unix epoch.
    pub fn seconds(self) -> i64 {
        self.0
    }

    /// `seconds` later (earlier when negative), saturating at the ends of `i64`.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        UnixTime(self.0.saturating_add(seconds))
    }

    /// The whole second of a chrono time (sub-second digits are dropped).
    pub fn from_chrono<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>) -> Self {
        UnixTime(t.timestamp())
    }

    /// RFC 3339, e.g. `2026-11-26T05:40:31Z`.
    pub fn to_rfc3339(self) -> String {
        chrono::DateTime::from_timestamp(self.0, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    /// Parses RFC 3339 with any offset; `None` when it is not RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| UnixTime(t.timestamp()))
    }

    /// IMF-fixdate for HTTP headers (`Last-Modified`, `Expires`), clamped to the years
    /// an IMF-fixdate can write (1970 to 9999; httpdate panics past them).
    pub fn to_http_date(self) -> String {
        const LAST_HTTP_DATE: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
        let secs = u64::try_from(self.0).unwrap_or(0).min(LAST_HTTP_DATE);
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    /// Parses an HTTP date (IMF-fixdate and the two obsolete forms); `None` when invalid.
    pub fn parse_http_date(text: &str) -> Option<Self> {
        let t = httpdate::parse_http_date(text).ok()?;
        let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        Some(UnixTime(i64::try_from(secs).ok()?))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Parses an ASN.1 time: UTCTime `YYMMDDHHMMSSZ` (years 50–99 are 19xx, RFC 5280
/// §4.1.2.5.1) when `utc` is true, GeneralizedTime `YYYYMMDDHHMMSSZ` otherwise. Whole
/// seconds and `Z` only (the DER forms); no leap second.
pub fn parse_asn1_time(text: &str, utc: bool) -> Option<UnixTime> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two = |at: usize| digits.get(at..at + 2)?.parse::<u32>().ok();
    let (year, rest) = match (utc, digits.len()) {
        (true, 12) => (utc_time_year(two(0)?), 2),
        (false, 14) => (digits.get(..4)?.parse::<i32>().ok()?, 4),
        _ => return None,
    };
    let date = chrono::NaiveDate::from_ymd_opt(year, two(rest)?, two(rest + 2)?)?;
    let time = date.and_hms_opt(two(rest + 4)?, two(rest + 6)?, two(rest + 8)?)?;
    Some(UnixTime(time.and_utc().timestamp()))
}

/// Either ASN.1 form, told apart by length (an OpenSSL `index.txt` holds both).
pub fn parse_asn1_time_either(text: &str) -> Option<UnixTime> {
    parse_asn1_time(text, text.len() == "YYMMDDHHMMSSZ".len())
}

/// RFC 5280 §4.1.2.5.1: a UTCTime year YY below 50 means 20YY, otherwise 19YY.
fn utc_time_year(yy: u32) -> i32 {
    let yy = yy as i32;
    if yy < 50 {
        2000 + yy
    } else {
        1900 + yy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_times_parse_with_the_rfc5280_pivot() {
        assert_eq!(
            parse_asn1_time("491231235959Z", true),
            Some(UnixTime(2_524_607_999))
        );
        assert_eq!(
            parse_asn1_time("500101000000Z", true),
            Some(UnixTime(-631_152_000))
        );
        assert_eq!(
            parse_asn1_time("20500101000000Z", false),
            Some(UnixTime(2_524_608_000))
        );
        assert_eq!(parse_asn1_time("2050010100000Z", false), None);
        assert_eq!(parse_asn1_time("491231235959", true), None);
        assert_eq!(parse_asn1_time("4912312359a9Z", true), None);
        assert_eq!(parse_asn1_time("491231235960Z", true), None, "no leap second");
        assert_eq!(parse_asn1_time("491331000000Z", true), None, "no 13th month");
        assert_eq!(
            parse_asn1_time_either("491231235959Z"),
            Some(UnixTime(2_524_607_999))
        );
        assert_eq!(
            parse_asn1_time_either("20500101000000Z"),
            Some(UnixTime(2_524_608_000))
        );
        assert_eq!(parse_asn1_time_either("0500101000000Z"), None);
    }

    #[test]
    fn http_dates_round_trip() {
        let t = UnixTime(1_764_135_631);
        assert_eq!(UnixTime::parse_http_date(&t.to_http_date()), Some(t));
    }

    #[test]
    fn http_dates_clamp_instead_of_panicking() {
        assert_eq!(UnixTime(i64::MAX).to_http_date(), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(
            UnixTime(253_402_300_800).to_http_date(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
        assert_eq!(UnixTime(i64::MIN).to_http_date(), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
