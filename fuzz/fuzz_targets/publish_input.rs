//! The publisher's inputs: OpenSSL `index.txt` and JSON Lines, as `parse_openssl_index`
//! and `parse_json_lines` read a whole file.
//!
//! Properties: no panic; an accepted file yields each serial once, and no more entries
//! than it has non-blank lines; a refused one names the file and a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::publish::input::{parse_json_lines, parse_openssl_index, InputError};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let path = Path::new("fuzz/index.txt");
    let parsed = if choice & 1 == 0 {
        parse_openssl_index(path, text)
    } else {
        parse_json_lines(path, text)
    };
    match parsed {
        Ok(parsed) => {
            let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
            assert!(parsed.records.len() + parsed.skipped_expired <= lines);
            let mut serials: Vec<_> = parsed.records.iter().map(|r| r.serial.clone()).collect();
            serials.sort();
            let before = serials.len();
            serials.dedup();
            assert_eq!(before, serials.len(), "a serial was accepted twice");
        }
        Err(InputError::Line {
            path: named,
            line,
            problem,
        }) => {
            assert_eq!(named, path);
            assert!(
                line >= 1 && line <= text.lines().count(),
                "line {line}: {problem}"
            );
            assert!(!problem.to_string().is_empty());
        }
        // Database rows come only from [issuer.postgres]; a file parser naming one would
        // point the operator at the wrong input.
        Err(row @ InputError::Row { .. }) => panic!("a file parser reported a database row: {row}"),
    }
});
