//! Durations and sizes as people write them in configuration files.
//!
//! Owns the one grammar every configuration (the responder's, the publisher's, the cache
//! and replication settings) accepts, so that a value valid in one file is valid in every
//! other: durations such as `500ms`, `2s`, `1h30m`, `7d` (a bare number is seconds), sizes
//! such as `64KiB`, `1MB`, `16384` (a bare number is bytes). Pure: text in, a value or a
//! [`UnitError`] naming the text out; the [`serde`] helpers let a configuration struct
//! name the key as well. Must never round: a value that does not fit is refused.

use std::time::Duration;

/// A duration or size that does not parse or does not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The text (held as given) is not in [`parse_duration`]'s grammar: unknown unit,
    /// units out of order or repeated, a fraction, a sign, inner spaces.
    #[error("{0:?} is not a duration such as 500ms, 2s, 1h30m or 7d")]
    Duration(String),
    /// The text (held as given) is not in [`parse_size`]'s grammar; units are
    /// case-sensitive (`1mb` is refused, not guessed).
    #[error("{0:?} is not a size such as 16384, 64KiB or 1MB")]
    Size(String),
    /// Well-formed, but over `u64` milliseconds or bytes: refused rather than wrapped.
    #[error("{0:?} is too large")]
    Overflow(String),
}

/// Duration units, largest first: the components of a duration must appear in this order,
/// each at most once (`1h30m`, not `30m1h` or `1h1h`).
const DURATION_UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration: one or more `<digits><unit>` parts, units `d`, `h`, `m`, `s`, `ms`
/// from largest to smallest (`1h30m`, `500ms`, `7d`), or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let refused = || UnitError::Duration(text.to_string());
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = trimmed
            .parse()
            .map_err(|_| UnitError::Overflow(text.to_string()))?;
        return Ok(Duration::from_secs(seconds));
    }
    let mut rest = trimmed;
    let mut millis: u64 = 0;
    // Index into DURATION_UNITS of the next unit allowed: enforces order and uniqueness.
    let mut next_unit = 0;
    if rest.is_empty() {
        return Err(refused());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(refused());
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(unit_len);
        let position = DURATION_UNITS[next_unit..]
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(refused)?;
        let factor = DURATION_UNITS[next_unit + position].1;
        next_unit += position + 1;
        let overflow = || UnitError::Overflow(text.to_string());
        let number: u64 = number.parse().map_err(|_| overflow())?;
        let part = number.checked_mul(factor).ok_or_else(overflow)?;
        millis = millis.checked_add(part).ok_or_else(overflow)?;
        rest = after;
    }
    Ok(Duration::from_millis(millis))
}

/// Size units: decimal (SI) and binary (IEC) multiples of a byte.
const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parses a size in bytes: a number with an optional unit (`B`, `kB`/`KB`, `MB`, `GB`,
/// `KiB`, `MiB`, `GiB`, `TiB`), e.g. `16384`, `64KiB`, `1MB`.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(UnitError::Size(text.to_string()));
    }
    let (number, unit) = trimmed.split_at(digits);
    let factor = match unit {
        "" => 1,
        unit => {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .ok_or_else(|| UnitError::Size(text.to_string()))?
                .1
        }
    };
    let overflow = || UnitError::Overflow(text.to_string());
    let number: u64 = number.parse().map_err(|_| overflow())?;
    number.checked_mul(factor).ok_or_else(overflow)
}

/// `deserialize_with` helpers: a duration is a string in [`parse_duration`]'s grammar; a
/// size is an integer number of bytes or a string in [`parse_size`]'s.
pub mod serde {
    use super::{parse_duration, parse_size};
    use serde::de::{Deserializer, Error, Visitor};
    use std::fmt;
    use std::time::Duration;

    /// A duration such as `"500ms"` or `"1h30m"`.
    pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        parse_duration(&text).map_err(D::Error::custom)
    }

    /// A size in bytes: `16384` or `"64KiB"`.
    pub fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }

    /// [`size`] for fields held as `usize`.
    pub fn size_usize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        let bytes = size(deserializer)?;
        usize::try_from(bytes).map_err(|_| D::Error::custom(format!("{bytes} bytes is too large")))
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a size in bytes such as 16384, \"64KiB\" or \"1MB\"")
        }

        fn visit_u64<E: Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_i64<E: Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value).map_err(|_| E::custom(format!("{value} is not a size")))
        }

        fn visit_str<E: Error>(self, text: &str) -> Result<u64, E> {
            parse_size(text).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_every_documented_form() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2s"), Ok(ms(2_000)));
        assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
        assert_eq!(parse_duration("96h"), Ok(ms(96 * 3_600_000)));
        assert_eq!(parse_duration("7d"), Ok(ms(7 * 86_400_000)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1d2h3m4s5ms"), Ok(ms(93_784_005)));
        assert_eq!(parse_duration("45"), Ok(ms(45_000)), "a bare number is seconds");
        assert_eq!(parse_duration(" 10s "), Ok(ms(10_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_refuse_anything_else_and_name_the_value() {
        for text in [
            "", "ms", "4x", "1.5h", "-1s", "30m1h", "1h1h", "1s500", "1 h", "h1", "1hm",
        ] {
            let error = parse_duration(text).unwrap_err();
            assert_eq!(error, UnitError::Duration(text.to_string()), "{text:?}");
            assert!(error.to_string().contains(&format!("{text:?}")), "{error}");
        }
    }

    #[test]
    fn durations_that_do_not_fit_are_refused_not_wrapped() {
        let huge = "99999999999999999999s";
        assert_eq!(parse_duration(huge), Err(UnitError::Overflow(huge.into())));
        let wraps = format!("{}d", u64::MAX / 86_400_000 + 1);
        assert_eq!(parse_duration(&wraps), Err(UnitError::Overflow(wraps.clone())));
        let sum = format!("{}ms1d", u64::MAX);
        assert!(parse_duration(&sum).is_err());
    }

    #[test]
    fn sizes_accept_decimal_and_binary_units() {
        assert_eq!(parse_size("16384"), Ok(16_384));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("64kB"), Ok(64_000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("10B"), Ok(10));
    }

    #[test]
    fn sizes_refuse_anything_else_and_name_the_value() {
        for text in ["", "KiB", "1.5MB", "-1", "1 MB", "1mb", "1kib", "1Ki", "1MBB"] {
            let error = parse_size(text).unwrap_err();
            assert_eq!(error, UnitError::Size(text.to_string()), "{text:?}");
            assert!(error.to_string().contains(&format!("{text:?}")), "{error}");
        }
        let huge = "17179869184GiB";
        assert_eq!(parse_size(huge), Err(UnitError::Overflow(huge.into())));
    }

    #[derive(::serde::Deserialize, Debug)]
    struct Sample {
        #[serde(deserialize_with = "serde::duration")]
        wait: Duration,
        #[serde(deserialize_with = "serde::size")]
        limit: u64,
    }

    #[test]
    fn serde_helpers_take_strings_and_integers_and_name_the_key() {
        let sample: Sample = toml::from_str("wait = \"1h30m\"\nlimit = \"64KiB\"").unwrap();
        assert_eq!((sample.wait, sample.limit), (Duration::from_secs(5_400), 65_536));
        let sample: Sample = toml::from_str("wait = \"500ms\"\nlimit = 4096").unwrap();
        assert_eq!((sample.wait, sample.limit), (Duration::from_millis(500), 4_096));

        let error = toml::from_str::<Sample>("wait = \"5 minutes\"\nlimit = 1").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("wait") && message.contains("\"5 minutes\""),
            "{message}"
        );
        let error = toml::from_str::<Sample>("wait = \"1s\"\nlimit = \"lots\"").unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("limit") && message.contains("\"lots\""),
            "{message}"
        );
    }
}
