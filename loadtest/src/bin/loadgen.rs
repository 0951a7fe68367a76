//! `loadgen`: closed-loop OCSP load generator (and the small helpers run.sh needs).
//!
//! ```text
//! loadgen --url http://127.0.0.1:PORT/ --requests-file FILE [--method post|get]
//!         [--connections 50] [--duration 10s] [--warmup 1s] [--check FILE|none]
//!         [--json OUT] [--label NAME] [--round N] [--server-pid PID] [--threads 1]
//!         [--distribution uniform|zipf] [--zipf-exponent 1.0] [--seed 1] [--timeline OUT]
//!         [--metrics-url http://127.0.0.1:PORT/metrics --metric SERIES...]
//! loadgen gen-feed --count 10000 --revoked-percent 10 --out feed.jsonl [--index-out index.txt]
//!         [--changed-percent 0 --variant 0]
//! loadgen prepare --issuer ca.pem --feed feed.jsonl --requests OUT --check OUT
//!         [--sample CERTS] [--also-feed LATER.jsonl]...
//! loadgen report [--baseline ceiling] [--json-out FILE] [--fail-on-errors A,B] RUN.json...
//! loadgen targets --dir STAGES [--json-out FILE]
//! loadgen free-ports N
//! loadgen wait-port 127.0.0.1:PORT [--timeout 30s]
//! loadgen wait-http http://127.0.0.1:PORT/readyz [--timeout 30s]
//! loadgen wait-metric http://127.0.0.1:PORT/metrics --metric NAME --value V [--timeout 30s]
//! loadgen fetch http://127.0.0.1:PORT/metrics [--metric NAME]
//! loadgen zipf-share --ranks N --top K [--exponent 1.0]
//! ```

use clap::{Args, Parser, Subcommand, ValueEnum};
use loadtest::client::{self, HttpMethod, RunConfig, Target};
use loadtest::distribution::Distribution;
use loadtest::report::{self, RunMeta, RunReport};
use loadtest::{prepare, targets};
use ocsp_edge::pki::Certificate;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Closed-loop HTTP/1.1 load generator for OCSP responders (loopback targets only)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic CA feed: JSON Lines for `ocsp-edge publish`, optionally index.txt.
    GenFeed(GenFeedArgs),
    /// Write the OCSP requests (SHA-1 and SHA-256 CertIDs) and expected statuses for a feed.
    Prepare(PrepareArgs),
    /// Print the summary table of several `--json` run files.
    Report(ReportArgs),
    /// Print the table of the performance targets from a directory of stage results
    /// (written by loadtest/all.sh) and write them all as one JSON document.
    Targets(TargetsArgs),
    /// Print N free TCP ports on 127.0.0.1, one per line.
    FreePorts { count: usize },
    /// Wait until a TCP port accepts connections.
    WaitPort {
        addr: std::net::SocketAddr,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Poll a loopback URL until it answers 200; print the seconds waited.
    WaitHttp {
        url: String,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Poll a Prometheus endpoint until an unlabelled sample reaches a value; print the
    /// Unix time (ms) it was first seen there (one process for the whole wait, so the
    /// polling costs the measured machine little).
    WaitMetric {
        url: String,
        #[arg(long)]
        metric: String,
        #[arg(long)]
        value: f64,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        #[arg(long, default_value = "20ms", value_parser = parse_duration)]
        every: Duration,
    },
    /// Print the share of draws that fall on the `--top` K most probable of `--ranks` N
    /// ranks under Zipf's law (exactly: Σ_{i≤K} i^−s ÷ Σ_{i≤N} i^−s), i.e. the best hit
    /// ratio of a cache holding a fixed K of the N requests of a `--distribution zipf` run.
    ZipfShare {
        #[arg(long)]
        ranks: usize,
        #[arg(long)]
        top: usize,
        #[arg(long, default_value_t = 1.0)]
        exponent: f64,
    },
    /// GET a loopback URL and print its body (exit 1 unless 2xx), or with `--metric NAME`
    /// only the value of that unlabelled Prometheus sample.
    Fetch {
        url: String,
        #[arg(long)]
        metric: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DistributionArg {
    Uniform,
    Zipf,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Post,
    Get,
}

#[derive(Args)]
struct RunArgs {
    /// Target, e.g. http://127.0.0.1:8080/ (loopback only). GET appends the request to it.
    #[arg(long)]
    url: Option<String>,
    /// One base64 DER OCSPRequest per line (see `loadgen prepare`).
    #[arg(long)]
    requests_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "post")]
    method: MethodArg,
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Measured window (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured load before the window.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// A check file (`SERIALHEX good|revoked` per line) to verify every response's
    /// CertID and status against, or `none` to check only for HTTP 2xx.
    #[arg(long, default_value = "none")]
    check: String,
    /// Write the run's results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Server name recorded in the JSON and the report.
    #[arg(long, default_value = "server")]
    label: String,
    #[arg(long, default_value_t = 1)]
    round: u32,
    /// PID of the server process, whose CPU time is measured over the window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Load-generator threads (1 = a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// A request slower than this is an error and its connection is replaced.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Print nothing but errors (the JSON file still gets everything).
    #[arg(long)]
    quiet: bool,
    /// How each connection picks its next request: `uniform` walks the file (every
    /// request equally often); `zipf` draws rank k with probability ∝ 1/k^s, ranks being
    /// a seeded shuffle of the file.
    #[arg(long, value_enum, default_value = "uniform")]
    distribution: DistributionArg,
    /// The Zipf exponent s (> 0).
    #[arg(long, default_value_t = 1.0)]
    zipf_exponent: f64,
    /// Seed of the Zipf rank order and draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write per-second counts and latency percentiles of the window as JSON here (they
    /// also go into `--json`).
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// A Prometheus endpoint (loopback) to read the `--metric` series from at the start
    /// and the end of the window; their growth goes into `--json` (`metrics`).
    #[arg(long, requires = "metric")]
    metrics_url: Option<String>,
    /// A series to sample on `--metrics-url`, by its exact name (with labels if any);
    /// repeatable.
    #[arg(long, requires = "metrics_url")]
    metric: Vec<String>,
}

#[derive(Args)]
struct GenFeedArgs {
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    #[arg(long, default_value_t = 10)]
    revoked_percent: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// JSON Lines output.
    #[arg(long)]
    out: PathBuf,
    /// Also write the same certificates as an OpenSSL index.txt (for `openssl ocsp`).
    #[arg(long)]
    index_out: Option<PathBuf>,
    /// Percentage of the good certificates whose status depends on `--variant`.
    #[arg(long, default_value_t = 0)]
    changed_percent: u32,
    /// Which publish of the same CA (0 = the base; same serials in every variant).
    #[arg(long, default_value_t = 0)]
    variant: u64,
}

#[derive(Args)]
struct PrepareArgs {
    /// The issuing CA's certificate (PEM).
    #[arg(long)]
    issuer: PathBuf,
    /// JSON Lines feed, or an OpenSSL index.txt (by its .txt extension).
    #[arg(long)]
    feed: PathBuf,
    /// Requests file to write.
    #[arg(long)]
    requests: PathBuf,
    /// Check file to write.
    #[arg(long)]
    check: PathBuf,
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Requests for a uniform random sample of this many certificates only (both CertID
    /// hashes of each), so that the files stay small for huge feeds.
    #[arg(long)]
    sample: Option<usize>,
    /// A later feed of the same CA (e.g. `gen-feed --variant 1`): sampled certificates
    /// whose status differs in it are `any` (good or revoked) in the check file.
    #[arg(long)]
    also_feed: Vec<PathBuf>,
}

#[derive(Args)]
struct TargetsArgs {
    /// Directory of stage results (ceiling.json, scale.facts, swap.facts, ...).
    #[arg(long)]
    dir: PathBuf,
    /// Write the targets and every stage's raw results as one JSON document.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// The server the others are compared with.
    #[arg(long, default_value = "ceiling")]
    baseline: String,
    /// Write all runs and the summary as one JSON document.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Exit 1 if any run of these servers (comma-separated) had errors.
    #[arg(long, value_delimiter = ',')]
    fail_on_errors: Vec<String>,
    files: Vec<PathBuf>,
}

/// `10s`, `500ms`, `1.5s`, `2m`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("bad duration {text:?}"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in {text:?} (use ms, s or m)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

type AnyResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => run(cli.run),
        Some(Command::GenFeed(args)) => gen_feed(args),
        Some(Command::Prepare(args)) => prepare_files(args),
        Some(Command::Report(args)) => report_files(args),
        Some(Command::Targets(args)) => report_targets(args),
        Some(Command::FreePorts { count }) => free_ports(count),
        Some(Command::WaitPort { addr, timeout }) => wait_port(addr, timeout),
        Some(Command::WaitHttp { url, timeout }) => wait_http(&url, timeout),
        Some(Command::WaitMetric {
            url,
            metric,
            value,
            timeout,
            every,
        }) => wait_metric(&url, &metric, value, timeout, every),
        Some(Command::Fetch { url, metric }) => fetch(&url, metric.as_deref()),
        Some(Command::ZipfShare { ranks, top, exponent }) => {
            loadtest::distribution::top_share(ranks, top, exponent)
                .map(|share| {
                    println!("{share:.6}");
                    ExitCode::SUCCESS
                })
                .map_err(Into::into)
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> AnyResult<ExitCode> {
    let url = args.url.ok_or("--url is required")?;
    let requests_file = args.requests_file.ok_or("--requests-file is required")?;
    let target = Target::parse(&url)?;
    let check = (args.check != "none").then(|| PathBuf::from(&args.check));
    let requests = prepare::load_requests(&requests_file, check.as_deref())?;
    let method = match args.method {
        MethodArg::Post => HttpMethod::Post,
        MethodArg::Get => HttpMethod::Get,
    };
    if args.connections == 0 || args.threads == 0 {
        return Err("--connections and --threads must be at least 1".into());
    }
    let distribution = match args.distribution {
        DistributionArg::Uniform => Distribution::Uniform,
        DistributionArg::Zipf => {
            loadtest::distribution::Zipf::new(requests.len(), args.zipf_exponent)?;
            Distribution::Zipf {
                exponent: args.zipf_exponent,
            }
        }
    };
    let config = RunConfig {
        target,
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        request_timeout: args.timeout,
        server_pid: args.server_pid,
        distribution,
        seed: args.seed,
        timeline: args.timeline.is_some(),
        metrics: match args.metrics_url {
            Some(url) => Some(client::MetricsProbe {
                target: Target::parse(&url)?,
                series: args.metric.clone(),
            }),
            None => None,
        },
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let outcome = runtime.block_on(client::run(config, method, &requests));
    let report = RunReport::new(
        RunMeta {
            label: args.label,
            round: args.round,
            method: match method {
                HttpMethod::Post => "post".into(),
                HttpMethod::Get => "get".into(),
            },
            url,
            connections: args.connections,
            client_threads: args.threads,
            warmup_s: args.warmup.as_secs_f64(),
            checked: check.is_some(),
            server_pid: args.server_pid,
            distribution,
        },
        &outcome,
    );
    if !args.quiet || report.errors > 0 {
        println!("{}", report.summary());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(path) = &args.timeline {
        let document = serde_json::json!({
            "label": report.label,
            "method": report.method,
            "window_start_unix_ms": report.window_start_unix_ms,
            "window_s": 1,
            "windows": report.timeline,
        });
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    }
    Ok(if report.requests == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn gen_feed(args: GenFeedArgs) -> AnyResult<ExitCode> {
    use std::io::{BufWriter, Write};
    let spec = prepare::FeedSpec {
        count: args.count,
        revoked_percent: args.revoked_percent,
        seed: args.seed,
        changed_percent: args.changed_percent,
        variant: args.variant,
    };
    let create = |path: &PathBuf| -> AnyResult<BufWriter<std::fs::File>> {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(BufWriter::with_capacity(1 << 20, file))
    };
    let mut json = create(&args.out)?;
    let mut index = args.index_out.as_ref().map(create).transpose()?;
    let stats = prepare::write_feed(&spec, &mut json, index.as_mut().map(|w| w as &mut dyn Write))?;
    json.flush()?;
    if let Some(index) = index.as_mut() {
        index.flush()?;
    }
    eprintln!(
        "wrote {} certificates ({} revoked{}) to {}",
        stats.written,
        stats.revoked,
        if stats.changing > 0 {
            format!(
                ", {} changing with the variant, variant {}",
                stats.changing, args.variant
            )
        } else {
            String::new()
        },
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn prepare_files(args: PrepareArgs) -> AnyResult<ExitCode> {
    let pem = std::fs::read_to_string(&args.issuer).map_err(|e| format!("{}: {e}", args.issuer.display()))?;
    let issuer = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", args.issuer.display()))?;
    let records = match args.sample {
        Some(size) => prepare::sample_records(&args.feed, size, args.seed)?,
        None => prepare::read_records(&args.feed)?,
    };
    let changing = prepare::changing_serials(&records, &args.also_feed)?;
    let prepared = prepare::prepare(&issuer, &records, &changing, args.seed);
    std::fs::write(&args.requests, &prepared.requests_b64)?;
    std::fs::write(&args.check, &prepared.check)?;
    eprintln!(
        "wrote {} requests for {} certificates{} to {}",
        prepared.requests,
        records.len(),
        if changing.is_empty() {
            String::new()
        } else {
            format!(
                " ({} whose status changes between the feeds: `any`)",
                changing.len()
            )
        },
        args.requests.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn report_files(args: ReportArgs) -> AnyResult<ExitCode> {
    let mut runs = Vec::new();
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let run: RunReport = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        runs.push(run);
    }
    let rows = report::summarise(&runs, &args.baseline);
    print!("{}", report::table(&rows, &args.baseline));
    if let Some(path) = &args.json_out {
        let document = serde_json::json!({ "baseline": args.baseline, "summary": rows, "runs": runs });
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    }
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| r.errors > 0 && args.fail_on_errors.contains(&r.label))
        .map(|r| format!("{} {}", r.label, r.method.to_uppercase()))
        .collect();
    if !failed.is_empty() {
        eprintln!("loadgen: errors in {}", failed.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn free_ports(count: usize) -> AnyResult<ExitCode> {
    // Hold every listener until all are chosen, so the ports differ.
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    for listener in &listeners {
        println!("{}", listener.local_addr()?.port());
    }
    Ok(ExitCode::SUCCESS)
}

fn wait_port(addr: std::net::SocketAddr, timeout: Duration) -> AnyResult<ExitCode> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: loopback addresses only").into());
    }
    let deadline = Instant::now() + timeout;
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() >= deadline {
            return Err(format!("{addr} did not accept connections within {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report_targets(args: TargetsArgs) -> AnyResult<ExitCode> {
    let stages = targets::Stages::read(&args.dir)?;
    let rows = targets::evaluate(&stages);
    print!("{}", targets::table(&rows));
    if let Some(path) = &args.json_out {
        let document = targets::document(&rows, &stages);
        std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    }
    Ok(if rows.iter().any(|r| r.verdict == targets::Verdict::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn wait_http(url: &str, timeout: Duration) -> AnyResult<ExitCode> {
    let target = Target::parse(url)?;
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        if let Ok((200, _)) = loadtest::http::get(&target, Duration::from_secs(2)) {
            println!("{:.3}", started.elapsed().as_secs_f64());
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() >= deadline {
            return Err(format!("{url} did not answer 200 within {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_metric(url: &str, name: &str, value: f64, timeout: Duration, every: Duration) -> AnyResult<ExitCode> {
    let target = Target::parse(url)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok((200, body)) = loadtest::http::get(&target, Duration::from_secs(2)) {
            if loadtest::http::metric(&String::from_utf8_lossy(&body), name) == Some(value) {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
                println!("{}", now.as_millis());
                return Ok(ExitCode::SUCCESS);
            }
        }
        if Instant::now() >= deadline {
            eprintln!("loadgen: {name} did not reach {value} within {timeout:?}");
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(every);
    }
}

fn fetch(url: &str, metric: Option<&str>) -> AnyResult<ExitCode> {
    use std::io::Write;
    let target = Target::parse(url)?;
    let (status, body) = loadtest::http::get(&target, Duration::from_secs(10))?;
    match metric {
        Some(name) => {
            let text = String::from_utf8_lossy(&body);
            let value =
                loadtest::http::metric(&text, name).ok_or_else(|| format!("{url}: no sample {name}"))?;
            println!("{value}");
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(if (200..300).contains(&status) {
        ExitCode::SUCCESS
    } else {
        eprintln!("loadgen: {url}: HTTP {status}");
        ExitCode::FAILURE
    })
}
