//! Reading a token's user PIN from where the key reference says: a file (`pin-source`) or
//! an environment variable (`x-pin-env`). Never from a command-line argument.
//!
//! The PIN is held in a [`Pin`], which zeroes its memory when dropped and has no `Display`
//! and a `Debug` that prints nothing of it. Errors name the source (file or variable), never
//! its content.

use super::uri::PinSource;
use cryptoki::types::AuthPin;
use std::fmt;

/// A user PIN, printable only as `Pin(…)`.
pub struct Pin(AuthPin);

impl Pin {
    pub fn secret(&self) -> &AuthPin {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(…)")
    }
}

/// What was wrong with a PIN source (the caller adds the key's URI).
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("no PIN source: add pin-source=file:/path or x-pin-env=VARIABLE to the URI")]
    Missing,
    #[error("cannot read: {0}")]
    Unreadable(std::io::ErrorKind),
    #[error("the environment variable is not set")]
    Unset,
    #[error("is empty")]
    Empty,
    #[error("is not UTF-8 text")]
    NotText,
}

/// The source's name as it may be shown: a file path or `$VARIABLE`.
pub fn describe(source: Option<&PinSource>) -> String {
    match source {
        Some(PinSource::File(path)) => path.display().to_string(),
        Some(PinSource::Env(name)) => format!("${name}"),
        None => "none".into(),
    }
}

/// Reads the PIN. A file holds the PIN on its first line; one trailing line break is not
/// part of it (editors add one).
pub fn read(source: Option<&PinSource>) -> Result<Pin, PinError> {
    let text = match source {
        None => return Err(PinError::Missing),
        Some(PinSource::File(path)) => {
            let bytes = std::fs::read(path).map_err(|e| PinError::Unreadable(e.kind()))?;
            String::from_utf8(bytes).map_err(|_| PinError::NotText)?
        }
        Some(PinSource::Env(name)) => match std::env::var(name) {
            Ok(value) => value,
            Err(std::env::VarError::NotPresent) => return Err(PinError::Unset),
            Err(std::env::VarError::NotUnicode(_)) => return Err(PinError::NotText),
        },
    };
    let pin = text.strip_suffix('\n').unwrap_or(&text);
    let pin = pin.strip_suffix('\r').unwrap_or(pin);
    if pin.is_empty() {
        return Err(PinError::Empty);
    }
    Ok(Pin(AuthPin::from(pin.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_pin_loses_one_trailing_line_break_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        for (content, expected) in [
            ("1234\n", "1234"),
            ("1234\r\n", "1234"),
            ("12 34", "12 34"),
            ("x\n\n", "x\n"),
        ] {
            std::fs::write(&path, content).unwrap();
            let pin = read(Some(&PinSource::File(path.clone()))).unwrap();
            assert_eq!(pin.secret().expose_secret(), expected, "{content:?}");
            assert_eq!(format!("{pin:?}"), "Pin(…)");
        }
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read(Some(&PinSource::File(path.clone()))),
            Err(PinError::Empty)
        ));
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read(Some(&PinSource::File(path))),
            Err(PinError::NotText)
        ));
    }

    #[test]
    fn missing_sources_are_errors_that_do_not_guess() {
        assert!(matches!(read(None), Err(PinError::Missing)));
        let missing = PinSource::File("/nonexistent/ocsp-edge/pin".into());
        assert!(matches!(
            read(Some(&missing)),
            Err(PinError::Unreadable(std::io::ErrorKind::NotFound))
        ));
        let unset = PinSource::Env("OCSP_EDGE_TEST_PIN_NEVER_SET".into());
        assert!(matches!(read(Some(&unset)), Err(PinError::Unset)));
        assert_eq!(describe(Some(&unset)), "$OCSP_EDGE_TEST_PIN_NEVER_SET");
    }
}
