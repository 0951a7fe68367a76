//! The demo PKI under `fixtures/demo`: paths, its `index.txt` rows, the times they hold,
//! and [`Pki`], a private copy a test may revoke certificates in.

use super::*;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/demo`, absolute.
pub fn demo() -> PathBuf {
    repo().join("fixtures/demo")
}

pub fn root_ca() -> PathBuf {
    demo().join("root/ca.pem")
}

/// `fixtures/demo/<issuer>/ca.pem` (issuer = "ec" or "rsa").
pub fn issuer_ca(issuer: &str) -> PathBuf {
    demo().join(issuer).join("ca.pem")
}

pub fn cert_path(issuer: &str, serial: &str) -> PathBuf {
    demo().join(issuer).join("certs").join(format!("{serial}.pem"))
}

pub fn unassigned(issuer: &str) -> PathBuf {
    demo().join(issuer).join("unassigned.pem")
}

/// One line of an OpenSSL `index.txt`.
#[derive(Clone, Debug)]
pub struct IndexRow {
    /// `V`, `R` or `E`.
    pub status: char,
    /// Upper-case hex, as in the file (and the certificate's file name).
    pub serial: String,
    /// The revocation field: `date[,reason]` or `date,keyTime,T`; empty unless `R`.
    pub revocation: String,
    /// The whole line, as in the file.
    pub line: String,
}

impl IndexRow {
    /// The revocation date as (year, month, day, hour, minute, second).
    pub fn revoked_at(&self) -> Option<DateTime> {
        let date = self.revocation.split(',').next()?;
        parse_utc_time(date)
    }

    /// The reason as `openssl ocsp` prints it (`Reason: ...`) for a snapshot published with
    /// the default reason policy, `None` if the response carries no reasonCode: none is
    /// recorded, or it is `unspecified`, which the publisher omits (CA/Browser Forum BR
    /// §7.2.2/§7.3, `revocation_reasons = "baseline_requirements"`).
    pub fn openssl_reason(&self) -> Option<&'static str> {
        let name = self.revocation.split(',').nth(1)?;
        Some(match name {
            "unspecified" => return None,
            "keyCompromise" | "keyTime" => "keyCompromise",
            "CACompromise" | "CAkeyTime" => "cACompromise",
            "affiliationChanged" => "affiliationChanged",
            "superseded" => "superseded",
            "cessationOfOperation" => "cessationOfOperation",
            "certificateHold" => "certificateHold",
            "removeFromCRL" => "removeFromCRL",
            "privilegeWithdrawn" => "privilegeWithdrawn",
            "AACompromise" => "aACompromise",
            other => panic!("index reason {other:?} not known to the test"),
        })
    }

    pub fn cert(&self, issuer: &str) -> PathBuf {
        cert_path(issuer, &self.serial)
    }
}

pub fn parse_index(text: &str) -> Vec<IndexRow> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(fields.len() >= 4, "index line {line:?}");
            IndexRow {
                status: fields[0].chars().next().unwrap(),
                serial: fields[3].to_string(),
                revocation: fields[2].to_string(),
                line: line.to_string(),
            }
        })
        .collect()
}

/// The rows of `fixtures/demo/<issuer>/index.txt`.
pub fn index_rows(issuer: &str) -> Vec<IndexRow> {
    let text = std::fs::read_to_string(demo().join(issuer).join("index.txt")).unwrap();
    parse_index(&text)
}

/// (year, month, day, hour, minute, second), UTC.
pub type DateTime = (i32, u32, u32, u32, u32, u32);

/// `YYMMDDHHMMSSZ` (UTCTime as in index.txt).
pub fn parse_utc_time(text: &str) -> Option<DateTime> {
    let d = text.strip_suffix('Z')?;
    if d.len() != 12 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().unwrap();
    let yy = n(0..2) as i32;
    Some((
        if yy < 50 { 2000 + yy } else { 1900 + yy },
        n(2..4),
        n(4..6),
        n(6..8),
        n(8..10),
        n(10..12),
    ))
}

/// openssl's `Feb  1 00:00:00 2026 GMT`.
pub fn parse_openssl_time(text: &str) -> Option<DateTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == parts[0])? as u32 + 1;
    let day = parts[1].parse().ok()?;
    let hms: Vec<u32> = parts[2]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    Some((parts[3].parse().ok()?, month, day, hms[0], hms[1], hms[2]))
}

pub fn unix_seconds(t: DateTime) -> i64 {
    chrono::NaiveDate::from_ymd_opt(t.0, t.1, t.2)
        .and_then(|d| d.and_hms_opt(t.3, t.4, t.5))
        .expect("valid date")
        .and_utc()
        .timestamp()
}

pub fn now_seconds() -> i64 {
    UnixTime::now().seconds()
}

/// A private copy of the demo PKI that a test may revoke certificates in.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["root", "ec", "rsa"] {
            copy_dir(&demo().join(sub), &dir.path().join(sub));
        }
        std::fs::copy(demo().join("publish.toml"), dir.path().join("publish.toml")).unwrap();
        Pki { dir }
    }

    pub fn toml(&self) -> PathBuf {
        self.dir.path().join("publish.toml")
    }

    pub fn publish(&self, out: &Path) -> PublishReport {
        publish_from(&self.toml(), out)
    }

    pub fn publish_at(&self, out: &Path, now: UnixTime) -> PublishReport {
        publish_at(&self.toml(), out, now)
    }

    /// Sets the validity of every issuer's CRLs.
    pub fn set_crl_validity(&self, validity: &str) {
        let text = std::fs::read_to_string(self.toml()).unwrap();
        let replaced = text.replace("validity = \"7d\"", &format!("validity = \"{validity}\""));
        assert_ne!(text, replaced, "no CRL validity in publish.toml");
        std::fs::write(self.toml(), replaced).unwrap();
    }

    /// `<issuer>/index.txt` of this copy.
    pub fn index(&self, issuer: &str) -> PathBuf {
        self.dir.path().join(issuer).join("index.txt")
    }

    /// Rewrites `<issuer>/index.txt`: `edit` sees each line's tab-separated fields and
    /// returns whether to keep the line.
    pub fn edit_index(&self, issuer: &str, mut edit: impl FnMut(&mut Vec<String>) -> bool) {
        let path = self.index(issuer);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            if edit(&mut fields) {
                out.push_str(&fields.join("\t"));
                out.push('\n');
            }
        }
        std::fs::write(&path, out).unwrap();
    }

    /// Switches `issuer` from its index.txt to a JSON Lines feed with the same content
    /// (`E` lines as `expired`, with their notAfter), and returns the feed's path.
    pub fn use_json_lines(&self, issuer: &str) -> PathBuf {
        let feed = self.dir.path().join(issuer).join("certs.jsonl");
        let text = std::fs::read_to_string(self.index(issuer)).unwrap();
        let lines: Vec<String> = text.lines().map(json_line_of_index_line).collect();
        std::fs::write(&feed, lines.join("\n") + "\n").unwrap();
        let toml = std::fs::read_to_string(self.toml()).unwrap();
        let from = format!("index = \"{issuer}/index.txt\"");
        let to = format!("json_lines = \"{issuer}/certs.jsonl\"");
        assert!(toml.contains(&from), "{from} not in publish.toml");
        std::fs::write(self.toml(), toml.replace(&from, &to)).unwrap();
        feed
    }

    /// Turns the `V` line of `serial` in ec/index.txt into a keyCompromise revocation.
    pub fn revoke_ec(&self, serial: &str) {
        let path = self.dir.path().join("ec/index.txt");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut changed = 0;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                let mut fields: Vec<&str> = line.split('\t').collect();
                if fields.len() >= 4 && fields[3] == serial && fields[0] == "V" {
                    fields[0] = "R";
                    fields[2] = "261101000000Z,keyCompromise";
                    changed += 1;
                }
                fields.join("\t")
            })
            .collect();
        assert_eq!(changed, 1, "serial {serial} not found as a V line");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
}

/// One index.txt line (as the demo writes them) as the equivalent JSON Lines entry.
pub fn json_line_of_index_line(line: &str) -> String {
    let fields: Vec<&str> = line.split('\t').collect();
    let rfc3339 = |t: &str| {
        let (y, mo, d, h, mi, s) = parse_utc_time(t).unwrap_or_else(|| panic!("time {t:?}"));
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    };
    let (serial, not_after) = (fields[3], rfc3339(fields[1]));
    match fields[0] {
        "V" => format!(r#"{{"serial":"{serial}","status":"good","not_after":"{not_after}"}}"#),
        "E" => format!(r#"{{"serial":"{serial}","status":"expired","not_after":"{not_after}"}}"#),
        _ => {
            let mut parts = fields[2].split(',');
            let at = rfc3339(parts.next().unwrap_or_default());
            let reason = match (parts.next(), parts.next()) {
                (None, _) => String::new(),
                // openssl's `keyTime,YYYYMMDDHHMMSSZ`: keyCompromise with an invalidity date.
                (Some("keyTime"), Some(t)) => format!(
                    r#","reason":"keyCompromise","invalidity_date":"{}-{}-{}T{}:{}:{}Z""#,
                    &t[0..4],
                    &t[4..6],
                    &t[6..8],
                    &t[8..10],
                    &t[10..12],
                    &t[12..14]
                ),
                (Some(reason), _) => format!(r#","reason":"{reason}""#),
            };
            format!(
                r#"{{"serial":"{serial}","status":"revoked","revoked_at":"{at}"{reason},"not_after":"{not_after}"}}"#
            )
        }
    }
}

pub fn first_with_status(issuer: &str, status: char) -> IndexRow {
    index_rows(issuer)
        .into_iter()
        .find(|r| r.status == status)
        .expect("fixture row")
}
