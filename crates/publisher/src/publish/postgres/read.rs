//! Reading every certificate's status from the database in one consistent snapshot.
//!
//! The whole read is one `REPEATABLE READ READ ONLY` transaction, so it sees the table as
//! of one instant however long it takes and however the CA writes meanwhile; rows are
//! converted as they stream in, through the same checks as the file formats (the RFC 5280
//! serial rule, duplicate serials, revocation fields only on revoked rows). A statement
//! that fails, or a connection lost before the last row, fails the read: there is no
//! partial result.

use super::{ConfigProblem, ErrorKind, PostgresInput, SerialFormat};
use crate::publish::input::{
    Duplicate, Entry, EntryCollector, ExpiredEntry, InputError, InputRules, LineProblem, ParsedInput,
    RowProblem,
};
use crate::publish::PublishError;
use futures_util::TryStreamExt;
use ocsp_edge_core::model::{CertRecord, CertStatus, RevocationReason, Serial};
use ocsp_edge_core::time::UnixTime;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

impl PostgresInput {
    /// Reads every row in one snapshot transaction.
    pub async fn read(&self, rules: InputRules) -> Result<ParsedInput, PublishError> {
        let (mut client, connection) = self.connect().await?;
        let driver = tokio::spawn(connection);
        let result = self.read_with(&mut client, rules).await;
        drop(client);
        // The driver ends once the client is gone; its own error (if any) has already
        // surfaced as the failure of a statement.
        let _ = driver.await;
        result
    }

    async fn read_with(
        &self,
        client: &mut tokio_postgres::Client,
        rules: InputRules,
    ) -> Result<ParsedInput, PublishError> {
        let query_error = |e: tokio_postgres::Error| self.error(ErrorKind::Query, &e);
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(query_error)?;
        let statement = transaction.prepare(&self.select()?).await.map_err(query_error)?;
        let columns = Columns::locate(self, statement.columns())?;
        let rows = transaction
            .query_raw(&statement, std::iter::empty::<i32>())
            .await
            .map_err(query_error)?;
        let mut rows = std::pin::pin!(rows);
        let mut collector = EntryCollector::new(rules);
        let mut position = 0usize;
        while let Some(row) = rows.try_next().await.map_err(query_error)? {
            position += 1;
            let added = columns.entry(self, &row).and_then(|(entry, serial_text)| {
                collector.push(position, entry).map_err(|problem| Located {
                    serial: Some(serial_text),
                    column: Some(columns.names[SERIAL].clone()),
                    problem: problem.into(),
                })
            });
            if let Err(problem) = added {
                return Err(match collector.first_duplicate() {
                    Some(duplicate) => self.duplicate_error(duplicate),
                    None => self.row_error(position, problem),
                }
                .into());
            }
        }
        transaction.commit().await.map_err(query_error)?;
        collector
            .finish()
            .map_err(|duplicate| self.duplicate_error(duplicate).into())
    }

    /// From sync code (`PublishConfig::load`): outside any runtime, or on any thread of
    /// one (a `spawn_blocking` thread of the live publisher, a test's async body).
    ///
    /// The read always runs on a small current-thread runtime of its own: on a runtime's
    /// worker thread `Handle::block_on` would panic, and on a current-thread runtime it
    /// could not drive the I/O, so borrowing the caller's runtime is never safe everywhere.
    /// When the caller is inside a runtime, that private runtime lives on a scoped thread.
    pub fn read_blocking(&self, rules: InputRules) -> Result<ParsedInput, PublishError> {
        let read = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(self.read(rules))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return read();
        }
        std::thread::scope(|scope| match scope.spawn(read).join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }

    /// The statement: the configured query, or a SELECT of the mapped columns of `table`.
    fn select(&self) -> Result<String, PublishError> {
        let c = &self.config;
        if let Some(query) = &c.query {
            return Ok(query.clone());
        }
        let table = c
            .table
            .as_deref()
            .and_then(quote_table)
            .ok_or_else(|| self.config_error(ConfigProblem::TableOrQuery))?;
        let names = mapped_columns(self);
        if let Some(bad) = names.iter().find(|n| !super::is_plain_identifier(n)) {
            return Err(self.config_error(ConfigProblem::ColumnName(bad.clone())).into());
        }
        Ok(format!("SELECT {} FROM {table}", names.join(", ")))
    }

    fn row_error(&self, row: usize, problem: Located) -> InputError {
        InputError::Row {
            database: self.target(),
            row,
            serial: problem.serial,
            column: problem.column,
            problem: Box::new(problem.problem),
        }
    }

    fn duplicate_error(&self, duplicate: Duplicate) -> InputError {
        InputError::Row {
            database: self.target(),
            row: duplicate.again,
            serial: Some(duplicate.serial.to_string()),
            column: Some(self.config.columns.serial.clone()),
            problem: Box::new(RowProblem::DuplicateSerial {
                serial: duplicate.serial,
                first: duplicate.first,
            }),
        }
    }
}

/// `table` or `schema.table` as plain identifiers (left unquoted, so the server folds
/// their case exactly as it does in the CA's own SQL), or `None`.
pub(super) fn quote_table(table: &str) -> Option<String> {
    let parts: Vec<&str> = table.split('.').collect();
    let plain = |part: &&str| super::is_plain_identifier(&part.replace('$', "_")) && !part.starts_with('$');
    (matches!(parts.len(), 1 | 2) && parts.iter().all(plain)).then(|| table.to_string())
}

// Positions in `Columns`.
const SERIAL: usize = 0;
const STATUS: usize = 1;
const REVOKED_AT: usize = 2;
const REASON: usize = 3;
const INVALIDITY: usize = 4;
const NOT_AFTER: usize = 5;
const ROLES: [&str; 6] = [
    "serial",
    "status",
    "revoked_at",
    "reason",
    "invalidity_date",
    "not_after",
];

/// The configured column names, by role (`None`: not mapped).
fn mapping(input: &PostgresInput) -> [Option<&str>; 6] {
    let c = &input.config.columns;
    [
        Some(c.serial.as_str()),
        Some(c.status.as_str()),
        Some(c.revoked_at.as_str()),
        c.reason.as_deref(),
        c.invalidity_date.as_deref(),
        c.not_after.as_deref(),
    ]
}

fn mapped_columns(input: &PostgresInput) -> Vec<String> {
    mapping(input)
        .iter()
        .flatten()
        .map(|name| name.to_string())
        .collect()
}

/// What a column's type lets us read from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Bytes,
    TimestampTz,
    Timestamp,
}

impl Kind {
    fn of(ty: &Type) -> Option<Kind> {
        Some(match *ty {
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Kind::Text,
            Type::INT2 | Type::INT4 | Type::INT8 => Kind::Integer,
            Type::BYTEA => Kind::Bytes,
            Type::TIMESTAMPTZ => Kind::TimestampTz,
            Type::TIMESTAMP => Kind::Timestamp,
            _ => return None,
        })
    }
}

/// Where each role's column is in the result, and its type.
struct Columns {
    at: [Option<(usize, Kind)>; 6],
    names: [String; 6],
}

/// A row's problem with its serial and column, before the row number and database.
struct Located {
    serial: Option<String>,
    column: Option<String>,
    problem: RowProblem,
}

impl Columns {
    /// Finds every mapped column in the result and checks its type can be read.
    fn locate(input: &PostgresInput, result: &[tokio_postgres::Column]) -> Result<Columns, PublishError> {
        let mut at = [None; 6];
        let mut names: [String; 6] = Default::default();
        for (role, name) in mapping(input).into_iter().enumerate() {
            let Some(name) = name else { continue };
            names[role] = name.to_string();
            // Exact first; otherwise the server's case folding of an unquoted name.
            let index = result
                .iter()
                .position(|c| c.name() == name)
                .or_else(|| result.iter().position(|c| c.name() == name.to_ascii_lowercase()))
                .ok_or_else(|| {
                    input.config_error(ConfigProblem::ColumnMissing {
                        name: name.to_string(),
                        role: ROLES[role],
                        found: result.iter().map(|c| c.name().to_string()).collect(),
                    })
                })?;
            let ty = result[index].type_();
            let kind = Kind::of(ty).filter(|kind| accepts(role, *kind)).ok_or_else(|| {
                input.config_error(ConfigProblem::ColumnType {
                    name: name.to_string(),
                    role: ROLES[role],
                    found: ty.to_string(),
                    expected: expected(role),
                })
            })?;
            at[role] = Some((index, kind));
        }
        Ok(Columns { at, names })
    }

    /// The row's entry, and its serial as the row spells it (for messages).
    fn entry(&self, input: &PostgresInput, row: &Row) -> Result<(Entry, String), Located> {
        let problem = |serial: Option<&str>, role: usize, problem: RowProblem| Located {
            serial: serial.map(str::to_string),
            column: Some(self.names[role].clone()),
            problem,
        };
        let (serial, serial_text) = self.serial(input, row).map_err(|p| problem(None, SERIAL, p))?;
        let at = |role| {
            self.time(row, role)
                .map_err(|p| problem(Some(&serial_text), role, p))
        };
        let status_text = self
            .text(row, STATUS)
            .map_err(|p| problem(Some(&serial_text), STATUS, p))?
            .ok_or_else(|| problem(Some(&serial_text), STATUS, RowProblem::Null))?;
        let not_after = at(NOT_AFTER)?;
        let revoked_at = at(REVOKED_AT)?;
        let invalidity = at(INVALIDITY)?;
        let reason = self
            .reason(row)
            .map_err(|p| problem(Some(&serial_text), REASON, p))?;
        let values = &input.config.status_values;
        let status = if values.good.contains(&status_text) {
            let present = [
                (REVOKED_AT, revoked_at.is_some()),
                (REASON, reason.is_some()),
                (INVALIDITY, invalidity.is_some()),
            ];
            if let Some((role, _)) = present.iter().find(|(_, present)| *present) {
                return Err(problem(
                    Some(&serial_text),
                    *role,
                    RowProblem::OnlyWhenRevoked { status: status_text },
                ));
            }
            CertStatus::Good
        } else if values.revoked.contains(&status_text) {
            let at = revoked_at.ok_or_else(|| {
                problem(
                    Some(&serial_text),
                    REVOKED_AT,
                    RowProblem::NoRevokedAt {
                        status: status_text.clone(),
                    },
                )
            })?;
            CertStatus::Revoked {
                at,
                reason,
                invalidity,
            }
        } else if values.expired.contains(&status_text) {
            // A CA keeps revocation columns on rows that later expired; an expired row is
            // never published, so they do not matter here.
            return Ok((Entry::Expired(ExpiredEntry { serial, not_after }), serial_text));
        } else {
            return Err(problem(
                Some(&serial_text),
                STATUS,
                RowProblem::UnknownStatus {
                    value: status_text,
                    lists: Box::new([
                        values.good.clone(),
                        values.revoked.clone(),
                        values.expired.clone(),
                    ]),
                },
            ));
        };
        let record = CertRecord {
            serial,
            status,
            not_after,
        };
        Ok((Entry::Current(record), serial_text))
    }

    /// The serial, and how the row spells it (for messages).
    fn serial(&self, input: &PostgresInput, row: &Row) -> Result<(Serial, String), RowProblem> {
        // `locate` maps the serial to a text, bytes or integer column.
        let Some((index, kind)) = self.at[SERIAL] else {
            return Err(RowProblem::Null);
        };
        let null = || RowProblem::Null;
        match kind {
            Kind::Text => {
                let text: String = row
                    .try_get::<_, Option<String>>(index)
                    .map_err(undecodable)?
                    .ok_or_else(null)?;
                let serial = match input.config.serial_format {
                    SerialFormat::Hex => crate::publish::input::parse_serial(&text)?,
                    SerialFormat::Decimal => serial_from_decimal(&text)
                        .ok_or_else(|| RowProblem::BadDecimalSerial(text.clone()))?,
                };
                Ok((serial, text))
            }
            Kind::Bytes => {
                let bytes: Vec<u8> = row
                    .try_get::<_, Option<Vec<u8>>>(index)
                    .map_err(undecodable)?
                    .ok_or_else(null)?;
                let shown = hex::encode_upper(&bytes);
                let serial =
                    Serial::from_unsigned(&bytes).ok_or_else(|| RowProblem::LongSerial(shown.clone()))?;
                Ok((serial, shown))
            }
            Kind::Integer => {
                let value = self.integer(row, index)?.ok_or_else(null)?;
                let magnitude = u64::try_from(value).map_err(|_| RowProblem::NegativeSerial(value))?;
                let serial = Serial::from_unsigned(&magnitude.to_be_bytes())
                    .ok_or_else(|| RowProblem::LongSerial(value.to_string()))?;
                Ok((serial, value.to_string()))
            }
            // `locate` never maps a timestamp column to the serial.
            Kind::TimestampTz | Kind::Timestamp => Err(RowProblem::Null),
        }
    }

    fn integer(&self, row: &Row, index: usize) -> Result<Option<i64>, RowProblem> {
        let ty = row.columns()[index].type_().clone();
        let value = match ty {
            Type::INT2 => row.try_get::<_, Option<i16>>(index).map(|v| v.map(i64::from)),
            Type::INT4 => row.try_get::<_, Option<i32>>(index).map(|v| v.map(i64::from)),
            _ => row.try_get::<_, Option<i64>>(index),
        };
        value.map_err(undecodable)
    }

    /// A text or integer column as text (status values are compared as text).
    fn text(&self, row: &Row, role: usize) -> Result<Option<String>, RowProblem> {
        let Some((index, kind)) = self.at[role] else {
            return Ok(None);
        };
        match kind {
            Kind::Integer => Ok(self.integer(row, index)?.map(|v| v.to_string())),
            _ => row.try_get::<_, Option<String>>(index).map_err(undecodable),
        }
    }

    fn time(&self, row: &Row, role: usize) -> Result<Option<UnixTime>, RowProblem> {
        let Some((index, kind)) = self.at[role] else {
            return Ok(None);
        };
        // Fractions of a second are dropped: UnixTime holds whole seconds, as the DER
        // times we sign must (RFC 5280 forbids fractional seconds).
        let value = match kind {
            Kind::TimestampTz => row
                .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(index)
                .map(|t| t.map(|t| UnixTime::from_chrono(&t))),
            Kind::Timestamp => row
                .try_get::<_, Option<chrono::NaiveDateTime>>(index)
                .map(|t| t.map(|t| UnixTime::from_chrono(&t.and_utc()))),
            // `locate` maps time roles to timestamp columns only.
            _ => return Ok(None),
        };
        // The driver refuses ±infinity and out-of-range values with its own message.
        value.map_err(undecodable)
    }

    fn reason(&self, row: &Row) -> Result<Option<RevocationReason>, RowProblem> {
        let Some((index, kind)) = self.at[REASON] else {
            return Ok(None);
        };
        match kind {
            Kind::Integer => match self.integer(row, index)? {
                None => Ok(None),
                Some(code) => u8::try_from(code)
                    .ok()
                    .and_then(RevocationReason::from_code)
                    .map(Some)
                    .ok_or(RowProblem::ReasonCode(code)),
            },
            _ => match row.try_get::<_, Option<String>>(index).map_err(undecodable)? {
                None => Ok(None),
                Some(name) => RevocationReason::from_name(&name)
                    .map(Some)
                    .ok_or(RowProblem::Line(LineProblem::UnknownReason(name))),
            },
        }
    }
}

fn undecodable(error: tokio_postgres::Error) -> RowProblem {
    RowProblem::Undecodable(error.to_string())
}

fn accepts(role: usize, kind: Kind) -> bool {
    match role {
        SERIAL => matches!(kind, Kind::Text | Kind::Bytes | Kind::Integer),
        STATUS | REASON => matches!(kind, Kind::Text | Kind::Integer),
        _ => matches!(kind, Kind::TimestampTz | Kind::Timestamp),
    }
}

fn expected(role: usize) -> &'static str {
    match role {
        SERIAL => "a serial (text, bytea or an integer)",
        STATUS => "a status (text or an integer)",
        REASON => "a CRLReason (its name or code)",
        _ => "a time (timestamptz or timestamp)",
    }
}

/// A decimal serial (as EJBCA stores them) as its unsigned big-endian magnitude; `None`
/// if it is not all digits or longer than a serial can be.
fn serial_from_decimal(text: &str) -> Option<Serial> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Base-256 digits, least significant first; bounded because a longer number is refused.
    let mut magnitude: Vec<u8> = Vec::new();
    for digit in text.bytes().map(|b| b - b'0') {
        let mut carry = u32::from(digit);
        for byte in magnitude.iter_mut() {
            let value = u32::from(*byte) * 10 + carry;
            *byte = (value & 0xFF) as u8;
            carry = value >> 8;
        }
        if carry > 0 {
            magnitude.push(carry as u8);
        }
        if magnitude.len() > ocsp_edge_core::model::MAX_SERIAL_LEN {
            return None;
        }
    }
    magnitude.reverse();
    Serial::from_unsigned(&magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_serials_convert_exactly() {
        let cases = [
            ("1", "01"),
            ("255", "FF"),
            ("256", "0100"),
            // 2^64, past any machine integer.
            ("18446744073709551616", "010000000000000000"),
            ("0", "00"),
        ];
        for (decimal, hex) in cases {
            assert_eq!(serial_from_decimal(decimal), Serial::from_hex(hex), "{decimal}");
        }
        for bad in ["", "-1", "12a", " 1", &"9".repeat(80)] {
            assert_eq!(serial_from_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_column_that_needs_quoting_is_refused_before_any_query() {
        let text = "host = \"127.0.0.1\"\ndbname = \"ca\"\nuser = \"reader\"\ntls = \"disable\"\n\
                    table = \"certs\"\n[columns]\nstatus = \"st-atus\"\n";
        let input = toml::from_str::<super::super::PostgresConfig>(text)
            .unwrap()
            .checked("ec")
            .unwrap();
        let err = input.select().unwrap_err();
        assert!(
            matches!(
                &err,
                PublishError::Postgres(super::super::PostgresError::Config {
                    problem: ConfigProblem::ColumnName(name),
                    ..
                }) if name == "st-atus"
            ),
            "{err:?}"
        );
        assert!(err.to_string().ends_with(
            "column \"st-atus\" is not a plain identifier; with such names use `query` and quote them there"
        ));
    }

    #[test]
    fn only_plain_table_names_are_accepted() {
        assert!(quote_table("certs").is_some());
        assert!(quote_table("ca.certificate_status").is_some());
        for bad in [
            "",
            "a.b.c",
            "certs; DROP TABLE x",
            "\"x\"",
            "1certs",
            "a..b",
            "$x",
        ] {
            assert!(quote_table(bad).is_none(), "{bad}");
        }
    }
}
