//! The publisher's safety rails through the binary (issue 13), for every input kind
//! (index.txt, JSON Lines) and publish kind (full, delta): a publish that would lose a
//! revocation, shrink sharply or go empty exits 65 (EX_DATAERR) with a message naming the
//! file, the serials and the flag that overrides, and writes nothing; serials RFC 5280
//! forbids are refused with file and line.

mod common;

use common::{file_names, newest_manifest, ocsp_edge, Output, Pki};
use std::path::PathBuf;

const EX_DATAERR: i32 = 65;
/// Revoked 2026-02-01 (keyCompromise) in the demo's ec/index.txt; notAfter 2036.
const REVOKED: &str = "19D65DDD1A376A089436F314272F7D18";

/// One way of publishing the demo PKI's ec issuer.
struct Case {
    name: &'static str,
    pki: Pki,
    json: bool,
    flags: Vec<&'static str>,
    out: tempfile::TempDir,
}

impl Case {
    /// index.txt and JSON Lines, each published full and as deltas.
    fn all() -> Vec<Case> {
        let case = |name, json, flags: &[&'static str]| {
            let pki = Pki::new();
            if json {
                pki.use_json_lines("ec");
            }
            Case {
                name,
                pki,
                json,
                flags: flags.to_vec(),
                out: tempfile::tempdir().unwrap(),
            }
        };
        vec![
            case("index.txt, full", false, &[]),
            case("index.txt, delta", false, &["--delta"]),
            case("JSON Lines, full", true, &[]),
            case("JSON Lines, delta", true, &["--delta"]),
        ]
    }

    /// The ec input file, as messages name it.
    fn input(&self) -> PathBuf {
        let dir = self.pki.dir.path().join("ec");
        if self.json {
            dir.join("certs.jsonl")
        } else {
            dir.join("index.txt")
        }
    }

    /// Edits ec's records as index.txt fields (the JSON Lines feed is rebuilt from them).
    fn edit(&self, edit: impl FnMut(&mut Vec<String>) -> bool) {
        self.pki.edit_index("ec", edit);
        if self.json {
            let text = std::fs::read_to_string(self.pki.index("ec")).unwrap();
            let lines: Vec<String> = text.lines().map(common::json_line_of_index_line).collect();
            let joined = if lines.is_empty() {
                String::new()
            } else {
                lines.join("\n") + "\n"
            };
            std::fs::write(self.input(), joined).unwrap();
        }
    }

    fn publish(&self, extra: &[&str]) -> Output {
        let toml = self.pki.toml();
        let mut args = vec![
            "publish",
            "--config",
            toml.to_str().unwrap(),
            "--out",
            self.out.path().to_str().unwrap(),
        ];
        args.extend(&self.flags);
        args.extend(extra);
        ocsp_edge(&args)
    }

    fn publish_ok(&self, extra: &[&str]) -> Output {
        let ran = self.publish(extra);
        assert_eq!(ran.code, Some(0), "{}: {ran}", self.name);
        ran
    }

    /// Publishes with `extra`, expecting a refusal that wrote nothing; returns stderr.
    fn refused(&self, extra: &[&str]) -> String {
        let before = file_names(self.out.path());
        let ran = self.publish(extra);
        assert_eq!(ran.code, Some(EX_DATAERR), "{}: {ran}", self.name);
        assert_eq!(
            file_names(self.out.path()),
            before,
            "{}: a refused publish wrote something",
            self.name
        );
        assert!(
            ran.stderr.contains("refusing to publish; nothing was written."),
            "{}: {ran}",
            self.name
        );
        ran.stderr
    }

    /// The newest manifest's text.
    fn newest_manifest(&self) -> String {
        std::fs::read_to_string(newest_manifest(self.out.path())).unwrap()
    }
}

fn assert_contains(haystack: &str, needles: &[&str], case: &str) {
    for needle in needles {
        assert!(haystack.contains(needle), "{case}: {needle:?} not in\n{haystack}");
    }
}

fn is_line(fields: &[String], serial: &str) -> bool {
    fields.get(3).is_some_and(|s| s == serial)
}

#[test]
fn a_revoked_certificate_turned_good_is_refused_unless_allowed_and_the_override_is_recorded() {
    for case in Case::all() {
        case.publish_ok(&[]);
        case.edit(|fields| {
            if is_line(fields, REVOKED) {
                fields[0] = "V".into();
                fields[2].clear();
            }
            true
        });
        let message = case.refused(&[]);
        assert_contains(
            &message,
            &[
                &format!(
                    "{}: issuer \"ec\" would lose 1 revocation that snapshot ",
                    case.input().display()
                ),
                &format!("serial {REVOKED} (revoked 2026-02-01T00:00:00Z) is good in the input"),
                &format!("re-run with --allow-unrevoke {REVOKED} (or allow_unrevoke in the configuration)"),
            ],
            case.name,
        );
        // An override for another serial changes nothing.
        case.refused(&["--allow-unrevoke", "5CE07BDABF193760382B0C01035C5681"]);

        let ran = case.publish_ok(&["--allow-unrevoke", REVOKED]);
        assert_contains(&ran.stderr, &["allow_unrevoke", REVOKED], case.name);
        assert_contains(
            &case.newest_manifest(),
            &["\"unrevoked\"", &format!("\"serial\": \"{REVOKED}\"")],
            case.name,
        );
    }
}

#[test]
fn a_changed_revocation_time_is_refused() {
    for case in Case::all() {
        case.publish_ok(&[]);
        case.edit(|fields| {
            if is_line(fields, REVOKED) {
                fields[2] = "260202000000Z,keyCompromise".into();
            }
            true
        });
        let message = case.refused(&[]);
        assert_contains(
            &message,
            &[&format!(
                "serial {REVOKED} (revoked 2026-02-01T00:00:00Z) has revocation time 2026-02-02T00:00:00Z in the input"
            )],
            case.name,
        );
    }
}

#[test]
fn a_revoked_certificate_leaves_only_once_the_input_shows_it_expired() {
    for case in Case::all() {
        case.publish_ok(&[]);
        let original = std::fs::read_to_string(case.pki.index("ec")).unwrap();
        case.edit(|fields| !is_line(fields, REVOKED));
        let message = case.refused(&["--allow-shrink"]);
        assert_contains(
            &message,
            &[&format!(
                "serial {REVOKED} (revoked 2026-02-01T00:00:00Z) is missing from the input, and its notAfter is unknown"
            )],
            case.name,
        );

        std::fs::write(case.pki.index("ec"), &original).unwrap();
        let expire = |not_after: &'static str| {
            move |fields: &mut Vec<String>| {
                if is_line(fields, REVOKED) {
                    fields[0] = "E".into();
                    fields[1] = not_after.into();
                    fields[2].clear();
                }
                true
            }
        };
        case.edit(expire("360101000000Z"));
        let message = case.refused(&[]);
        assert_contains(
            &message,
            &["is marked expired in the input, but its notAfter 2036-01-01T00:00:00Z has not passed"],
            case.name,
        );
        std::fs::write(case.pki.index("ec"), &original).unwrap();
        case.edit(expire("200101000000Z"));
        case.publish_ok(&[]);
    }
}

#[test]
fn a_truncated_input_is_refused_unless_allow_shrink_or_the_certificates_expired() {
    for case in Case::all() {
        case.publish_ok(&[]);
        let original = std::fs::read_to_string(case.pki.index("ec")).unwrap();
        // Cut the last 20 good certificates, as an export interrupted near its end would.
        let good: Vec<String> = original
            .lines()
            .filter(|l| l.starts_with('V'))
            .map(|l| l.split('\t').nth(3).unwrap().to_string())
            .collect();
        let cut = &good[good.len() - 20..];
        case.edit(|fields| !cut.contains(&fields[3]));
        let message = case.refused(&[]);
        assert_contains(
            &message,
            &[
                &format!("{}: issuer \"ec\" lists 79 certificates where snapshot ", case.input().display()),
                " has 99: 20 fewer (20%), not counting 0 marked expired, more than the 10% (max_shrink_percent) a publish may drop",
                "re-run with --allow-shrink",
            ],
            case.name,
        );
        case.publish_ok(&["--allow-shrink"]);

        // The same 20 marked expired by the CA: not a shrink the rail minds.
        let other = Case {
            out: tempfile::tempdir().unwrap(),
            ..case
        };
        std::fs::write(other.pki.index("ec"), &original).unwrap();
        other.edit(|_| true);
        other.publish_ok(&[]);
        other.edit(|fields| {
            if cut.contains(&fields[3]) {
                fields[0] = "E".into();
            }
            true
        });
        other.publish_ok(&[]);
    }
}

#[test]
fn an_empty_input_is_refused_even_with_every_override() {
    for case in Case::all() {
        case.publish_ok(&[]);
        let revoked: Vec<String> = std::fs::read_to_string(case.pki.index("ec"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('R'))
            .map(|l| l.split('\t').nth(3).unwrap().to_string())
            .collect();
        case.edit(|_| false);
        let mut overrides = vec!["--allow-shrink", "--allow-unrevoke"];
        overrides.extend(revoked.iter().map(String::as_str));
        let message = case.refused(&overrides);
        assert_contains(
            &message,
            &[
                &format!(
                    "{}: issuer \"ec\" has no certificates, but snapshot ",
                    case.input().display()
                ),
                " has 99. An empty input is never published over a non-empty snapshot",
            ],
            case.name,
        );
    }
}

#[test]
fn serial_zero_and_serials_over_twenty_octets_are_refused_with_file_and_line() {
    // Line 101: after the demo's 100 lines.
    for (serial, problem) in [
        (
            "00",
            "serial 00 is zero; RFC 5280 §4.1.2.2 requires a positive serial number",
        ),
        (
            "8011111111111111111111111111111111111111",
            "serial 8011111111111111111111111111111111111111 is 21 octets long as a DER INTEGER; \
             RFC 5280 §4.1.2.2 allows at most 20",
        ),
    ] {
        for case in Case::all().into_iter().step_by(2) {
            let path = case.pki.index("ec");
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str(&format!("V\t360101000000Z\t\t{serial}\tunknown\t/CN=legacy\n"));
            std::fs::write(&path, text).unwrap();
            // Rebuilds the JSON Lines feed from the index, when the case uses one.
            case.edit(|_| true);
            let ran = case.publish(&[]);
            assert_eq!(ran.code, Some(EX_DATAERR), "{}: {ran}", case.name);
            assert_contains(
                &ran.stderr,
                &[
                    &format!("{}:101: {problem}", case.input().display()),
                    "allow_legacy_serials = true or pass --allow-legacy-serials",
                ],
                case.name,
            );
            case.publish_ok(&["--allow-legacy-serials"]);
        }
    }
}
