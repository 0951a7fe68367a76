//! External programs and the file system: running a program, skipping a test whose tool
//! is missing, waiting, and comparing directories.

use super::*;

/// `key=ADDRESS` from a log line.
pub fn log_address(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(key)? + key.len();
    line[start..]
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// Removes ANSI colour sequences, in case the subscriber colours despite NO_COLOR.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub struct Output {
    pub success: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout then stderr, for assertions that do not care which stream.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit ok: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: strip_ansi(&String::from_utf8_lossy(&out.stderr)),
    }
}

/// The `ocsp-edge` binary under test, with `args`.
pub fn ocsp_edge(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ocsp-edge"), args)
}

/// Whether a test must stop because something it needs is missing (`missing` names it, or
/// is `None` when everything is there). Locally it says `SKIPPED` on stderr and the test
/// returns; under CI (`CI` set, as `.ci/run` runs) it fails the test, because a check that
/// did not run is not a check that passed, and `.ci/run` installs every tool.
pub fn skip_without(test: &str, missing: Option<String>) -> bool {
    let Some(missing) = missing else {
        return false;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {missing}, and CI must run every test (.ci/run installs the tools)"
    );
    eprintln!("SKIPPED {test}: {missing}");
    true
}

/// `Some("PROGRAM is not installed")` when `program` is not on PATH (for [`skip_without`]).
pub fn not_on_path(program: &str) -> Option<String> {
    (!have(program)).then(|| format!("{program} is not installed"))
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Polls `check` until it returns true or `limit` passes; returns its last answer.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies a directory tree (files and subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file in `dir` with its bytes, sorted by name: what a test compares to prove that
/// nothing was created, deleted or changed.
pub fn dir_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// Every file name in `dir` (temporary ones included), sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
