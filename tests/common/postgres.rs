//! A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, the server
//! on a free loopback port and a Unix socket in that directory, stopped by its PID.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root (CI does) `initdb` and
//! the server run as `nobody`, with the temporary directory handed to that user.
//! The superuser `postgres` connects without a password over the socket and from
//! 127.0.0.1; every other role must give its password (SCRAM), so tests can check
//! credentials.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding `initdb`, `postgres` and `psql`: `pg_config --bindir` when that
/// has them (Debian's `pg_config` may come without the server), else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's versioned directory, not on PATH).
pub fn bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| {
        ["initdb", "postgres", "psql"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_server(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// For [`super::skip_without`].
pub fn missing() -> Option<String> {
    bindir().is_none().then(|| {
        "PostgreSQL server binaries (initdb, postgres, psql; Debian package postgresql) are not installed"
            .into()
    })
}

/// TLS material for the server: certificate and key (PEM).
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct PgServer {
    bindir: PathBuf,
    /// Holds `data/`, the socket and the log; owned by the server's user.
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// (uid, gid) the server runs as when the tests run as root.
    run_as: Option<(u32, u32)>,
}

impl PgServer {
    /// A fresh server without TLS.
    pub fn start() -> PgServer {
        PgServer::start_with(None)
    }

    /// A fresh server; with `tls`, it presents that certificate and every role but the
    /// superuser must connect with TLS.
    pub fn start_with(tls: Option<&ServerTls>) -> PgServer {
        let bindir = bindir().expect("PostgreSQL binaries (check with postgres::missing first)");
        let dir = tempfile::tempdir().unwrap();
        let run_as = is_root().then(nobody);
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid);
        }
        let mut server = PgServer {
            bindir,
            dir,
            port: 0,
            child: None,
            run_as,
        };
        server.initdb(tls);
        server.launch();
        server
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bindir.join(program));
        command.env("LC_ALL", "C").env_remove("PGPASSWORD");
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn initdb(&mut self, tls: Option<&ServerTls>) {
        let out = self
            .command("initdb")
            .args(["-D"])
            .arg(self.data())
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // With TLS, every role but the superuser must use it: a login that succeeds proves
        // the connection was encrypted.
        let others = if tls.is_some() { "hostssl" } else { "host" };
        let hba = format!(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\n{others} all all 127.0.0.1/32 scram-sha-256\n"
        );
        std::fs::write(self.data().join("pg_hba.conf"), hba).unwrap();
        let mut conf = String::from("fsync = off\nlog_min_messages = warning\n");
        if let Some(tls) = tls {
            // The server insists its key belongs to it and is private.
            let (cert, key) = (
                self.dir.path().join("server.crt"),
                self.dir.path().join("server.key"),
            );
            std::fs::copy(&tls.cert, &cert).unwrap();
            std::fs::copy(&tls.key, &key).unwrap();
            std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
            if let Some((uid, gid)) = self.run_as {
                chown(&cert, uid, gid);
                chown(&key, uid, gid);
            }
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert.display(),
                key.display()
            ));
        }
        let path = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&conf);
        std::fs::write(&path, text).unwrap();
    }

    /// Starts the server process (on the same port when it ran before) and waits until it
    /// answers.
    fn launch(&mut self) {
        if self.port == 0 {
            self.port = free_loopback_port();
        }
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
            ])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("postgres exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs SQL as the superuser (psql over the Unix socket); the output of the last
    /// statement, tuples only, `|`-separated.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|e| panic!("psql: {e}\nSQL: {sql}"))
    }

    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        use std::io::Write;
        // A script on stdin (not -c), so each statement commits on its own and psql
        // meta-commands such as `\c DB` work.
        let mut child = Command::new(self.bindir.join("psql"))
            .env("LC_ALL", "C")
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut stdin = child.stdin.take().ok_or("psql stdin")?;
        stdin.write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Stops the server (fast shutdown: open connections are cut) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT is PostgreSQL's fast shutdown; the PID is our own child's.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts the stopped server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `nobody`'s uid and gid.
fn nobody() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .expect("id nobody");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// A port on 127.0.0.1 nobody listens on right now (the server binds it moments later).
fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
