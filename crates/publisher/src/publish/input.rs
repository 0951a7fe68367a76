//! Parsing the CA's revocation state from text into [`CertRecord`]s.
//!
//! Owns the two input formats the publisher accepts: OpenSSL's `index.txt` (as `openssl ca`
//! writes it) and JSON Lines. Never touches the filesystem: callers read the file and pass
//! its text plus the path, which is used only to make messages point at the right place.
//! Never signs. Parsing is strict: a CA database we misread would be published as signed
//! truth, so any line we do not fully understand stops the run with a precise message.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use ocsp_edge_core::model::{CertRecord, CertStatus, RevocationReason, Serial, MAX_SERIAL_LEN};
use ocsp_edge_core::snapshot::{serial_key, SerialKey};
use ocsp_edge_core::time::UnixTime;

/// What an input file yielded.
#[derive(Debug)]
pub struct ParsedInput {
    /// In file order.
    pub records: Vec<CertRecord>,
    /// Entries left out on purpose (OpenSSL `E` lines, JSON `"status":"expired"`): the CA
    /// marked them expired, so they are purged records (RFC 6960: `unauthorized`).
    pub skipped_expired: usize,
    /// Those entries, with the notAfter the input gives (`E` lines always do): the
    /// publisher's rails let a revoked certificate leave only once it has expired.
    pub expired: Vec<ExpiredEntry>,
}

/// A certificate the input marks expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredEntry {
    pub serial: Serial,
    pub not_after: Option<UnixTime>,
}

/// How strictly serials are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputRules {
    /// Admit serial 0 and serials longer than 20 octets (RFC 5280 §4.1.2.2 forbids both)
    /// for a legacy CA that issued them. Off by default.
    pub allow_legacy_serials: bool,
}

/// RFC 5280 §4.1.2.2: at most 20 octets (of DER INTEGER content, sign octet included).
pub const RFC5280_MAX_SERIAL_OCTETS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}:{line}: {problem}")]
    Line {
        path: PathBuf,
        line: usize,
        problem: LineProblem,
    },
    /// A database row; `row` counts from 1 in the query's order.
    #[error("{database}: row {row}{}: {problem}", row_details(.serial.as_deref(), .column.as_deref()))]
    Row {
        database: String,
        row: usize,
        serial: Option<String>,
        column: Option<String>,
        problem: Box<RowProblem>,
    },
}

/// What is wrong with one database row ([`InputError::Row`] adds the row, serial and column).
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    /// What the file formats also refuse (a bad or out-of-rule serial, an unknown reason).
    #[error(transparent)]
    Line(#[from] LineProblem),
    #[error("is NULL")]
    Null,
    /// The driver could not decode the value (e.g. an infinite timestamp).
    #[error("cannot be read: {0}")]
    Undecodable(String),
    #[error("serial {0:?} is not a decimal number of at most {MAX_SERIAL_LEN} octets")]
    BadDecimalSerial(String),
    #[error("serial {0} is longer than {MAX_SERIAL_LEN} octets")]
    LongSerial(String),
    #[error("serial {0} is negative")]
    NegativeSerial(i64),
    #[error("{0} is not a CRLReason code (RFC 5280 §5.3.1: 0-6, 8-10)")]
    ReasonCode(i64),
    #[error("is set on a row whose status {status:?} means good; only revoked rows may have it")]
    OnlyWhenRevoked { status: String },
    #[error("is NULL on a row whose status {status:?} means revoked")]
    NoRevokedAt { status: String },
    /// `lists`: the configured good, revoked and expired values.
    #[error(
        "value {value:?} is in none of status_values.good {:?}, .revoked {:?}, .expired {:?}",
        .lists[0], .lists[1], .lists[2]
    )]
    UnknownStatus {
        value: String,
        lists: Box<[Vec<String>; 3]>,
    },
    #[error("serial {serial} appears again (first in row {first})")]
    DuplicateSerial { serial: Serial, first: usize },
}

fn row_details(serial: Option<&str>, column: Option<&str>) -> String {
    let mut details = String::new();
    if let Some(serial) = serial {
        details.push_str(&format!(" (serial {serial})"));
    }
    if let Some(column) = column {
        details.push_str(&format!(", column {column}"));
    }
    details
}

/// What is wrong with one line of an input file ([`InputError::Line`] adds where).
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error("comment lines are not allowed in {0}")]
    Comment(&'static str),
    #[error("expected {INDEX_FIELDS} tab-separated fields, found {0}")]
    FieldCount(usize),
    #[error("unknown status {0:?} (expected V, R or E)")]
    UnknownStatus(String),
    #[error("status {status} must have an empty revocation field, found {found:?}")]
    RevocationNotAllowed { status: &'static str, found: String },
    #[error("status R needs a revocation date in the third field, found none")]
    NoRevocationDate,
    #[error("serial {0:?} is not hexadecimal or longer than {MAX_SERIAL_LEN} octets")]
    BadSerial(String),
    #[error(
        "serial 00 is zero; RFC 5280 §4.1.2.2 requires a positive serial number (for a legacy \
         CA that issued it, set allow_legacy_serials = true or pass --allow-legacy-serials)"
    )]
    ZeroSerial,
    #[error(
        "serial {serial} is {octets} octets long as a DER INTEGER; RFC 5280 §4.1.2.2 allows at most \
         {RFC5280_MAX_SERIAL_OCTETS} (for a legacy CA that issued it, set allow_legacy_serials = true or \
         pass --allow-legacy-serials)"
    )]
    LongSerial { serial: Serial, octets: usize },
    #[error("serial {serial} appears again (first on line {first})")]
    DuplicateSerial { serial: Serial, first: usize },
    #[error("unknown revocation reason {0:?}")]
    UnknownReason(String),
    #[error(
        "unexpected {argument:?} after revocation reason {reason:?} \
         (only keyTime, CAkeyTime and holdInstruction take an argument)"
    )]
    UnexpectedArgument { argument: String, reason: String },
    #[error("{tag} needs a {needs} after it")]
    MissingArgument { tag: String, needs: &'static str },
    #[error("{what} {text:?} is not a UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ)")]
    Asn1Time { what: &'static str, text: String },
    #[error("{}", describe_json_error(.0))]
    Json(serde_json::Error),
    #[error("status \"revoked\" needs \"revoked_at\"")]
    NoRevokedAt,
    #[error("\"{0}\" is only allowed with status \"revoked\"")]
    OnlyWhenRevoked(&'static str),
    #[error("{what} {text:?} is not an RFC 3339 time (e.g. 2026-02-01T00:00:00Z)")]
    Rfc3339 { what: &'static str, text: String },
}

/// Parses an OpenSSL CA database (`index.txt`), serials as RFC 5280 requires.
pub fn parse_openssl_index(path: &Path, text: &str) -> Result<ParsedInput, InputError> {
    parse_openssl_index_with(path, text, InputRules::default())
}

/// [`parse_openssl_index`] under `rules`.
pub fn parse_openssl_index_with(
    path: &Path,
    text: &str,
    rules: InputRules,
) -> Result<ParsedInput, InputError> {
    parse_lines(path, text, parse_index_line, rules)
}

/// Parses JSON Lines: one object per non-blank line with `serial` (hex), `status`
/// (`good`/`valid`/`revoked`/`expired`), and optionally `not_after`; revoked entries need
/// `revoked_at` and may add `reason` and `invalidity_date`. Times are RFC 3339.
pub fn parse_json_lines(path: &Path, text: &str) -> Result<ParsedInput, InputError> {
    parse_json_lines_with(path, text, InputRules::default())
}

/// [`parse_json_lines`] under `rules`.
pub fn parse_json_lines_with(path: &Path, text: &str, rules: InputRules) -> Result<ParsedInput, InputError> {
    parse_lines(path, text, parse_json_line, rules)
}

/// One input entry (a line or a database row), understood.
pub(crate) enum Entry {
    Current(CertRecord),
    /// Not published; kept so that duplicates are still caught and the rails know it expired.
    Expired(ExpiredEntry),
}

impl Entry {
    pub(crate) fn serial(&self) -> &Serial {
        match self {
            Entry::Current(record) => &record.serial,
            Entry::Expired(entry) => &entry.serial,
        }
    }
}

/// A serial that appears twice: its first position and the position it appears again at
/// (1-based lines or rows).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Duplicate {
    pub serial: Serial,
    pub first: usize,
    pub again: usize,
}

/// What every input kind shares once an entry is understood: the RFC 5280 serial rule,
/// the expired-entry bookkeeping and duplicate serials. Positions are 1-based lines or rows.
pub(crate) struct EntryCollector {
    parsed: ParsedInput,
    // (serial key, position) of every entry: duplicates are found by sorting these inline
    // keys once at the end, not by hashing a heap-allocated serial per entry (which at
    // millions of entries cost more than the parsing, and left the allocator millions of
    // small blocks to consolidate later).
    seen: Vec<(SerialKey, usize)>,
    rules: InputRules,
}

impl EntryCollector {
    pub(crate) fn new(rules: InputRules) -> EntryCollector {
        EntryCollector {
            parsed: ParsedInput {
                records: Vec::new(),
                skipped_expired: 0,
                expired: Vec::new(),
            },
            seen: Vec::new(),
            rules,
        }
    }

    /// Adds the entry at `position`, or says why its serial is not allowed.
    pub(crate) fn push(&mut self, position: usize, entry: Entry) -> Result<(), LineProblem> {
        if let Entry::Current(record) = &entry {
            if !self.rules.allow_legacy_serials {
                check_rfc5280_serial(&record.serial)?;
            }
        }
        self.seen
            .push((serial_key(entry.serial().as_der_content()), position));
        match entry {
            Entry::Current(record) => self.parsed.records.push(record),
            Entry::Expired(entry) => {
                self.parsed.skipped_expired += 1;
                self.parsed.expired.push(entry);
            }
        }
        Ok(())
    }

    /// The duplicate whose repetition comes earliest: the first problem of the input so
    /// far, ahead of any problem found at a later position.
    pub(crate) fn first_duplicate(&mut self) -> Option<Duplicate> {
        use rayon::slice::ParallelSliceMut;
        // Sorting by (key, position) puts each serial's first position first among its repeats.
        self.seen.par_sort_unstable();
        let (first, again, key) = self
            .seen
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| (pair[0].1, pair[1].1, pair[0].0))
            .min_by_key(|&(_, again, _)| again)?;
        let serial = Serial::from_der_content(&key[1..1 + usize::from(key[0])])?;
        Some(Duplicate { serial, first, again })
    }

    /// Everything collected, or the earliest duplicate.
    pub(crate) fn finish(mut self) -> Result<ParsedInput, Duplicate> {
        match self.first_duplicate() {
            Some(duplicate) => Err(duplicate),
            None => Ok(self.parsed),
        }
    }
}

/// The part both text formats share: line numbering, blank lines and CRLF.
fn parse_lines(
    path: &Path,
    text: &str,
    parse_line: fn(&str) -> Result<Entry, LineProblem>,
    rules: InputRules,
) -> Result<ParsedInput, InputError> {
    let duplicate_error = |duplicate: Duplicate| InputError::Line {
        path: path.to_path_buf(),
        line: duplicate.again,
        problem: LineProblem::DuplicateSerial {
            serial: duplicate.serial,
            first: duplicate.first,
        },
    };
    let mut collector = EntryCollector::new(rules);
    // `lines()` also splits on "\r\n", so CRLF files need nothing more; a lone '\r' left
    // on the final line can only end up in the subject, which is not read.
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let added = parse_line(line).and_then(|entry| collector.push(line_number, entry));
        if let Err(problem) = added {
            // A duplicate on an earlier line is the first problem in the file.
            return Err(match collector.first_duplicate() {
                Some(duplicate) => duplicate_error(duplicate),
                None => InputError::Line {
                    path: path.to_path_buf(),
                    line: line_number,
                    problem,
                },
            });
        }
    }
    collector.finish().map_err(duplicate_error)
}

/// RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. Expired entries are not
/// checked: they are never published.
fn check_rfc5280_serial(serial: &Serial) -> Result<(), LineProblem> {
    let octets = serial.as_der_content().len();
    if serial.as_der_content() == [0] {
        Err(LineProblem::ZeroSerial)
    } else if octets > RFC5280_MAX_SERIAL_OCTETS {
        Err(LineProblem::LongSerial {
            serial: serial.clone(),
            octets,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn parse_serial(text: &str) -> Result<Serial, LineProblem> {
    Serial::from_hex(text).ok_or_else(|| LineProblem::BadSerial(text.to_string()))
}

// ---------------------------------------------------------------------------------------
// OpenSSL index.txt

/// `openssl ca` always writes these six, even when the subject is empty.
const INDEX_FIELDS: usize = 6;

fn parse_index_line(line: &str) -> Result<Entry, LineProblem> {
    if line.starts_with('#') {
        // openssl's TXT_DB has no comment syntax; a '#' line would be read as a bad record.
        return Err(LineProblem::Comment("index.txt (openssl has no comment syntax)"));
    }
    let fields: Vec<&str> = line.split('\t').collect();
    let [status, expiry, revocation, serial, _filename, _subject] = fields[..] else {
        return Err(LineProblem::FieldCount(fields.len()));
    };
    let not_after = Some(parse_asn1_time("expiry date", expiry)?);
    let serial = parse_serial(serial)?;
    let status = match status {
        "V" => {
            require_no_revocation("V", revocation)?;
            CertStatus::Good
        }
        "R" => parse_revocation(revocation)?,
        "E" => {
            require_no_revocation("E", revocation)?;
            return Ok(Entry::Expired(ExpiredEntry { serial, not_after }));
        }
        other => return Err(LineProblem::UnknownStatus(other.to_string())),
    };
    Ok(Entry::Current(CertRecord {
        serial,
        status,
        not_after,
    }))
}

fn require_no_revocation(status: &'static str, revocation: &str) -> Result<(), LineProblem> {
    if revocation.is_empty() {
        Ok(())
    } else {
        Err(LineProblem::RevocationNotAllowed {
            status,
            found: revocation.to_string(),
        })
    }
}

/// The revocation field: `date[,reason[,argument]]`, split the way openssl's
/// `unpack_revinfo` splits it (the argument is everything after the second comma).
fn parse_revocation(field: &str) -> Result<CertStatus, LineProblem> {
    if field.is_empty() {
        return Err(LineProblem::NoRevocationDate);
    }
    let mut parts = field.splitn(3, ',');
    let at = parse_asn1_time("revocation date", parts.next().unwrap_or_default())?;
    let (reason, invalidity) = match parts.next() {
        None => (None, None),
        Some(name) => parse_reason(name, parts.next())?,
    };
    Ok(CertStatus::Revoked {
        at,
        reason,
        invalidity,
    })
}

type ReasonAndInvalidity = (Option<RevocationReason>, Option<UnixTime>);

fn parse_reason(name: &str, argument: Option<&str>) -> Result<ReasonAndInvalidity, LineProblem> {
    if let Some(tagged) = parse_tagged_reason(name, argument) {
        return tagged;
    }
    let reason =
        RevocationReason::from_name(name).ok_or_else(|| LineProblem::UnknownReason(name.to_string()))?;
    let Some(argument) = argument else {
        return Ok((Some(reason), None));
    };
    // openssl writes `date,keyTime,T`, but hand-made or scripted databases (including our
    // own demo fixture) restate the reason first: `date,keyCompromise,keyTime,T`. openssl
    // would silently drop T there; we keep it, and reject any other trailing text.
    let restated = match argument.split_once(',') {
        Some((tag, rest)) => parse_tagged_reason(tag, Some(rest)),
        None => parse_tagged_reason(argument, None),
    };
    match restated {
        Some(Ok((Some(same), invalidity))) if same == reason => Ok((Some(reason), invalidity)),
        Some(Err(problem)) => Err(problem),
        _ => Err(LineProblem::UnexpectedArgument {
            argument: argument.to_string(),
            reason: name.to_string(),
        }),
    }
}

/// openssl's pseudo-reasons that carry an argument; `None` if `tag` is not one of them.
fn parse_tagged_reason(
    tag: &str,
    argument: Option<&str>,
) -> Option<Result<ReasonAndInvalidity, LineProblem>> {
    let compromise = |reason| {
        let time = argument.ok_or_else(|| LineProblem::MissingArgument {
            tag: tag.to_string(),
            needs: "compromise time",
        })?;
        Ok((Some(reason), Some(parse_asn1_time("compromise time", time)?)))
    };
    if tag.eq_ignore_ascii_case("keyTime") {
        Some(compromise(RevocationReason::KeyCompromise))
    } else if tag.eq_ignore_ascii_case("CAkeyTime") {
        Some(compromise(RevocationReason::CaCompromise))
    } else if tag.eq_ignore_ascii_case("holdInstruction") {
        // The OID (e.g. id-holdinstruction-reject) has no place in an OCSP response.
        Some(match argument {
            Some(oid) if !oid.is_empty() => Ok((Some(RevocationReason::CertificateHold), None)),
            _ => Err(LineProblem::MissingArgument {
                tag: tag.to_string(),
                needs: "hold instruction OID",
            }),
        })
    } else {
        None
    }
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ`; `what` names the field.
fn parse_asn1_time(what: &'static str, text: &str) -> Result<UnixTime, LineProblem> {
    ocsp_edge_core::time::parse_asn1_time_either(text).ok_or_else(|| LineProblem::Asn1Time {
        what,
        text: text.to_string(),
    })
}

// ---------------------------------------------------------------------------------------
// JSON Lines

/// One JSON Lines entry. Unknown fields are errors so that a typo such as `"reasn"` cannot
/// silently publish a revocation without its reason.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEntry {
    serial: String,
    status: JsonStatus,
    revoked_at: Option<String>,
    reason: Option<String>,
    invalidity_date: Option<String>,
    not_after: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum JsonStatus {
    #[serde(alias = "valid")]
    Good,
    Revoked,
    Expired,
}

fn parse_json_line(line: &str) -> Result<Entry, LineProblem> {
    if line.starts_with('#') {
        return Err(LineProblem::Comment("JSON Lines (JSON has no comments)"));
    }
    let entry: JsonEntry = serde_json::from_str(line).map_err(LineProblem::Json)?;
    let serial = parse_serial(&entry.serial)?;
    let not_after = optional_rfc3339("not_after", entry.not_after.as_deref())?;
    let status = match entry.status {
        JsonStatus::Good => {
            require_no_json_revocation(&entry)?;
            CertStatus::Good
        }
        JsonStatus::Revoked => json_revocation(&entry)?,
        JsonStatus::Expired => {
            require_no_json_revocation(&entry)?;
            return Ok(Entry::Expired(ExpiredEntry { serial, not_after }));
        }
    };
    Ok(Entry::Current(CertRecord {
        serial,
        status,
        not_after,
    }))
}

/// serde_json's message without its "at line 1 column N" suffix: every line is parsed on
/// its own, so its line is always 1 and the caller reports the real one.
fn describe_json_error(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&suffix) {
        Some(message) => format!("{message} (column {})", error.column()),
        None => full,
    }
}

fn json_revocation(entry: &JsonEntry) -> Result<CertStatus, LineProblem> {
    let at = entry.revoked_at.as_deref().ok_or(LineProblem::NoRevokedAt)?;
    let reason = match entry.reason.as_deref() {
        None => None,
        Some(name) => Some(
            RevocationReason::from_name(name).ok_or_else(|| LineProblem::UnknownReason(name.to_string()))?,
        ),
    };
    Ok(CertStatus::Revoked {
        at: parse_rfc3339("revoked_at", at)?,
        reason,
        invalidity: optional_rfc3339("invalidity_date", entry.invalidity_date.as_deref())?,
    })
}

fn require_no_json_revocation(entry: &JsonEntry) -> Result<(), LineProblem> {
    let present = [
        ("revoked_at", entry.revoked_at.is_some()),
        ("reason", entry.reason.is_some()),
        ("invalidity_date", entry.invalidity_date.is_some()),
    ];
    match present.iter().find(|(_, is_present)| *is_present) {
        Some((field, _)) => Err(LineProblem::OnlyWhenRevoked(field)),
        None => Ok(()),
    }
}

fn optional_rfc3339(what: &'static str, text: Option<&str>) -> Result<Option<UnixTime>, LineProblem> {
    text.map(|t| parse_rfc3339(what, t)).transpose()
}

/// Fractions of a second are truncated: `UnixTime` holds whole seconds.
fn parse_rfc3339(what: &'static str, text: &str) -> Result<UnixTime, LineProblem> {
    UnixTime::parse_rfc3339(text).ok_or_else(|| LineProblem::Rfc3339 {
        what,
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use RevocationReason::*;

    const PATH: &str = "fixtures/x/index.txt";

    // Exact instants used below (seconds since the epoch, UTC).
    const T_2036_01_01: i64 = 2_082_758_400;
    const T_2026_02_01: i64 = 1_769_904_000;
    const T_2026_02_15_NOON: i64 = 1_771_156_800;
    const T_2026_03_01: i64 = 1_772_323_200;
    const T_2026_05_10: i64 = 1_778_371_200;

    fn index(text: &str) -> Result<ParsedInput, InputError> {
        parse_openssl_index(Path::new(PATH), text)
    }

    fn json(text: &str) -> Result<ParsedInput, InputError> {
        parse_json_lines(Path::new("fixtures/x/certs.jsonl"), text)
    }

    /// One index.txt line with the given status, expiry, revocation field and serial.
    fn line(status: &str, expiry: &str, revocation: &str, serial: &str) -> String {
        format!("{status}\t{expiry}\t{revocation}\t{serial}\tunknown\t/CN=leaf\n")
    }

    fn only_record(text: &str) -> CertRecord {
        let parsed = index(text).unwrap();
        assert_eq!(parsed.records.len(), 1);
        parsed.records.into_iter().next().unwrap()
    }

    fn revoked(at: i64, reason: Option<RevocationReason>, invalidity: Option<i64>) -> CertStatus {
        CertStatus::Revoked {
            at: UnixTime(at),
            reason,
            invalidity: invalidity.map(UnixTime),
        }
    }

    fn error_message(result: Result<ParsedInput, InputError>) -> String {
        match result {
            Ok(parsed) => panic!("expected an error, parsed {parsed:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_error(result: Result<ParsedInput, InputError>, expected: &str) {
        let message = error_message(result);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }

    // --- index.txt: statuses -----------------------------------------------------------

    #[test]
    fn index_valid_line_is_good_with_not_after_and_serial_bytes() {
        let record = only_record(&line("V", "360101000000Z", "", "8001"));
        assert_eq!(record.serial.as_der_content(), &[0x00, 0x80, 0x01]);
        assert_eq!(record.status, CertStatus::Good);
        assert_eq!(record.not_after, Some(UnixTime(T_2036_01_01)));
    }

    #[test]
    fn index_revoked_with_date_only_has_no_reason() {
        let record = only_record(&line("R", "360101000000Z", "260201000000Z", "01"));
        assert_eq!(record.serial.as_der_content(), &[0x01]);
        assert_eq!(record.status, revoked(T_2026_02_01, None, None));
    }

    #[test]
    fn index_expired_lines_are_counted_not_returned() {
        let text = line("E", "260301000000Z", "", "0A") + &line("V", "360101000000Z", "", "0B");
        let parsed = index(&text).unwrap();
        assert_eq!(parsed.skipped_expired, 1);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].serial.as_der_content(), &[0x0B]);
    }

    #[test]
    fn index_unknown_status_is_rejected() {
        let text = line("X", "360101000000Z", "", "01");
        assert_error(index(&text), &format!("{PATH}:1: unknown status \"X\""));
    }

    // --- index.txt: revocation field forms ---------------------------------------------

    #[test]
    fn index_revocation_with_named_reason() {
        let record = only_record(&line("R", "360101000000Z", "260215120000Z,superseded", "02"));
        assert_eq!(record.status, revoked(T_2026_02_15_NOON, Some(Superseded), None));
        let record = only_record(&line("R", "360101000000Z", "260201000000Z,CACompromise", "02"));
        assert_eq!(record.status, revoked(T_2026_02_01, Some(CaCompromise), None));
    }

    #[test]
    fn index_key_time_means_key_compromise_with_invalidity() {
        let field = "260201000000Z,keyTime,20260510000000Z";
        let record = only_record(&line("R", "360101000000Z", field, "03"));
        let expected = revoked(T_2026_02_01, Some(KeyCompromise), Some(T_2026_05_10));
        assert_eq!(record.status, expected);
    }

    #[test]
    fn index_ca_key_time_means_ca_compromise_with_invalidity() {
        let field = "260201000000Z,CAkeyTime,20260510000000Z";
        let record = only_record(&line("R", "360101000000Z", field, "04"));
        let expected = revoked(T_2026_02_01, Some(CaCompromise), Some(T_2026_05_10));
        assert_eq!(record.status, expected);
    }

    #[test]
    fn index_hold_instruction_means_certificate_hold_and_drops_the_oid() {
        let field = "260201000000Z,holdInstruction,1.2.840.10040.2.2";
        let record = only_record(&line("R", "360101000000Z", field, "05"));
        assert_eq!(record.status, revoked(T_2026_02_01, Some(CertificateHold), None));
    }

    #[test]
    fn index_restated_reason_before_key_time_keeps_the_compromise_time() {
        // The demo fixture's spelling (openssl itself writes `date,keyTime,T`).
        let field = "260515120000Z,keyCompromise,keyTime,20260510000000Z";
        let record = only_record(&line("R", "360101000000Z", field, "06"));
        let CertStatus::Revoked {
            reason, invalidity, ..
        } = record.status
        else {
            panic!("not revoked: {:?}", record.status);
        };
        assert_eq!(reason, Some(KeyCompromise));
        assert_eq!(invalidity, Some(UnixTime(T_2026_05_10)));
    }

    #[test]
    fn index_restated_reason_must_match_and_carry_a_valid_time() {
        let field = "260201000000Z,keyCompromise,CAkeyTime,20260510000000Z";
        let text = line("R", "360101000000Z", field, "06");
        assert_error(
            index(&text),
            ":1: unexpected \"CAkeyTime,20260510000000Z\" after revocation reason \"keyCompromise\"",
        );
        let text = line(
            "R",
            "360101000000Z",
            "260201000000Z,keyCompromise,keyTime,soon",
            "06",
        );
        assert_error(index(&text), ":1: compromise time \"soon\" is not a UTCTime");
        let text = line("R", "360101000000Z", "260201000000Z,keyCompromise,keyTime", "06");
        assert_error(index(&text), ":1: keyTime needs a compromise time");
    }

    #[test]
    fn index_unexpected_argument_after_plain_reason_is_rejected() {
        let text = line(
            "R",
            "360101000000Z",
            "260201000000Z,superseded,keyTime,20260510000000Z",
            "07",
        );
        assert_error(
            index(&text),
            ":1: unexpected \"keyTime,20260510000000Z\" after revocation reason \"superseded\"",
        );
        let text = line("R", "360101000000Z", "260201000000Z,superseded,extra", "07");
        assert_error(index(&text), ":1: unexpected \"extra\"");
    }

    #[test]
    fn index_key_time_without_time_is_rejected() {
        let text = line("R", "360101000000Z", "260201000000Z,keyTime", "08");
        assert_error(index(&text), ":1: keyTime needs a compromise time");
    }

    #[test]
    fn index_bad_compromise_time_is_rejected() {
        let text = line("R", "360101000000Z", "260201000000Z,keyTime,2026-05-10", "08");
        assert_error(
            index(&text),
            ":1: compromise time \"2026-05-10\" is not a UTCTime",
        );
    }

    #[test]
    fn index_hold_instruction_without_oid_is_rejected() {
        let text = line("R", "360101000000Z", "260201000000Z,holdInstruction", "09");
        assert_error(index(&text), ":1: holdInstruction needs a hold instruction OID");
    }

    #[test]
    fn index_unknown_reason_is_rejected() {
        let text = line("V", "360101000000Z", "", "01")
            + &line("R", "360101000000Z", "260201000000Z,keyCompromized", "02");
        assert_error(
            index(&text),
            &format!("{PATH}:2: unknown revocation reason \"keyCompromized\""),
        );
    }

    #[test]
    fn index_valid_with_revocation_field_is_rejected() {
        let text = line("V", "360101000000Z", "260201000000Z", "01");
        assert_error(
            index(&text),
            ":1: status V must have an empty revocation field, found \"260201000000Z\"",
        );
    }

    #[test]
    fn index_expired_with_revocation_field_is_rejected() {
        let text = line("E", "260301000000Z", "260201000000Z", "01");
        assert_error(index(&text), ":1: status E must have an empty revocation field");
    }

    #[test]
    fn index_revoked_without_revocation_field_is_rejected() {
        let text = line("R", "360101000000Z", "", "01");
        assert_error(index(&text), ":1: status R needs a revocation date");
    }

    // --- index.txt: times --------------------------------------------------------------

    #[test]
    fn index_utc_time_pivots_between_49_and_50() {
        let record = only_record(&line("V", "491231235959Z", "", "01"));
        assert_eq!(
            record.not_after,
            Some(UnixTime(2_524_607_999)),
            "2049-12-31T23:59:59Z"
        );
        let record = only_record(&line("V", "500101000000Z", "", "01"));
        assert_eq!(
            record.not_after,
            Some(UnixTime(-631_152_000)),
            "1950-01-01T00:00:00Z"
        );
    }

    #[test]
    fn index_accepts_generalized_time() {
        let record = only_record(&line("V", "20500101000000Z", "", "01"));
        assert_eq!(record.not_after, Some(UnixTime(2_524_608_000)));
        let record = only_record(&line("R", "20360101000000Z", "20260301000000Z", "01"));
        assert_eq!(record.not_after, Some(UnixTime(T_2036_01_01)));
        assert_eq!(record.status, revoked(T_2026_03_01, None, None));
    }

    #[test]
    fn index_bad_revocation_date_is_rejected() {
        let text = line("R", "360101000000Z", "2613010000Z", "01");
        let expected = format!(
            "{PATH}:1: revocation date \"2613010000Z\" is not a UTCTime (YYMMDDHHMMSSZ) \
             or GeneralizedTime (YYYYMMDDHHMMSSZ)"
        );
        assert_eq!(error_message(index(&text)), expected);
    }

    #[test]
    fn index_impossible_calendar_dates_are_rejected() {
        for expiry in ["361301000000Z", "360230000000Z", "360101240000Z", "360101000060Z"] {
            let text = line("V", expiry, "", "01");
            assert_error(
                index(&text),
                &format!(":1: expiry date \"{expiry}\" is not a UTCTime"),
            );
        }
        for expiry in ["360101000000", "36010100000Z", "+60101000000Z", "２60101000000Z"] {
            let text = line("V", expiry, "", "01");
            assert_error(index(&text), ":1: expiry date");
        }
    }

    // --- index.txt: layout, serials ----------------------------------------------------

    #[test]
    fn index_tolerates_crlf_and_blank_lines() {
        let text = "\r\nV\t360101000000Z\t\t01\tunknown\t/CN=a\r\n\n   \n\
                    R\t360101000000Z\t260201000000Z,superseded\t02\tunknown\t\r\n";
        let parsed = index(text).unwrap();
        assert_eq!(parsed.records.len(), 2);
        assert_eq!(
            parsed.records[1].status,
            revoked(T_2026_02_01, Some(Superseded), None)
        );
    }

    #[test]
    fn index_lone_carriage_return_at_end_of_file_is_tolerated() {
        let record = only_record("V\t360101000000Z\t\t01\tunknown\t/CN=a\r");
        assert_eq!(record.status, CertStatus::Good);
    }

    #[test]
    fn index_accepts_an_empty_subject() {
        let record = only_record("V\t360101000000Z\t\t01\tunknown\t\n");
        assert_eq!(record.serial.as_der_content(), &[0x01]);
    }

    #[test]
    fn index_wrong_field_count_is_rejected_with_line_number() {
        let text = line("V", "360101000000Z", "", "01") + "\nV\t360101000000Z\t\t02\n";
        assert_error(
            index(&text),
            &format!("{PATH}:3: expected 6 tab-separated fields, found 4"),
        );
        let text = "V 360101000000Z  01 unknown /CN=a\n";
        assert_error(index(text), ":1: expected 6 tab-separated fields, found 1");
        let text = line("V", "360101000000Z", "", "01").replace('\n', "\textra\n");
        assert_error(index(&text), ":1: expected 6 tab-separated fields, found 7");
    }

    #[test]
    fn index_comment_lines_are_rejected() {
        assert_error(
            index("# exported by ca-tool\n"),
            ":1: comment lines are not allowed in index.txt",
        );
    }

    #[test]
    fn index_bad_serials_are_rejected() {
        let text = line("V", "360101000000Z", "", "01XY");
        assert_error(
            index(&text),
            ":1: serial \"01XY\" is not hexadecimal or longer than 23 octets",
        );
        let text = line("V", "360101000000Z", "", "");
        assert_error(index(&text), ":1: serial \"\" is not hexadecimal");
        let too_long = "11".repeat(24);
        let text = line("V", "360101000000Z", "", &too_long);
        assert_error(
            index(&text),
            &format!(":1: serial \"{too_long}\" is not hexadecimal or longer"),
        );
    }

    #[test]
    fn serial_zero_and_serials_over_twenty_octets_are_refused_with_file_and_line() {
        let legacy = InputRules {
            allow_legacy_serials: true,
        };
        // 20 octets of content is the most RFC 5280 allows; 7F.. keeps the sign octet out.
        let longest = format!("7F{}", "11".repeat(19));
        let over = [
            ("00", "serial 00 is zero"),
            ("0", "serial 00 is zero"),
            // 20 octets of magnitude with the top bit set: 21 with the sign octet.
            (&*format!("80{}", "11".repeat(19)), "is 21 octets long"),
            (&*"11".repeat(21), "is 21 octets long"),
            (&*"11".repeat(22), "is 22 octets long"),
        ];
        for (serial, problem) in over {
            let text = line("V", "360101000000Z", "", "01") + &line("V", "360101000000Z", "", serial);
            let message = error_message(index(&text));
            assert!(
                message.starts_with(&format!("{PATH}:2: ")) && message.contains(problem),
                "{serial}: {message}"
            );
            assert!(message.contains("allow_legacy_serials"), "{message}");
            assert_eq!(
                parse_openssl_index_with(Path::new(PATH), &text, legacy)
                    .unwrap()
                    .records
                    .len(),
                2,
                "{serial} under allow_legacy_serials"
            );
            let json_text = format!("{{\"serial\":\"{serial}\",\"status\":\"good\"}}\n");
            let message = error_message(json(&json_text));
            assert!(
                message.contains("certs.jsonl:1: serial") && message.contains(problem),
                "{message}"
            );
            assert!(parse_json_lines_with(Path::new("x.jsonl"), &json_text, legacy).is_ok());
        }
        assert!(index(&line("V", "360101000000Z", "", &longest)).is_ok());
        // An expired entry is never published, so an old out-of-rule serial there is fine.
        assert!(index(&line("E", "200101000000Z", "", "00")).is_ok());
    }

    #[test]
    fn expired_entries_keep_their_not_after_for_the_rails() {
        let parsed = index(&line("E", "260301000000Z", "", "0A")).unwrap();
        assert_eq!(
            parsed.expired,
            [ExpiredEntry {
                serial: Serial::from_hex("0A").unwrap(),
                not_after: Some(UnixTime(T_2026_03_01)),
            }]
        );
        let parsed = json("{\"serial\":\"0b\",\"status\":\"expired\"}").unwrap();
        assert_eq!(parsed.expired[0].not_after, None);
    }

    #[test]
    fn index_duplicate_serial_names_both_lines() {
        let text = line("V", "360101000000Z", "", "01AB")
            + "\n"
            + &line("V", "360101000000Z", "", "02")
            + &line("R", "360101000000Z", "260201000000Z", "1ab");
        let expected = format!("{PATH}:4: serial 01AB appears again (first on line 1)");
        assert_eq!(error_message(index(&text)), expected);
    }

    #[test]
    fn the_first_problem_in_line_order_is_the_one_reported() {
        let valid = |serial| line("V", "360101000000Z", "", serial);
        let bad = line("V", "360101000000Z", "", "XYZ");
        // Three of one serial and two of another: the earliest repetition wins.
        let text = valid("05") + &valid("07") + &valid("07") + &valid("05") + &valid("05");
        assert_error(index(&text), ":3: serial 07 appears again (first on line 2)");
        // A repetition before a malformed line is reported, not the malformed line...
        let text = valid("05") + &valid("05") + &bad;
        assert_error(index(&text), ":2: serial 05 appears again (first on line 1)");
        // ...and a malformed line before a repetition is.
        let text = valid("05") + &bad + &valid("05");
        assert_error(index(&text), ":2: serial \"XYZ\" is not hexadecimal");
    }

    #[test]
    fn index_duplicate_of_an_expired_serial_is_rejected() {
        let text = line("E", "260301000000Z", "", "0A") + &line("V", "360101000000Z", "", "0A");
        assert_error(index(&text), ":2: serial 0A appears again (first on line 1)");
    }

    #[test]
    fn index_empty_input_yields_nothing() {
        let parsed = index("").unwrap();
        assert!(parsed.records.is_empty());
        assert_eq!(parsed.skipped_expired, 0);
    }

    #[test]
    fn index_error_reports_the_path_given() {
        let result = parse_openssl_index(Path::new("/srv/ca/index.txt"), "bogus\n");
        match result {
            Err(InputError::Line { path, line, problem }) => {
                assert_eq!(path, Path::new("/srv/ca/index.txt"));
                assert_eq!(line, 1);
                assert!(matches!(problem, LineProblem::FieldCount(1)), "{problem}");
                assert_eq!(problem.to_string(), "expected 6 tab-separated fields, found 1");
            }
            Err(other) => panic!("not a line error: {other}"),
            Ok(parsed) => panic!("parsed {parsed:?}"),
        }
    }

    /// The demo CA database written by fixtures/generate.sh (100 leaves, leaf 099 expired,
    /// ten revoked of which leaf 070 carries no reason and leaf 056 a compromise time).
    #[test]
    fn demo_fixture_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec/index.txt");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()));
        let parsed = parse_openssl_index(&path, &text).unwrap();
        assert!(parsed.records.len() + parsed.skipped_expired >= 100, "{parsed:?}");
        assert_eq!(parsed.skipped_expired, 1);
        let revoked: Vec<&CertRecord> = parsed
            .records
            .iter()
            .filter(|r| matches!(r.status, CertStatus::Revoked { .. }))
            .collect();
        assert_eq!(revoked.len(), 10);
        let without_reason = revoked
            .iter()
            .filter(|r| matches!(r.status, CertStatus::Revoked { reason: None, .. }))
            .count();
        assert_eq!(without_reason, 1);
        let invalidity_dates: Vec<UnixTime> = revoked
            .iter()
            .filter_map(|r| match r.status {
                CertStatus::Revoked { invalidity, .. } => invalidity,
                CertStatus::Good => None,
            })
            .collect();
        assert_eq!(invalidity_dates, [UnixTime(T_2026_05_10)]);
        assert!(parsed.records.iter().all(|r| r.not_after.is_some()));
    }

    // --- JSON Lines --------------------------------------------------------------------

    #[test]
    fn json_good_and_valid_entries_are_good() {
        let text = r#"{"serial": "8001", "status": "good", "not_after": "2036-01-01T00:00:00Z"}
{"serial": "02", "status": "valid"}"#;
        let parsed = json(text).unwrap();
        assert_eq!(parsed.records.len(), 2);
        let first = &parsed.records[0];
        assert_eq!(first.serial.as_der_content(), &[0x00, 0x80, 0x01]);
        assert_eq!(first.status, CertStatus::Good);
        assert_eq!(first.not_after, Some(UnixTime(T_2036_01_01)));
        assert_eq!(parsed.records[1].status, CertStatus::Good);
        assert_eq!(parsed.records[1].not_after, None);
    }

    #[test]
    fn json_revoked_entry_with_all_fields() {
        let text = r#"{"serial":"0a","status":"revoked","revoked_at":"2026-02-01T00:00:00Z","reason":"key_compromise","invalidity_date":"2026-05-10T00:00:00Z"}"#;
        let record = json(text).unwrap().records.remove(0);
        assert_eq!(record.serial.as_der_content(), &[0x0A]);
        assert_eq!(
            record.status,
            revoked(T_2026_02_01, Some(KeyCompromise), Some(T_2026_05_10))
        );
    }

    #[test]
    fn json_revoked_entry_without_reason() {
        let text = r#"{"serial":"0b","status":"revoked","revoked_at":"2026-02-15T13:00:00+01:00"}"#;
        let record = json(text).unwrap().records.remove(0);
        assert_eq!(record.status, revoked(T_2026_02_15_NOON, None, None));
    }

    #[test]
    fn json_fractional_seconds_are_truncated() {
        let text = r#"{"serial":"0c","status":"revoked","revoked_at":"2026-02-01T00:00:00.999Z"}"#;
        let record = json(text).unwrap().records.remove(0);
        assert_eq!(record.status, revoked(T_2026_02_01, None, None));
    }

    #[test]
    fn json_expired_entries_are_counted_not_returned() {
        let text =
            "{\"serial\":\"01\",\"status\":\"expired\"}\r\n\n{\"serial\":\"02\",\"status\":\"good\"}\n";
        let parsed = json(text).unwrap();
        assert_eq!(parsed.skipped_expired, 1);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].serial.as_der_content(), &[0x02]);
    }

    #[test]
    fn json_unknown_field_is_rejected() {
        let text = "\n{\"serial\":\"01\",\"status\":\"revoked\",\"revoked_at\":\"2026-02-01T00:00:00Z\",\"reasn\":\"superseded\"}";
        let message = error_message(json(text));
        assert!(
            message.contains("certs.jsonl:2: unknown field `reasn`"),
            "{message}"
        );
        assert!(
            !message.contains("at line 1"),
            "serde's own line number leaked: {message}"
        );
    }

    #[test]
    fn json_unknown_status_and_malformed_json_are_rejected() {
        assert_error(
            json(r#"{"serial":"01","status":"on-hold"}"#),
            ":1: unknown variant `on-hold`",
        );
        assert_error(
            json(r#"{"serial":"01","status":"good""#),
            ":1: EOF while parsing an object",
        );
        assert_error(json(r#"{"status":"good"}"#), ":1: missing field `serial`");
        assert_error(
            json(r#"{"serial":1,"status":"good"}"#),
            ":1: invalid type: integer `1`",
        );
    }

    #[test]
    fn json_revoked_without_revoked_at_is_rejected() {
        let text = r#"{"serial":"01","status":"revoked","reason":"superseded"}"#;
        assert_error(json(text), ":1: status \"revoked\" needs \"revoked_at\"");
    }

    #[test]
    fn json_bad_times_are_rejected() {
        let text = r#"{"serial":"01","status":"revoked","revoked_at":"2026-02-01"}"#;
        assert_error(
            json(text),
            ":1: revoked_at \"2026-02-01\" is not an RFC 3339 time",
        );
        let text = r#"{"serial":"01","status":"revoked","revoked_at":"2026-02-01T00:00:00Z","invalidity_date":"yesterday"}"#;
        assert_error(
            json(text),
            ":1: invalidity_date \"yesterday\" is not an RFC 3339 time",
        );
        let text = r#"{"serial":"01","status":"good","not_after":"260201000000Z"}"#;
        assert_error(
            json(text),
            ":1: not_after \"260201000000Z\" is not an RFC 3339 time",
        );
    }

    #[test]
    fn json_revocation_fields_on_good_or_expired_entries_are_rejected() {
        let text = r#"{"serial":"01","status":"good","revoked_at":"2026-02-01T00:00:00Z"}"#;
        assert_error(
            json(text),
            ":1: \"revoked_at\" is only allowed with status \"revoked\"",
        );
        let text = r#"{"serial":"01","status":"good","reason":"superseded"}"#;
        assert_error(
            json(text),
            ":1: \"reason\" is only allowed with status \"revoked\"",
        );
        let text = r#"{"serial":"01","status":"expired","invalidity_date":"2026-02-01T00:00:00Z"}"#;
        assert_error(
            json(text),
            ":1: \"invalidity_date\" is only allowed with status \"revoked\"",
        );
    }

    #[test]
    fn json_unknown_reason_is_rejected() {
        let text = r#"{"serial":"01","status":"revoked","revoked_at":"2026-02-01T00:00:00Z","reason":"keyCompromized"}"#;
        assert_error(json(text), ":1: unknown revocation reason \"keyCompromized\"");
    }

    #[test]
    fn json_bad_serial_is_rejected() {
        assert_error(
            json(r#"{"serial":"0x01","status":"good"}"#),
            ":1: serial \"0x01\" is not hexadecimal",
        );
    }

    #[test]
    fn json_duplicate_serial_names_both_lines() {
        let text = "{\"serial\":\"01AB\",\"status\":\"good\"}\n{\"serial\":\"02\",\"status\":\"good\"}\n{\"serial\":\"1ab\",\"status\":\"expired\"}\n";
        let message = error_message(json(text));
        assert!(
            message.ends_with("certs.jsonl:3: serial 01AB appears again (first on line 1)"),
            "{message}"
        );
    }

    #[test]
    fn json_comment_lines_are_rejected() {
        let text = "{\"serial\":\"01\",\"status\":\"good\"}\n# generated nightly\n";
        assert_error(json(text), ":2: comment lines are not allowed in JSON Lines");
    }
}
