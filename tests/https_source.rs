//! An HTTPS origin is verified: with the origin's CA in `ca_file` the responder replicates
//! over TLS; without it (or with the wrong name) it refuses to talk to the origin and
//! serves nothing from it. The origin is a small Python TLS static server on 127.0.0.1
//! with a certificate made by openssl for IP 127.0.0.1.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A CA and a server certificate for `ip`, in `dir`: ca.pem, server.pem, server.key.
fn make_tls_material(dir: &Path, ip: &str) {
    let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl_in(
        dir,
        &[
            &["req", "-x509"][..],
            &p256,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=origin test CA",
            ],
        ]
        .concat(),
    );
    openssl_in(
        dir,
        &[
            &["req"][..],
            &p256,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=origin",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl_in(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// Python's static file server over TLS, serving `root` on `addr`.
fn https_origin(root: &Path, tls: &Path, addr: SocketAddr) -> ChildGuard {
    let script = format!(
        "import http.server, ssl, functools\n\
         handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={root:?})\n\
         server = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), handler)\n\
         context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         context.load_cert_chain({cert:?}, {key:?})\n\
         server.socket = context.wrap_socket(server.socket, server_side=True)\n\
         server.serve_forever()\n",
        root = root.display().to_string(),
        port = addr.port(),
        cert = tls.join("server.pem").display().to_string(),
        key = tls.join("server.key").display().to_string(),
    );
    let mut origin = ChildGuard::spawn(
        "the HTTPS origin",
        Command::new("python3")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    origin.wait_listening(addr);
    origin
}

/// Starts a responder whose only source is `url` (with `ca_file` when given); returns the
/// sequence it serves once it is `expect`, or what it serves (if anything) after `wait`.
fn sequence_served_from(url: &str, ca_file: Option<&Path>, wait: Duration, expect: u64) -> Option<u64> {
    let cache = tempfile::tempdir().unwrap();
    let ca_line = ca_file
        .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    let config = format!(
        "[snapshots]\npoll_interval = \"200ms\"\nmax_backoff = \"1s\"\n{}{ca_line}",
        http_source(url)
    );
    let (responder, _config) =
        ServeProcess::start(&config, &["--snapshots", &cache.path().display().to_string()]);
    let serving = || served_sequence(responder.admin).filter(|s| *s > 0);
    wait_until(wait, || serving() == Some(expect));
    serving()
}

#[test]
fn an_https_origin_is_used_only_when_its_certificate_verifies() {
    let test = "an_https_origin_is_used_only_when_its_certificate_verifies";
    if skip_without(test, not_on_path("openssl").or_else(|| not_on_path("python3"))) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tls = work.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    make_tls_material(&tls, "127.0.0.1");
    let origin_dir = work.path().join("origin");
    let sequence = publish_demo(&origin_dir).sequence;
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _origin = https_origin(&origin_dir, &tls, addr);
    let url = format!("https://{addr}/");

    let trusted = sequence_served_from(&url, Some(&tls.join("ca.pem")), Duration::from_secs(15), sequence);
    assert_eq!(trusted, Some(sequence), "replication over verified HTTPS");

    let untrusted = sequence_served_from(&url, None, Duration::from_secs(3), sequence);
    assert_eq!(
        untrusted, None,
        "an origin whose certificate does not verify must not be used"
    );
}
