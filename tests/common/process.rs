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

/// What a finished program did.
pub struct Output {
    pub success: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for failure messages.
    pub what: String,
}

impl Output {
    /// stdout then stderr, for assertions that do not care which stream.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, Some(expected), "{self}");
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success, "{self}");
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\nexit code: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

/// Bound for one short command (openssl, publish, check-config): past it the command is
/// killed and the test fails, rather than hanging the suite.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// `program args...` to completion (see [`run_command`]).
pub fn run(program: &str, args: &[&str]) -> Output {
    run_command(Command::new(program).args(args))
}

/// Runs `command` to completion with no stdin, killing it if it outlives
/// [`COMMAND_LIMIT`]; stderr has ANSI colours removed.
pub fn run_command(command: &mut Command) -> Output {
    run_with_input(command, &[])
}

/// [`run_command`], with `stdin` written to the program's standard input.
pub fn run_with_input(command: &mut Command, stdin: &[u8]) -> Output {
    let what = command_line(command);
    let mut child = command
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| match e.kind() {
            // openssl is a prerequisite of the whole suite (README); other tools are
            // checked with skip_without before a test needs them.
            std::io::ErrorKind::NotFound => panic!(
                "{:?} is not installed, and this test cannot run without it ({what})",
                command.get_program()
            ),
            _ => panic!("cannot start {what}: {e}"),
        });
    if let Some(mut input) = child.stdin.take() {
        let bytes = stdin.to_vec();
        // A thread, so a program that writes before it reads cannot deadlock the test.
        std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        });
    }
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {COMMAND_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        success: status.success(),
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout.join().expect("stdout reader")).into_owned(),
        stderr: strip_ansi(&String::from_utf8_lossy(&stderr.join().expect("stderr reader"))),
        what,
    }
}

/// The program and its arguments, for failure messages: not `{command:?}`, which also
/// prints the environment set for it (credentials and PINs, in some tests).
pub fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| format!("{:?}", part.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn drain<R: Read + Send + 'static>(mut stream: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    })
}

/// The `ocsp-edge` binary under test with a clean, predictable environment: no inherited
/// `OCSP_EDGE*` overrides, uncoloured logs at info level.
pub fn ocsp_edge_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ocsp-edge"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OCSP_EDGE") {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").env("RUST_LOG", "info");
    command
}

/// The `ocsp-edge` binary under test, with `args`.
pub fn ocsp_edge(args: &[&str]) -> Output {
    run_command(ocsp_edge_command().args(args))
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
    // Straight to the process's stderr: libtest captures `eprintln!` of passing tests, and
    // a skip must be seen in a local run's output.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {missing}");
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

/// Polls `check` until it returns true; fails the test, naming `what`, after `limit`.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, check: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, check),
        "timed out after {limit:?} waiting for {what}"
    );
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

/// A loopback port that was free a moment ago, for programs that cannot be told to pick
/// their own and report it (prefer `127.0.0.1:0` wherever the program logs its address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// The stderr a child has written so far, one ANSI-stripped line after another.
pub type ChildLog = std::sync::Arc<std::sync::Mutex<String>>;

/// Spawns `command` (stdin and stdout closed) and reads its stderr into a [`ChildLog`]
/// for its whole life, so it never blocks on a full pipe; returns once `find` picks
/// something out of a line. If no line gives it within [`IO_TIMEOUT`], kills and reaps the
/// child and fails the test with `failure` and the log.
pub fn spawn_logged<T: Send + 'static>(
    command: &mut Command,
    failure: &str,
    find: impl Fn(&str) -> Option<T> + Send + 'static,
) -> (std::process::Child, ChildLog, T) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{failure}: cannot start it ({e})"));
    let stderr = child.stderr.take().unwrap();
    let log = ChildLog::default();
    let (found, wanted) = std::sync::mpsc::channel();
    let writer = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            writer.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(value) = find(&line) {
                let _ = found.send(value);
            }
        }
    });
    match wanted.recv_timeout(IO_TIMEOUT) {
        Ok(value) => (child, log, value),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{failure} ({e})\n{}", log.lock().unwrap());
        }
    }
}

/// A child process that is killed (by its PID) and reaped when dropped, so a failing
/// assertion does not leak it.
pub struct ChildGuard {
    pub child: std::process::Child,
    /// Named in failure messages.
    pub what: String,
}

impl ChildGuard {
    /// Spawns `command` (stdin closed; stdout and stderr as the command sets them).
    pub fn spawn(what: &str, command: &mut Command) -> ChildGuard {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        ChildGuard {
            child,
            what: what.to_string(),
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until something accepts connections on `addr`; fails the test if the child
    /// exits first or nothing listens within [`IO_TIMEOUT`].
    pub fn wait_listening(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}) before listening on {addr}", self.what);
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr}",
                self.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. `-HUP`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {}: {status}", self.what);
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the commands (see [`run_command`]) a few at a time; outputs in the same order.
pub fn run_parallel(commands: Vec<Command>) -> Vec<Output> {
    let mut outputs = Vec::with_capacity(commands.len());
    let mut pending = commands.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<Command> = pending.by_ref().take(4).collect();
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .into_iter()
                .map(|mut command| scope.spawn(move || run_command(&mut command)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        });
        outputs.extend(results);
    }
    outputs
}
