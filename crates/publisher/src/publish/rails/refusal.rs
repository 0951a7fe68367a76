//! What the rails found, in words an operator can act on: each lost revocation, shrink or
//! empty input, and what to do about it. Pure data and its `Display`; must never import
//! the plan or the publish pipeline ([`super::super::error`] wraps [`RailError`]).

use ocsp_edge_core::model::Serial;
use ocsp_edge_core::time::UnixTime;
use std::fmt;
use std::path::PathBuf;

/// How a revocation the newest snapshot publishes would be lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The input says `good`.
    Unrevoked,
    /// The input gives another revocation time.
    RevocationTimeChanged { to: UnixTime },
    /// The input lacks it, or marks it expired with a notAfter still ahead or unknown.
    Removed { not_after: Option<UnixTime> },
}

/// One revocation the publish would lose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostRevocation {
    pub serial: Serial,
    pub revoked_at: UnixTime,
    pub loss: Loss,
}

/// What one issuer's input would do wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    LostRevocations {
        file: PathBuf,
        issuer: String,
        sequence: u64,
        /// The first few, in serial order.
        lost: Vec<LostRevocation>,
        count: usize,
    },
    Shrink {
        file: PathBuf,
        issuer: String,
        sequence: u64,
        before: u64,
        after: u64,
        expired: u64,
        limit_percent: u8,
    },
    Empty {
        file: PathBuf,
        issuer: String,
        /// The newest snapshot and its count for this issuer; `None`: no earlier one.
        previous: Option<(u64, u64)>,
    },
}

/// Why a publish was refused; nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RailError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for RailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing to publish; nothing was written.")?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::LostRevocations {
                file,
                issuer,
                sequence,
                lost,
                count,
            } => {
                write!(
                    f,
                    "{}: issuer {issuer:?} would lose {count} revocation{} that snapshot {sequence} publishes: ",
                    file.display(),
                    plural(*count)
                )?;
                for (position, one) in lost.iter().enumerate() {
                    let separator = if position == 0 { "" } else { "; " };
                    write!(f, "{separator}{one}")?;
                }
                if *count > lost.len() {
                    write!(f, "; and {} more", count - lost.len())?;
                }
                let serials: Vec<String> = lost.iter().map(|l| l.serial.to_hex()).collect();
                let more = if *count > lost.len() { " ..." } else { "" };
                write!(
                    f,
                    ". A revocation is permanent (RFC 5280 §5; BR §7.2 keeps it listed until the certificate \
                     expires). If it was recorded by mistake, re-run with --allow-unrevoke {}{more} (or \
                     allow_unrevoke in the configuration); the override is logged and recorded in the \
                     signed manifest",
                    serials.join(" ")
                )
            }
            Problem::Shrink {
                file,
                issuer,
                sequence,
                before,
                after,
                expired,
                limit_percent,
            } => write!(
                f,
                "{}: issuer {issuer:?} lists {after} certificates where snapshot {sequence} has {before}: \
                 {} fewer ({}%), not counting {expired} marked expired, more than the {limit_percent}% \
                 (max_shrink_percent) a publish may drop. Is the export truncated, or the wrong file? If \
                 the drop is intended, re-run with --allow-shrink",
                file.display(),
                before - after - expired,
                percent(before - after - expired, *before),
            ),
            Problem::Empty {
                file,
                issuer,
                previous: Some((sequence, count)),
            } => write!(
                f,
                "{}: issuer {issuer:?} has no certificates, but snapshot {sequence} has {count}. An empty \
                 input is never published over a non-empty snapshot (every responder would answer \
                 unauthorized and every CRL would be empty); check the export",
                file.display()
            ),
            Problem::Empty {
                file,
                issuer,
                previous: None,
            } => write!(
                f,
                "{}: issuer {issuer:?} has no certificates, and the store has no earlier snapshot of it to \
                 compare with. An empty input is refused (a failed export looks the same); publish once \
                 the CA has issued a certificate",
                file.display()
            ),
        }
    }
}

impl fmt::Display for LostRevocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "serial {} (revoked {}) ", self.serial, self.revoked_at)?;
        match &self.loss {
            Loss::Unrevoked => write!(f, "is good in the input"),
            Loss::RevocationTimeChanged { to } => write!(f, "has revocation time {to} in the input"),
            Loss::Removed { not_after: None } => {
                write!(f, "is missing from the input, and its notAfter is unknown")
            }
            Loss::Removed {
                not_after: Some(not_after),
            } => write!(
                f,
                "is marked expired in the input, but its notAfter {not_after} has not passed"
            ),
        }
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

fn percent(part: u64, whole: u64) -> u64 {
    (u128::from(part) * 100 / u128::from(whole.max(1))) as u64
}
