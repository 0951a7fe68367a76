//! RFC 7512 PKCS#11 URIs: which module, token and private-key object a key reference names,
//! and where the PIN comes from.
//!
//! Parsing only: nothing here loads a module or reads a PIN. The URI is configuration and
//! may appear in logs and error messages, so [`Pkcs11Uri`]'s `Display` is the one way to
//! print it, and it never contains a PIN. A PIN written into the URI (`pin-value`) is
//! refused outright: the URI also travels on command lines, where every user of the machine
//! can read it.
//!
//! Unknown attributes are refused rather than ignored (RFC 7512 §3.3 lets a consumer do
//! either): for a signing key, a misspelt `objekt=` that silently widened the match to
//! "any private key on the token" would sign with the wrong key.

use std::fmt;
use std::path::PathBuf;

/// The scheme prefix that tells a PKCS#11 URI from a PEM file path.
pub const SCHEME: &str = "pkcs11:";

/// A parsed `pkcs11:` URI, restricted to what selecting one signing key needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label (CK_TOKEN_INFO.label, trailing blanks removed).
    pub token: Option<String>,
    /// `manufacturer` of the token.
    pub manufacturer: Option<String>,
    /// `model` of the token.
    pub model: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id`: the slot number the module gives.
    pub slot_id: Option<u64>,
    /// `object`: the key's CKA_LABEL.
    pub object: Option<String>,
    /// `id`: the key's CKA_ID (bytes, usually percent-encoded).
    pub id: Option<Vec<u8>>,
    /// `module-path`: the PKCS#11 shared library to load.
    pub module_path: Option<PathBuf>,
    /// Where the user PIN comes from.
    pub pin: Option<PinSource>,
}

/// Where the user PIN is read from (never the URI itself, never a command-line argument).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// `pin-source=file:/path` (or an absolute path): the file's first line.
    File(PathBuf),
    /// `x-pin-env=NAME`: the environment variable NAME (a vendor attribute of ours, RFC
    /// 7512 §2.3 reserves the `x-` prefix for such).
    Env(String),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("a PKCS#11 URI starts with \"pkcs11:\"")]
    NotPkcs11,
    #[error("PKCS#11 URI: {0:?} is not attribute=value")]
    NotAttribute(String),
    #[error("PKCS#11 URI: attribute {0:?} appears twice")]
    Duplicate(String),
    #[error("PKCS#11 URI: bad percent-encoding in {0:?} (use %XX with two hex digits)")]
    BadPercent(String),
    #[error("PKCS#11 URI: {0} must be UTF-8 text")]
    NotUtf8(&'static str),
    #[error("PKCS#11 URI: slot-id {0:?} is not a decimal number")]
    BadSlotId(String),
    #[error(
        "PKCS#11 URI: unknown attribute {0:?} (known: token, manufacturer, model, serial, slot-id, object, \
         id, type; module-path, pin-source, x-pin-env)"
    )]
    Unknown(String),
    #[error(
        "PKCS#11 URI: pin-value puts the PIN where command lines and logs show it; use \
         pin-source=file:/path or x-pin-env=VARIABLE"
    )]
    PinInUri,
    #[error("PKCS#11 URI: type={0} does not name a private key (use type=private)")]
    NotPrivate(String),
    #[error("PKCS#11 URI: pin-source {0:?} must be file:/absolute/path or an absolute path")]
    BadPinSource(String),
    #[error("PKCS#11 URI: give only one of pin-source and x-pin-env")]
    TwoPinSources,
    #[error("PKCS#11 URI: module-path {0:?} must be an absolute path to the PKCS#11 library")]
    BadModulePath(String),
    #[error("PKCS#11 URI: module-path is required (the library of your HSM, e.g. /usr/lib/softhsm/libsofthsm2.so)")]
    NoModule,
    #[error("PKCS#11 URI: name the key with object= or id=")]
    NoObject,
}

impl Pkcs11Uri {
    /// Whether a configured key reference is a PKCS#11 URI rather than a PEM path.
    pub fn is_uri(reference: &str) -> bool {
        reference.starts_with(SCHEME)
    }

    /// Parses and checks a URI that must select exactly one private signing key.
    pub fn parse(text: &str) -> Result<Pkcs11Uri, UriError> {
        let rest = text.strip_prefix(SCHEME).ok_or(UriError::NotPkcs11)?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen = Vec::new();
        for attribute in path.split(';').filter(|a| !a.is_empty()) {
            uri.path_attribute(attribute, &mut seen)?;
        }
        for attribute in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|a| !a.is_empty())
        {
            uri.query_attribute(attribute, &mut seen)?;
        }
        if uri.module_path.is_none() {
            return Err(UriError::NoModule);
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(UriError::NoObject);
        }
        Ok(uri)
    }

    fn path_attribute(&mut self, attribute: &str, seen: &mut Vec<String>) -> Result<(), UriError> {
        let (name, raw) = split_attribute(attribute, seen)?;
        let text = |what| percent_decode(raw).and_then(|bytes| utf8(bytes, what));
        match name {
            "token" => self.token = Some(text("token")?),
            "manufacturer" => self.manufacturer = Some(text("manufacturer")?),
            "model" => self.model = Some(text("model")?),
            "serial" => self.serial = Some(text("serial")?),
            "object" => self.object = Some(text("object")?),
            "id" => self.id = Some(percent_decode(raw)?),
            "slot-id" => {
                let value = text("slot-id")?;
                let parsed = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| value.parse::<u64>().ok())
                    .flatten();
                self.slot_id = Some(parsed.ok_or(UriError::BadSlotId(value))?);
            }
            "type" => {
                let value = text("type")?;
                if value != "private" {
                    return Err(UriError::NotPrivate(value));
                }
            }
            // Informational attributes of the library and slot: the module is chosen by
            // module-path and the slot by the token, so these add nothing but are valid.
            "library-manufacturer"
            | "library-description"
            | "library-version"
            | "slot-manufacturer"
            | "slot-description" => {
                text("library or slot attribute")?;
            }
            "pin-value" => return Err(UriError::PinInUri),
            other => return Err(UriError::Unknown(other.to_string())),
        }
        Ok(())
    }

    fn query_attribute(&mut self, attribute: &str, seen: &mut Vec<String>) -> Result<(), UriError> {
        let (name, raw) = split_attribute(attribute, seen)?;
        let text = |what| percent_decode(raw).and_then(|bytes| utf8(bytes, what));
        match name {
            "module-path" => {
                let value = text("module-path")?;
                if !value.starts_with('/') {
                    return Err(UriError::BadModulePath(value));
                }
                self.module_path = Some(PathBuf::from(value));
            }
            "pin-source" => {
                let value = text("pin-source")?;
                let path = value
                    .strip_prefix("file://")
                    .or_else(|| value.strip_prefix("file:"))
                    .unwrap_or(&value);
                if !path.starts_with('/') {
                    return Err(UriError::BadPinSource(value));
                }
                self.set_pin(PinSource::File(PathBuf::from(path)))?;
            }
            "x-pin-env" => {
                let value = text("x-pin-env")?;
                let valid =
                    !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err(UriError::NotAttribute(attribute.to_string()));
                }
                self.set_pin(PinSource::Env(value))?;
            }
            "pin-value" => return Err(UriError::PinInUri),
            other => return Err(UriError::Unknown(other.to_string())),
        }
        Ok(())
    }

    fn set_pin(&mut self, source: PinSource) -> Result<(), UriError> {
        if self.pin.replace(source).is_some() {
            return Err(UriError::TwoPinSources);
        }
        Ok(())
    }
}

/// `name=value`, refusing a second occurrence of `name` (RFC 7512 §2.3: an attribute
/// appears at most once in the path; the same rule is applied to the query).
fn split_attribute<'a>(attribute: &'a str, seen: &mut Vec<String>) -> Result<(&'a str, &'a str), UriError> {
    let (name, value) = attribute
        .split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| UriError::NotAttribute(redact_value(attribute)))?;
    if seen.iter().any(|s| s == name) {
        return Err(UriError::Duplicate(name.to_string()));
    }
    seen.push(name.to_string());
    Ok((name, value))
}

/// Malformed input can be a mistyped `pin-value`: errors echo only what precedes any `=`.
fn redact_value(attribute: &str) -> String {
    match attribute.split_once('=') {
        Some((name, _)) => format!("{name}=…"),
        None if attribute.chars().count() > 40 => {
            format!("{}…", attribute.chars().take(40).collect::<String>())
        }
        None => attribute.to_string(),
    }
}

fn percent_decode(raw: &str) -> Result<Vec<u8>, UriError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| UriError::BadPercent(raw.to_string()))?;
            let text = std::str::from_utf8(hex).map_err(|_| UriError::BadPercent(raw.to_string()))?;
            let value = u8::from_str_radix(text, 16).map_err(|_| UriError::BadPercent(raw.to_string()))?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(UriError::BadPercent(raw.to_string()));
            }
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn utf8(bytes: Vec<u8>, what: &'static str) -> Result<String, UriError> {
    String::from_utf8(bytes).map_err(|_| UriError::NotUtf8(what))
}

/// Percent-encodes everything outside RFC 3986 unreserved characters.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical form, for logs and errors: path attributes, module path and PIN *source*
/// (a file name or variable name, never the PIN).
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = Vec::new();
        let texts = [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("model", &self.model),
            ("serial", &self.serial),
            ("object", &self.object),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                path.push(format!("{name}={}", encode(value.as_bytes())));
            }
        }
        if let Some(id) = &self.id {
            path.push(format!("id={}", encode(id)));
        }
        if let Some(slot) = self.slot_id {
            path.push(format!("slot-id={slot}"));
        }
        path.push("type=private".into());
        write!(f, "{SCHEME}{}", path.join(";"))?;
        let mut query = Vec::new();
        if let Some(module) = &self.module_path {
            query.push(format!("module-path={}", module.display()));
        }
        match &self.pin {
            Some(PinSource::File(path)) => query.push(format!("pin-source=file:{}", path.display())),
            Some(PinSource::Env(name)) => query.push(format!("x-pin-env={name}")),
            None => {}
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = "pkcs11:token=ca-hsm;object=ocsp-signer-2026;type=private\
        ?module-path=/opt/cloudhsm/lib/libcloudhsm_pkcs11.so&pin-source=file:/etc/ocsp-edge/hsm.pin";

    #[test]
    fn the_issue_example_parses() {
        let uri = Pkcs11Uri::parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(uri.token.as_deref(), Some("ca-hsm"));
        assert_eq!(uri.object.as_deref(), Some("ocsp-signer-2026"));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"))
        );
        assert_eq!(uri.pin, Some(PinSource::File("/etc/ocsp-edge/hsm.pin".into())));
        assert_eq!(uri.id, None);
        assert_eq!(uri.to_string(), ISSUE_EXAMPLE);
    }

    #[test]
    fn percent_encoded_values_decode() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=My%20CA%3bHSM;id=%01%a2%FF;serial=00ab;slot-id=42;object=%C3%A9t%C3%A9\
             ?module-path=/usr/lib/p%2011.so&x-pin-env=HSM_PIN",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("My CA;HSM"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xa2, 0xff][..]));
        assert_eq!(uri.serial.as_deref(), Some("00ab"));
        assert_eq!(uri.slot_id, Some(42));
        assert_eq!(uri.object.as_deref(), Some("été"));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/p 11.so"))
        );
        assert_eq!(uri.pin, Some(PinSource::Env("HSM_PIN".into())));
        // The canonical form re-encodes and parses back to the same reference.
        assert_eq!(Pkcs11Uri::parse(&uri.to_string()).unwrap(), uri);
    }

    #[test]
    fn id_alone_selects_a_key_and_pin_source_may_be_a_plain_path() {
        let uri = Pkcs11Uri::parse("pkcs11:id=%10?module-path=/m.so&pin-source=/run/pin").unwrap();
        assert_eq!(uri.id, Some(vec![0x10]));
        assert_eq!(uri.pin, Some(PinSource::File("/run/pin".into())));
        let uri = Pkcs11Uri::parse("pkcs11:object=k?module-path=/m.so&pin-source=file:///run/pin").unwrap();
        assert_eq!(uri.pin, Some(PinSource::File("/run/pin".into())));
    }

    #[test]
    fn unknown_attributes_are_refused_by_name() {
        for (text, name) in [
            ("pkcs11:objekt=k?module-path=/m.so", "objekt"),
            (
                "pkcs11:object=k?module-path=/m.so&module-name=softhsm2",
                "module-name",
            ),
            ("pkcs11:object=k;x-vendor=1?module-path=/m.so", "x-vendor"),
        ] {
            let err = Pkcs11Uri::parse(text).unwrap_err();
            assert_eq!(err, UriError::Unknown(name.into()), "{text}");
            assert!(err.to_string().contains("known: token"), "{err}");
        }
    }

    #[test]
    fn malformed_input_gets_a_clear_error() {
        let cases: &[(&str, UriError)] = &[
            ("/etc/key.pem", UriError::NotPkcs11),
            ("PKCS11:object=k", UriError::NotPkcs11),
            (
                "pkcs11:object?module-path=/m.so",
                UriError::NotAttribute("object".into()),
            ),
            ("pkcs11:=k?module-path=/m.so", UriError::NotAttribute("=…".into())),
            (
                "pkcs11:object=a;object=b?module-path=/m.so",
                UriError::Duplicate("object".into()),
            ),
            (
                "pkcs11:id=%0?module-path=/m.so",
                UriError::BadPercent("%0".into()),
            ),
            (
                "pkcs11:id=%zz?module-path=/m.so",
                UriError::BadPercent("%zz".into()),
            ),
            (
                "pkcs11:id=%+1?module-path=/m.so",
                UriError::BadPercent("%+1".into()),
            ),
            ("pkcs11:object=%ff?module-path=/m.so", UriError::NotUtf8("object")),
            (
                "pkcs11:object=k;slot-id=-1?module-path=/m.so",
                UriError::BadSlotId("-1".into()),
            ),
            (
                "pkcs11:object=k;slot-id=99999999999999999999?module-path=/m.so",
                UriError::BadSlotId("99999999999999999999".into()),
            ),
            (
                "pkcs11:object=k;type=cert?module-path=/m.so",
                UriError::NotPrivate("cert".into()),
            ),
            (
                "pkcs11:object=k?module-path=lib.so",
                UriError::BadModulePath("lib.so".into()),
            ),
            ("pkcs11:object=k?pin-source=/p", UriError::NoModule),
            ("pkcs11:token=t?module-path=/m.so", UriError::NoObject),
            (
                "pkcs11:object=k?module-path=/m.so&pin-source=pin.txt",
                UriError::BadPinSource("pin.txt".into()),
            ),
            (
                "pkcs11:object=k?module-path=/m.so&pin-source=/p&x-pin-env=P",
                UriError::TwoPinSources,
            ),
            (
                "pkcs11:object=k?module-path=/m.so&x-pin-env=A;B",
                UriError::NotAttribute("x-pin-env=A;B".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&Pkcs11Uri::parse(text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn a_pin_in_the_uri_is_refused_without_echoing_it() {
        for text in [
            "pkcs11:object=k;pin-value=s3cret-PIN?module-path=/m.so",
            "pkcs11:object=k?module-path=/m.so&pin-value=s3cret-PIN",
        ] {
            let err = Pkcs11Uri::parse(text).unwrap_err();
            assert_eq!(err, UriError::PinInUri);
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn empty_attributes_between_separators_are_ignored() {
        let uri = Pkcs11Uri::parse("pkcs11:;object=k;;?&module-path=/m.so&").unwrap();
        assert_eq!(uri.object.as_deref(), Some("k"));
    }

    #[test]
    fn display_never_shows_more_than_the_source_of_the_pin() {
        let uri = Pkcs11Uri::parse("pkcs11:object=k?module-path=/m.so&x-pin-env=HSM_PIN").unwrap();
        assert_eq!(
            uri.to_string(),
            "pkcs11:object=k;type=private?module-path=/m.so&x-pin-env=HSM_PIN"
        );
    }
}
