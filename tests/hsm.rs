//! Keys in a PKCS#11 token (SoftHSM2): every signature of a publish made by the token,
//! checked with real clients, and every way a token can fail, with its exit code.
//!
//! Each test initialises its own token in a temporary directory (`SOFTHSM2_CONF`) and
//! generates keys inside it with `pkcs11-tool` (sensitive, never extractable, as in an HSM).
//! The CA certificates for those keys are made by openssl from the token's *public* keys
//! (`-force_pubkey`) and signed with the demo root's and demo EC CA's file keys: that is how
//! an HSM key gets its certificate in practice (a CSR signed by the parent CA), and it needs
//! no private key outside the token.
//!
//! The publisher runs as the real binary (`ocsp-edge publish`), so exit codes, messages and
//! everything it prints are what an operator sees.

mod common;

use common::{not_on_path, skip_without, CrlView, Output};
use ocsp_edge::server::Background;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The user PIN of every test token: distinctive, so a leak into any output is found.
const PIN: &str = "Pin-7f3a9c1e";
const SO_PIN: &str = "So-5e2b8d40";
const TOKEN: &str = "ocsp-edge-test";

const SIGNER_ID: &str = "01";
const CA_ID: &str = "02";

fn softhsm_module() -> Option<PathBuf> {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Whether the tools are there; `None` when the test may run.
fn missing_tools() -> Option<String> {
    not_on_path("softhsm2-util")
        .or_else(|| not_on_path("pkcs11-tool"))
        .or_else(|| not_on_path("openssl"))
        .or_else(|| {
            softhsm_module()
                .is_none()
                .then(|| "libsofthsm2.so is not installed".into())
        })
}

/// A SoftHSM2 token in a temporary directory.
struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
}

impl SoftHsm {
    fn new() -> SoftHsm {
        let dir = tempfile::tempdir().unwrap();
        let module = softhsm_module().unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let hsm = SoftHsm { dir, module };
        hsm.write_conf("softhsm2.conf", "");
        let mut init = hsm.command("softhsm2-util");
        init.args([
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ]);
        run_ok(init);
        std::fs::write(hsm.pin_file(), format!("{PIN}\n")).unwrap();
        hsm
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A SoftHSM2 configuration over this token directory, with `extra` lines.
    fn write_conf(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.path(name);
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n{extra}",
            self.path("tokens").display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn conf(&self) -> PathBuf {
        self.path("softhsm2.conf")
    }

    fn pin_file(&self) -> PathBuf {
        self.path("pin")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SOFTHSM2_CONF", self.conf());
        command
    }

    fn tool(&self, args: &[&str]) -> Command {
        let mut command = self.command("pkcs11-tool");
        command
            .arg("--module")
            .arg(&self.module)
            .args(["--token-label", TOKEN, "--login", "--pin", PIN])
            .args(args);
        command
    }

    /// Generates a key pair inside the token (sensitive, never extractable).
    fn keypair(&self, key_type: &str, label: &str, id: &str) {
        run_ok(self.tool(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--usage-sign",
            "--label",
            label,
            "--id",
            id,
        ]));
    }

    /// The public half of key `id`, as PEM (for openssl -force_pubkey).
    fn public_pem(&self, id: &str) -> PathBuf {
        let der = self.path(&format!("pub-{id}.der"));
        let pem = self.path(&format!("pub-{id}.pem"));
        let read = self
            .tool(&[
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                id,
                "-o",
                path_str(&der),
            ])
            .output()
            .unwrap();
        if !read.status.success() {
            // This pkcs11-tool cannot export P-384 public keys ("cannot create EVP_PKEY"):
            // wrap the CKA_EC_POINT it lists in a SubjectPublicKeyInfo ourselves.
            std::fs::write(&der, self.p384_spki(id)).unwrap();
        }
        // pkcs11-tool writes DER, except for Ed25519 keys, which it writes as PEM already.
        let form = if std::fs::read(&der).unwrap().starts_with(b"-----BEGIN") {
            "PEM"
        } else {
            "DER"
        };
        let out = common::openssl(&[
            "pkey",
            "-pubin",
            "-inform",
            form,
            "-in",
            path_str(&der),
            "-out",
            path_str(&pem),
        ]);
        assert!(out.success, "{out}");
        pem
    }

    /// SubjectPublicKeyInfo of P-384 key `id`, from the EC_POINT `--list-objects` shows.
    fn p384_spki(&self, id: &str) -> Vec<u8> {
        let listing = run_ok(self.tool(&["--list-objects", "--type", "pubkey", "--id", id]));
        // pkcs11-tool may list every public key whatever `--id` says, in any order: take
        // the EC_POINT of the object whose own `ID:` line is `id`.
        let hex = listing
            .split("Public Key Object")
            .find(|object| {
                object.lines().any(|l| {
                    l.trim()
                        .strip_prefix("ID:")
                        .is_some_and(|own| own.trim().eq_ignore_ascii_case(id))
                })
            })
            .and_then(|object| object.lines().find_map(|l| l.trim().strip_prefix("EC_POINT:")))
            .unwrap_or_else(|| panic!("no EC_POINT for ID {id} in {listing}"))
            .trim();
        let wrapped = hex::decode(hex).unwrap();
        // OCTET STRING (0x04, 0x61) around the 97-byte uncompressed point.
        assert_eq!(&wrapped[..3], &[0x04, 0x61, 0x04], "{listing}");
        // SEQUENCE { SEQUENCE { id-ecPublicKey, secp384r1 }, BIT STRING { 0, point } }
        let mut spki = hex::decode("3076301006072a8648ce3d020106052b81040022036200").unwrap();
        spki.extend_from_slice(&wrapped[2..]);
        spki
    }

    /// A key reference for `selector` (e.g. `object=ocsp-signer` or `id=%02`).
    fn uri(&self, selector: &str) -> String {
        format!(
            "pkcs11:token={TOKEN};{selector};type=private?module-path={}&pin-source=file:{}",
            self.module.display(),
            self.pin_file().display()
        )
    }
}

fn run_ok(mut command: Command) -> String {
    common::run_command(&mut command).assert_success().text()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

const EXTENSIONS: &str = "\
[ v3_issuer ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ v3_ocsp_signer ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = OCSPSigning
noCheck                = ignored
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
";

/// A publish whose every key is in the token:
/// - issuer `ec` (the demo EC CA): its delegated OCSP signer is a P-256 key in the token,
///   certified by the demo EC CA;
/// - issuer `hsm`: a new issuing CA whose RSA-2048 key is in the token (certified by the
///   demo root); it signs its own OCSP responses and its CRL.
struct Setup {
    hsm: SoftHsm,
    signer_cert: PathBuf,
    hsm_ca: PathBuf,
    index: PathBuf,
    toml: PathBuf,
    out: tempfile::TempDir,
}

/// The `hsm` issuer's records: 0A01 revoked (keyCompromise), 0A02 good.
const HSM_INDEX: &str = "R\t360101000000Z\t260201000000Z,keyCompromise\t0A01\tunknown\t/CN=a\n\
                         V\t360101000000Z\t\t0A02\tunknown\t/CN=b\n";

impl Setup {
    fn new() -> Setup {
        let hsm = SoftHsm::new();
        hsm.keypair("EC:prime256v1", "ocsp-signer", SIGNER_ID);
        hsm.keypair("rsa:2048", "ca-key", CA_ID);
        let certify =
            |public: &Path,
             subject: &str,
             ca: &Path,
             ca_key: &Path,
             profile: &str,
             serial: &str,
             out: &Path| { certify(&hsm, public, subject, ca, ca_key, profile, serial, out) };
        let demo = common::demo();
        let signer_cert = hsm.path("signer.pem");
        certify(
            &hsm.public_pem(SIGNER_ID),
            "/CN=ocsp-edge HSM Test OCSP Signer",
            &demo.join("ec/ca.pem"),
            &demo.join("ec/ca.key"),
            "v3_ocsp_signer",
            "0x4001",
            &signer_cert,
        );
        let hsm_ca = hsm.path("hsm-ca.pem");
        certify(
            &hsm.public_pem(CA_ID),
            "/CN=ocsp-edge HSM Test Issuing CA",
            &demo.join("root/ca.pem"),
            &demo.join("root/ca.key"),
            "v3_issuer",
            "0x4002",
            &hsm_ca,
        );
        let index = hsm.path("hsm-index.txt");
        std::fs::write(&index, HSM_INDEX).unwrap();
        let setup = Setup {
            toml: hsm.path("publish.toml"),
            signer_cert,
            hsm_ca,
            index,
            out: tempfile::tempdir().unwrap(),
            hsm,
        };
        setup.configure(&setup.hsm.uri("object=ocsp-signer"), &setup.hsm.uri("id=%02"));
        setup
    }

    /// Writes publish.toml with these key references for the OCSP signer of `ec` and for
    /// the `hsm` CA (its responses and CRL).
    fn configure(&self, signer_key: &str, ca_key: &str) {
        let demo = common::demo();
        let text = format!(
            "validity = \"96h\"\n\
             [[issuer]]\nname = \"ec\"\ncertificate = {:?}\nindex = {:?}\n\
             signer_certificate = {:?}\nsigner_key = {signer_key:?}\n\
             [[issuer]]\nname = \"hsm\"\ncertificate = {:?}\nindex = {:?}\n\
             signer_certificate = {:?}\nsigner_key = {ca_key:?}\n\
             [issuer.crl]\nsigning_key = {ca_key:?}\nfull_url = \"http://127.0.0.1:8080/crl/hsm.crl\"\n",
            demo.join("ec/ca.pem"),
            demo.join("ec/index.txt"),
            self.signer_cert,
            self.hsm_ca,
            self.index,
            self.hsm_ca,
        );
        std::fs::write(&self.toml, text).unwrap();
    }

    fn publish(&self) -> Output {
        self.publish_with(&self.hsm.conf(), &[])
    }

    /// `ocsp-edge publish` with this SoftHSM2 configuration and extra environment.
    fn publish_with(&self, conf: &Path, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ocsp-edge"));
        command
            .args([
                "publish",
                "--config",
                path_str(&self.toml),
                "--out",
                path_str(self.out.path()),
            ])
            .env("SOFTHSM2_CONF", conf)
            .envs(env.iter().copied());
        common::run_command(&mut command)
    }

    fn snapshot_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.out.path())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Has `ca` certify a public key from the token (openssl -force_pubkey: no private key
/// leaves the token; the parent CA signs with its own file key).
#[allow(clippy::too_many_arguments)]
fn certify(
    hsm: &SoftHsm,
    public: &Path,
    subject: &str,
    ca: &Path,
    ca_key: &Path,
    profile: &str,
    serial: &str,
    out: &Path,
) {
    let extensions = hsm.path("ext.cnf");
    std::fs::write(&extensions, EXTENSIONS).unwrap();
    let result = common::openssl(&[
        "x509",
        "-new",
        "-subj",
        subject,
        "-force_pubkey",
        path_str(public),
        "-CA",
        path_str(ca),
        "-CAkey",
        path_str(ca_key),
        "-extfile",
        path_str(&extensions),
        "-extensions",
        profile,
        "-days",
        "30",
        "-set_serial",
        serial,
        "-out",
        path_str(out),
    ]);
    assert!(result.success, "{result}");
}

/// Fails the test if the PIN appears anywhere in `published`'s output.
fn assert_no_pin(published: &Output, what: &str) {
    assert!(
        !published.text().contains(PIN),
        "{what}: the PIN appears in the output:\n{}",
        published.text()
    );
}

// =======================================================================================
// Publishing through the token, checked by real clients

#[test]
fn every_signature_comes_from_the_token_and_real_clients_verify_them() {
    if skip_without("every_signature_comes_from_the_token", missing_tools()) {
        return;
    }
    let setup = Setup::new();
    let published = setup.publish();
    assert_eq!(published.code, Some(0), "{published}");
    assert_no_pin(&published, "publish");
    assert!(
        published.stderr.contains("signing key is in a PKCS#11 token"),
        "{published}"
    );

    let trust = vec![common::issuer_ca("ec"), setup.hsm_ca.clone()];
    let server = Background::start(common::config_for(setup.out.path(), &trust, vec![])).expect("serve");
    assert!(
        server.state.current_sequence().is_some(),
        "the snapshot (manifest signed by the token) verifies"
    );
    let url = format!("http://{}/", server.ocsp_addr);
    let root = common::root_ca();

    // ec: responses signed by the token's P-256 delegated signer.
    for status in ['V', 'R'] {
        let row = common::first_with_status("ec", status);
        for sha256 in [false, true] {
            let (answer, out) = common::openssl_status(
                server.ocsp_addr,
                &common::issuer_ca("ec"),
                &common::cert_path("ec", &row.serial),
                sha256,
            );
            let expected = if status == 'V' { "good" } else { "revoked" };
            assert_eq!(answer, expected, "{out}");
            assert!(out.stderr.contains("Response verify OK"), "{out}");
        }
    }
    // hsm: responses signed by the token's RSA CA key itself.
    for (serial, expected) in [("0x0A02", "good"), ("0x0A01", "revoked")] {
        let out = common::openssl(&[
            "ocsp",
            "-issuer",
            path_str(&setup.hsm_ca),
            "-serial",
            serial,
            "-url",
            &url,
            "-CAfile",
            path_str(&root),
            "-verify_other",
            path_str(&setup.hsm_ca),
            "-no_nonce",
            "-resp_text",
        ]);
        assert!(out.stderr.contains("Response verify OK"), "{serial}: {out}");
        assert!(
            out.stdout.contains(&format!("{serial}: {expected}")),
            "{serial}: {out}"
        );
        assert!(out.stdout.contains("sha256WithRSAEncryption"), "{out}");
    }

    // The CRL, signed by the token's RSA CA key, verifies with the CA's chain.
    let crl = common::get(server.ocsp_addr, "/crl/hsm.crl");
    assert_eq!(crl.status, 200);
    let crl_file = setup.hsm.path("hsm.crl");
    std::fs::write(&crl_file, &crl.body).unwrap();
    let chain = setup.hsm.path("chain.pem");
    let chain_text =
        std::fs::read_to_string(&root).unwrap() + &std::fs::read_to_string(&setup.hsm_ca).unwrap();
    std::fs::write(&chain, chain_text).unwrap();
    let out = common::openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&crl_file),
        "-CAfile",
        path_str(&chain),
        "-noout",
    ]);
    assert!(
        out.stderr.contains("verify OK") || out.stdout.contains("verify OK"),
        "{out}"
    );
    let listed = CrlView::parse(&crl.body);
    assert!(listed.entries.contains_key("A01"), "{listed:?}");

    lint_with_pkilint(&setup, &crl_file, server.ocsp_addr);

    // The keys are still where they were made: sensitive and never extractable.
    let objects = run_ok(setup.hsm.tool(&["--list-objects", "--type", "privkey"]));
    let private_keys: Vec<&str> = objects.split("Private Key Object").skip(1).collect();
    assert_eq!(private_keys.len(), 2, "{objects}");
    for key in private_keys {
        assert!(
            key.contains("sensitive, always sensitive, never extractable"),
            "{objects}"
        );
    }
}

/// pkilint over the token-signed CRL and one response of each issuer.
fn lint_with_pkilint(setup: &Setup, crl: &Path, ocsp: std::net::SocketAddr) {
    let missing = not_on_path("lint_crl").or_else(|| not_on_path("lint_ocsp_response"));
    if skip_without("pkilint over token-signed documents", missing) {
        return;
    }
    let mut checks = Vec::new();
    for profile in ["BR", "PKIX"] {
        let mut command = Command::new("lint_crl");
        command
            .args(["lint", "-t", "CRL", "-p", profile, "-s", "WARNING"])
            .arg(crl);
        checks.push((format!("lint_crl -p {profile}"), command));
    }
    let requests = [
        (
            "ec",
            common::issuer_ca("ec"),
            Some(common::cert_path(
                "ec",
                &common::first_with_status("ec", 'R').serial,
            )),
            None,
        ),
        ("hsm", setup.hsm_ca.clone(), None, Some("0x0A01")),
    ];
    for (label, issuer, cert, serial) in requests {
        let request = setup.hsm.path(&format!("{label}.req"));
        let mut args = vec!["ocsp", "-issuer", path_str(&issuer), "-sha256", "-no_nonce"];
        let cert_text;
        match (&cert, serial) {
            (Some(cert), _) => {
                cert_text = cert.display().to_string();
                args.extend(["-cert", &cert_text]);
            }
            (None, Some(serial)) => args.extend(["-serial", serial]),
            (None, None) => unreachable!(),
        }
        args.extend(["-reqout", path_str(&request)]);
        let out = common::openssl(&args);
        assert!(out.success, "{out}");
        let response = common::post(ocsp, &std::fs::read(&request).unwrap());
        assert_eq!(response.status, 200);
        let file = setup.hsm.path(&format!("{label}.resp"));
        std::fs::write(&file, &response.body).unwrap();
        let mut command = Command::new("lint_ocsp_response");
        command.args(["lint", "-s", "WARNING"]).arg(&file);
        checks.push((format!("lint_ocsp_response {label}"), command));
    }
    for (label, mut command) in checks {
        let text = common::run_command(&mut command).text();
        assert!(!text.contains("Traceback"), "{label} crashed: {text}");
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("(ERROR)") || l.contains("(FATAL)"))
            .collect();
        assert!(errors.is_empty(), "{label}:\n{text}");
    }
}

// =======================================================================================
// Failures: each stops before anything is written, with its own exit code and message

struct Case {
    name: &'static str,
    signer_key: String,
    ca_key: Option<String>,
    conf: Option<PathBuf>,
    code: i32,
    says: &'static [&'static str],
}

#[test]
fn each_token_failure_stops_before_writing_with_its_own_exit_code() {
    if skip_without("each_token_failure_stops_before_writing", missing_tools()) {
        return;
    }
    let setup = Setup::new();
    let hsm = &setup.hsm;
    // A second P-256 key (not the certificate's) and two keys sharing one label.
    hsm.keypair("EC:prime256v1", "other-signer", "03");
    hsm.keypair("EC:prime256v1", "twin", "05");
    hsm.keypair("EC:prime256v1", "twin", "06");
    // A private key whose public-key object is gone: nothing to check it against.
    hsm.keypair("EC:prime256v1", "orphan", "09");
    run_ok(hsm.tool(&["--delete-object", "--type", "pubkey", "--id", "09"]));
    let wrong_pin = hsm.path("wrong-pin");
    std::fs::write(&wrong_pin, "0000\n").unwrap();
    let not_a_library = hsm.path("notes.txt");
    std::fs::write(&not_a_library, "not a shared library").unwrap();
    let module = hsm.module.display().to_string();
    let with_module = |path: &str| hsm.uri("object=ocsp-signer").replace(&module, path);
    let rsa_only = hsm.write_conf(
        "rsa-only.conf",
        "slots.mechanisms = CKM_RSA_PKCS,CKM_SHA256_RSA_PKCS\n",
    );

    let mut cases = vec![
        Case {
            name: "module not found",
            signer_key: with_module("/nonexistent/libvendor-pkcs11.so"),
            ca_key: None,
            conf: None,
            code: 80,
            says: &["PKCS#11 module /nonexistent/libvendor-pkcs11.so", "no such file"],
        },
        Case {
            name: "not a shared library",
            signer_key: with_module(path_str(&not_a_library)),
            ca_key: None,
            conf: None,
            code: 80,
            says: &["cannot be loaded as a shared library"],
        },
        Case {
            name: "token absent",
            signer_key: hsm.uri("object=ocsp-signer").replace(TOKEN, "no-such-token"),
            ca_key: None,
            conf: None,
            code: 81,
            says: &["no token matches; present:", TOKEN],
        },
        Case {
            name: "wrong PIN",
            signer_key: hsm
                .uri("object=ocsp-signer")
                .replace(path_str(&hsm.pin_file()), path_str(&wrong_pin)),
            ca_key: None,
            conf: None,
            code: 82,
            says: &["CKR_PIN_INCORRECT", "Not retrying", "wrong-pin"],
        },
        Case {
            name: "key not found",
            signer_key: hsm.uri("object=no-such-key"),
            ca_key: None,
            conf: None,
            code: 83,
            says: &["no private key on token", "object=ocsp-signer;id=%01"],
        },
        Case {
            name: "key ambiguous",
            signer_key: hsm.uri("object=twin"),
            ca_key: None,
            conf: None,
            code: 83,
            says: &["2 private keys", "object=twin;id=%05", "object=twin;id=%06"],
        },
        Case {
            name: "mechanism unsupported",
            signer_key: hsm.uri("object=ocsp-signer"),
            ca_key: None,
            conf: Some(rsa_only),
            code: 84,
            says: &["does not offer CKM_ECDSA"],
        },
        Case {
            name: "key of another certificate",
            signer_key: hsm.uri("object=other-signer"),
            ca_key: None,
            conf: None,
            code: 65,
            says: &[
                "does not belong to the certificate",
                "signer.pem",
                "object=other-signer",
                "public key sha256:",
            ],
        },
        Case {
            name: "key of another family",
            signer_key: hsm.uri("id=%02"),
            ca_key: None,
            conf: None,
            code: 65,
            says: &[
                "does not belong",
                "the token key is of type CKK_RSA, the certificate's key is EC P-256",
            ],
        },
        Case {
            name: "private key without its public-key object",
            signer_key: hsm.uri("id=%09"),
            ca_key: None,
            conf: None,
            code: 65,
            says: &[
                "does not belong",
                "found 0 public-key objects with the private key's CKA_ID/label",
            ],
        },
        Case {
            name: "PIN in the URI",
            signer_key: format!(
                "pkcs11:token={TOKEN};object=ocsp-signer?module-path={module}&pin-value={PIN}"
            ),
            ca_key: None,
            conf: None,
            code: 64,
            says: &["pin-value puts the PIN where"],
        },
        Case {
            name: "unset PIN variable",
            signer_key: hsm.uri("object=ocsp-signer").replace(
                &format!("pin-source=file:{}", hsm.pin_file().display()),
                "x-pin-env=OCSP_EDGE_TEST_UNSET_PIN",
            ),
            ca_key: None,
            conf: None,
            code: 64,
            says: &["$OCSP_EDGE_TEST_UNSET_PIN", "not set"],
        },
        Case {
            name: "CRL key not found",
            signer_key: hsm.uri("object=ocsp-signer"),
            ca_key: Some(hsm.uri("id=%7F")),
            conf: None,
            code: 83,
            says: &["id=%7F", "no private key"],
        },
    ];
    if let Some(zlib) = shared_library_without_pkcs11() {
        cases.push(Case {
            name: "a shared library that is not PKCS#11",
            signer_key: with_module(path_str(&zlib)),
            ca_key: None,
            conf: None,
            code: 80,
            says: &["is not a PKCS#11 library"],
        });
    }
    let good_ca = hsm.uri("id=%02");
    let mut failures = Vec::new();
    for case in &cases {
        setup.configure(&case.signer_key, case.ca_key.as_deref().unwrap_or(&good_ca));
        let published = setup.publish_with(case.conf.as_deref().unwrap_or(&hsm.conf()), &[]);
        assert_no_pin(&published, case.name);
        // The message: from its first line to the end (lists follow on indented lines).
        let message = published
            .stderr
            .find("ocsp-edge publish:")
            .map_or("", |start| published.stderr[start..].trim_end());
        let said_all = case.says.iter().all(|s| message.contains(s));
        if published.code != Some(case.code) || !said_all || !setup.snapshot_files().is_empty() {
            failures.push(format!(
                "{}: want exit {} saying {:?}, files written: {:?}\n{published}",
                case.name,
                case.code,
                case.says,
                setup.snapshot_files()
            ));
        }
        println!("{} → exit {:?}: {message}", case.name, published.code);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // One wrong PIN was tried once: the token is not locked, the right PIN still works.
    setup.configure(&hsm.uri("object=ocsp-signer"), &good_ca);
    let published = setup.publish();
    assert_eq!(published.code, Some(0), "{published}");
}

/// A shared library that surely exports no `C_GetFunctionList`.
fn shared_library_without_pkcs11() -> Option<PathBuf> {
    [
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/aarch64-linux-gnu/libz.so.1",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

// =======================================================================================
// PINs never appear in any output

#[test]
fn the_pin_appears_in_no_output_even_at_trace_level() {
    if skip_without("the_pin_appears_in_no_output", missing_tools()) {
        return;
    }
    let setup = Setup::new();
    // The PIN from a variable named in the URI, and every log line the program has.
    let by_env = setup.hsm.uri("object=ocsp-signer").replace(
        &format!("pin-source=file:{}", setup.hsm.pin_file().display()),
        "x-pin-env=OCSP_EDGE_TEST_PIN",
    );
    setup.configure(&by_env, &setup.hsm.uri("id=%02"));
    let published = setup.publish_with(
        &setup.hsm.conf(),
        &[("OCSP_EDGE_TEST_PIN", PIN), ("RUST_LOG", "trace")],
    );
    assert_eq!(published.code, Some(0), "{published}");
    assert!(
        published.stderr.contains("x-pin-env=OCSP_EDGE_TEST_PIN"),
        "the source is named: {published}"
    );
    assert_no_pin(&published, "trace-level publish");
    // Nor does the PIN end up in anything the publisher wrote.
    for name in setup.snapshot_files() {
        let bytes = std::fs::read(setup.out.path().join(&name)).unwrap();
        assert!(
            !bytes.windows(PIN.len()).any(|w| w == PIN.as_bytes()),
            "{name} contains the PIN"
        );
    }
    // A wrong PIN from the variable: the message names the variable, not its value.
    let published = setup.publish_with(
        &setup.hsm.conf(),
        &[("OCSP_EDGE_TEST_PIN", "Wrong-PIN-31337"), ("RUST_LOG", "trace")],
    );
    assert_eq!(published.code, Some(82), "{published}");
    assert!(published.stderr.contains("$OCSP_EDGE_TEST_PIN"), "{published}");
    assert!(!published.text().contains("Wrong-PIN-31337"), "{published}");
}

// =======================================================================================
// The token going away in the middle of a publish

#[test]
fn a_token_gone_mid_publish_fails_cleanly_and_a_rerun_succeeds() {
    if skip_without("a_token_gone_mid_publish", missing_tools()) {
        return;
    }
    let setup = Setup::new();
    let first = setup.publish();
    assert_eq!(first.code, Some(0), "{first}");
    let before = setup.snapshot_files();
    let latest = std::fs::read(setup.out.path().join("latest.manifest.json")).unwrap();

    // Enough records that signing takes a while, so the token can vanish during it.
    let mut big = String::from(HSM_INDEX);
    for i in 0..40_000u32 {
        big.push_str(&format!(
            "V\t360101000000Z\t\t{:06X}\tunknown\t/CN=x\n",
            0x10_0000 + i
        ));
    }
    std::fs::write(&setup.index, big).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
        .args([
            "publish",
            "--config",
            path_str(&setup.toml),
            "--out",
            path_str(setup.out.path()),
        ])
        .env("SOFTHSM2_CONF", setup.hsm.conf())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once signing has begun (the per-issuer summary is printed right before it), the
    // token's files disappear, as a token pulled from its slot.
    let stderr = child.stderr.take().unwrap();
    let (said, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let mut log = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) {
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("hsm: ") {
            break;
        }
    }
    let tokens = setup.hsm.path("tokens");
    let pulled = setup.hsm.path("pulled");
    std::fs::rename(&tokens, &pulled).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    let status = child.wait().unwrap();
    log.extend(lines.try_iter().map(|l| l + "\n"));
    assert_eq!(status.code(), Some(75), "{log}");
    let message = log
        .lines()
        .find(|l| l.starts_with("ocsp-edge publish:"))
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("went away while signing"), "{log}");
    assert!(message.contains("previous snapshot stays the newest"), "{log}");
    assert!(!log.contains(PIN), "{log}");
    assert_eq!(
        setup.snapshot_files(),
        before,
        "nothing new was left behind: {log}"
    );
    assert_eq!(
        std::fs::read(setup.out.path().join("latest.manifest.json")).unwrap(),
        latest
    );

    // The token is back: the same command publishes.
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&pulled, &tokens).unwrap();
    std::fs::write(&setup.index, HSM_INDEX).unwrap();
    let rerun = setup.publish();
    assert_eq!(rerun.code, Some(0), "{rerun}");
    assert_eq!(
        setup.snapshot_files().len(),
        before.len() + 2,
        "{:?}",
        setup.snapshot_files()
    );
    println!("token pulled mid-publish → exit 75: {message}");
}

// =======================================================================================
// The other key types

#[test]
fn p384_and_ed25519_signers_sign_through_the_token() {
    if skip_without("p384_and_ed25519_signers_sign_through_the_token", missing_tools()) {
        return;
    }
    let setup = Setup::new();
    let demo = common::demo();
    for (key_type, id, label) in [
        ("EC:secp384r1", "0A", "p384"),
        ("EC:edwards25519", "0B", "ed25519"),
    ] {
        setup.hsm.keypair(key_type, label, id);
        let certificate = setup.hsm.path(&format!("{label}.pem"));
        certify(
            &setup.hsm,
            &setup.hsm.public_pem(id),
            &format!("/CN=ocsp-edge HSM Test {label} OCSP Signer"),
            &demo.join("ec/ca.pem"),
            &demo.join("ec/ca.key"),
            "v3_ocsp_signer",
            &format!("0x40{id}"),
            &certificate,
        );
        std::fs::copy(&certificate, &setup.signer_cert).unwrap();
        setup.configure(
            &setup.hsm.uri(&format!("object={label}")),
            &setup.hsm.uri("id=%02"),
        );
        let published = setup.publish();
        assert_eq!(published.code, Some(0), "{label}: {published}");
        let trust = vec![common::issuer_ca("ec"), setup.hsm_ca.clone()];
        let server = Background::start(common::config_for(setup.out.path(), &trust, vec![])).expect("serve");
        let row = common::first_with_status("ec", 'R');
        let (answer, out) = common::openssl_status(
            server.ocsp_addr,
            &common::issuer_ca("ec"),
            &common::cert_path("ec", &row.serial),
            true,
        );
        assert_eq!(answer, "revoked", "{label}: {out}");
        assert!(out.stderr.contains("Response verify OK"), "{label}: {out}");
    }
}
