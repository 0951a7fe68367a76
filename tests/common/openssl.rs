//! The `openssl` CLI as an OCSP client and request builder.

use super::*;

pub fn openssl(args: &[&str]) -> Output {
    run("openssl", args)
}

/// `openssl args...` run in `dir` (relative file names resolve there); it must succeed.
#[track_caller]
pub fn openssl_in(dir: &Path, args: &[&str]) -> Output {
    let out = run_command(Command::new("openssl").current_dir(dir).args(args));
    assert!(out.success, "{out}");
    out
}

/// `openssl ocsp` as a client against `ocsp` (POST, no nonce, SHA-256 CertID when asked,
/// verified against the demo root): the status it prints for `cert` (`good`, `revoked`,
/// ...) and its whole output.
pub fn openssl_status(ocsp: SocketAddr, issuer: &Path, cert: &Path, sha256: bool) -> (String, Output) {
    let url = format!("http://{ocsp}/");
    let (issuer, cert, root) = (
        issuer.display().to_string(),
        cert.display().to_string(),
        root_ca().display().to_string(),
    );
    let mut args = vec!["ocsp", "-issuer", &issuer];
    if sha256 {
        args.push("-sha256");
    }
    args.extend(["-cert", &cert, "-url", &url, "-CAfile", &root, "-no_nonce"]);
    let out = openssl(&args);
    let prefix = format!("{cert}: ");
    let status = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("<none>")
        .trim()
        .to_string();
    (status, out)
}

/// Builds a DER OCSP request with `openssl ocsp -reqout` (one CertID for `cert`).
pub fn openssl_request(issuer: &Path, cert: &Path, sha256: bool, nonce: bool) -> Vec<u8> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let issuer = issuer.display().to_string();
    let cert = cert.display().to_string();
    let reqout = out.path().display().to_string();
    let mut args = vec!["ocsp", "-issuer", issuer.as_str()];
    if sha256 {
        args.push("-sha256");
    }
    args.extend(["-cert", cert.as_str(), "-reqout", reqout.as_str()]);
    if !nonce {
        args.push("-no_nonce");
    }
    let result = openssl(&args);
    assert!(result.success, "{result}");
    std::fs::read(out.path()).unwrap()
}

/// A valid request (SHA-1, no nonce) for the first good EC certificate.
pub fn good_request() -> Vec<u8> {
    static REQUEST: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    REQUEST
        .get_or_init(|| {
            let row = first_with_status("ec", 'V');
            openssl_request(&issuer_ca("ec"), &row.cert("ec"), false, false)
        })
        .clone()
}
