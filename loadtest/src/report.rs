//! The JSON record of one run and the summary table over many runs.

use crate::client::{Errors, RunOutcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyMs {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// One `loadgen` run, as written by `--json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// Which server (e.g. `ceiling`, `ocsp-edge`, `openssl`).
    pub label: String,
    pub round: u32,
    pub method: String,
    pub url: String,
    pub connections: usize,
    pub client_threads: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Whether every response was checked against the expected CertID and status.
    pub checked: bool,
    /// Responses received in the measured window (any status).
    pub requests: u64,
    /// Responses that were 2xx and passed the check.
    pub ok: u64,
    /// `requests / duration_s`.
    pub rps: f64,
    pub latency_ms: LatencyMs,
    /// All errors (i/o, timeouts, connects, non-2xx, failed checks).
    pub errors: u64,
    pub non_2xx: u64,
    pub error_kinds: Errors,
    pub error_samples: Vec<String>,
    /// TCP connections opened in the window (0 with keep-alive once warmed up; one per
    /// request for servers that close every connection).
    pub connects: u64,
    pub server_pid: Option<u32>,
    /// Server process CPU (utime + stime, all threads) over the window, in seconds.
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_req: Option<f64>,
    pub client_cpu_us_per_req: Option<f64>,
    pub clk_tck: u64,
    /// How requests were chosen: `uniform` (each once per pass) or `zipf`.
    #[serde(default = "uniform")]
    pub distribution: String,
    #[serde(default)]
    pub zipf_exponent: Option<f64>,
    /// Unix time (ms) at which the measured window started.
    #[serde(default)]
    pub window_start_unix_ms: f64,
    /// With `--timeline`: one entry per second of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineWindow>>,
    /// With `--metrics-url`/`--metric`: how much each Prometheus series grew over the
    /// window (e.g. a cache's hits and misses during exactly the measured requests).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

fn uniform() -> String {
    "uniform".into()
}

/// Responses completed in one second of the window (`t_s` = seconds since its start).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimelineWindow {
    pub t_s: usize,
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub struct RunMeta {
    pub label: String,
    pub round: u32,
    pub method: String,
    pub url: String,
    pub connections: usize,
    pub client_threads: usize,
    pub warmup_s: f64,
    pub checked: bool,
    pub server_pid: Option<u32>,
    pub distribution: crate::distribution::Distribution,
}

impl RunReport {
    pub fn new(meta: RunMeta, outcome: &RunOutcome) -> RunReport {
        let ms = |ns: f64| ns / 1e6;
        let h = &outcome.latency;
        let duration_s = outcome.window.as_secs_f64();
        let clk_tck = crate::cpu::clock_ticks_per_second();
        let per_req = |ticks: Option<u64>| {
            ticks
                .filter(|_| outcome.completed > 0)
                .map(|t| t as f64 / clk_tck as f64 * 1e6 / outcome.completed as f64)
        };
        RunReport {
            label: meta.label,
            round: meta.round,
            method: meta.method,
            url: meta.url,
            connections: meta.connections,
            client_threads: meta.client_threads,
            warmup_s: meta.warmup_s,
            duration_s,
            checked: meta.checked,
            requests: outcome.completed,
            ok: outcome.ok,
            rps: outcome.completed as f64 / duration_s,
            latency_ms: LatencyMs {
                min: ms(h.min_ns() as f64),
                mean: ms(h.mean_ns()),
                p50: ms(h.quantile_ns(0.50) as f64),
                p90: ms(h.quantile_ns(0.90) as f64),
                p99: ms(h.quantile_ns(0.99) as f64),
                p999: ms(h.quantile_ns(0.999) as f64),
                max: ms(h.max_ns() as f64),
            },
            errors: outcome.errors.total(),
            non_2xx: outcome.errors.non_2xx,
            error_kinds: outcome.errors.clone(),
            error_samples: outcome.error_samples.clone(),
            connects: outcome.connects,
            server_pid: meta.server_pid,
            server_cpu_s: outcome.server_cpu_ticks.map(|t| t as f64 / clk_tck as f64),
            server_cpu_us_per_req: per_req(outcome.server_cpu_ticks),
            client_cpu_us_per_req: per_req(outcome.client_cpu_ticks),
            clk_tck,
            distribution: meta.distribution.name().into(),
            zipf_exponent: match meta.distribution {
                crate::distribution::Distribution::Zipf { exponent } => Some(exponent),
                crate::distribution::Distribution::Uniform => None,
            },
            window_start_unix_ms: outcome.window_start_unix_ms,
            timeline: outcome.timeline.as_ref().map(|slices| {
                slices
                    .iter()
                    .enumerate()
                    .map(|(t_s, slice)| TimelineWindow {
                        t_s,
                        requests: slice.completed,
                        ok: slice.ok,
                        errors: slice.errors,
                        p50_ms: ms(slice.latency.quantile_ns(0.50) as f64),
                        p99_ms: ms(slice.latency.quantile_ns(0.99) as f64),
                        max_ms: ms(slice.latency.max_ns() as f64),
                    })
                    .collect()
            }),
            metrics: outcome.metrics.clone(),
        }
    }

    /// A few human-readable lines.
    pub fn summary(&self) -> String {
        let cpu = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        format!(
            "{label} {method} round {round}: {rps:.0} req/s over {dur:.1}s ({requests} responses, {ok} ok, {errors} errors, {non2xx} non-2xx, {connects} connects)\n  latency ms: p50 {p50:.3}  p90 {p90:.3}  p99 {p99:.3}  p99.9 {p999:.3}  max {max:.3}\n  CPU µs/req: server {server}  load generator {client}{samples}",
            label = self.label,
            method = self.method.to_uppercase(),
            round = self.round,
            rps = self.rps,
            dur = self.duration_s,
            requests = self.requests,
            ok = self.ok,
            errors = self.errors,
            non2xx = self.non_2xx,
            connects = self.connects,
            p50 = self.latency_ms.p50,
            p90 = self.latency_ms.p90,
            p99 = self.latency_ms.p99,
            p999 = self.latency_ms.p999,
            max = self.latency_ms.max,
            server = cpu(self.server_cpu_us_per_req),
            client = cpu(self.client_cpu_us_per_req),
            samples = if self.error_samples.is_empty() {
                String::new()
            } else {
                format!("\n  first errors: {}", self.error_samples.join(" | "))
            }
        ) + &if self.metrics.is_empty() {
            String::new()
        } else {
            let deltas: Vec<String> = self.metrics.iter().map(|(k, v)| format!("{k} +{v}")).collect();
            format!("\n  metrics over the window: {}", deltas.join(", "))
        }
    }
}

/// Medians over the rounds of one server and method.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SummaryRow {
    pub label: String,
    pub method: String,
    pub rounds: usize,
    pub rps_median: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    pub p50_ms_median: f64,
    pub p99_ms_median: f64,
    pub server_cpu_us_per_req_median: Option<f64>,
    pub client_cpu_us_per_req_median: Option<f64>,
    pub errors: u64,
    pub non_2xx: u64,
    pub requests: u64,
    /// `rps_median / the baseline's rps_median` for the same method.
    pub ratio_vs_baseline: Option<f64>,
    /// `server CPU µs/req / the baseline's` for the same method.
    pub cpu_ratio_vs_baseline: Option<f64>,
    /// The req/s ratio the CPU figures predict when server and load generator share
    /// saturated CPUs: (baseline server + generator CPU/req) / (this server + generator
    /// CPU/req). Much steadier than the measured req/s ratio on a shared machine.
    pub cpu_predicted_ratio: Option<f64>,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Groups runs by (server, method) in first-seen order and compares each group with the
/// `baseline` server's group of the same method.
pub fn summarise(runs: &[RunReport], baseline: &str) -> Vec<SummaryRow> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for run in runs {
        let key = (run.label.clone(), run.method.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    // Methods in first-seen order, servers in first-seen order within each method.
    let mut methods: Vec<String> = Vec::new();
    for (_, m) in &keys {
        if !methods.contains(m) {
            methods.push(m.clone());
        }
    }
    keys.sort_by_key(|(_, m)| methods.iter().position(|x| x == m));
    let mut rows: Vec<SummaryRow> = keys
        .iter()
        .map(|(label, method)| {
            let group: Vec<&RunReport> = runs
                .iter()
                .filter(|r| &r.label == label && &r.method == method)
                .collect();
            let cpu = |f: fn(&RunReport) -> Option<f64>| {
                let values: Vec<f64> = group.iter().filter_map(|r| f(r)).collect();
                (!values.is_empty()).then(|| median(values))
            };
            let rps: Vec<f64> = group.iter().map(|r| r.rps).collect();
            SummaryRow {
                label: label.clone(),
                method: method.clone(),
                rounds: group.len(),
                rps_median: median(rps.clone()),
                rps_min: rps.iter().cloned().fold(f64::INFINITY, f64::min),
                rps_max: rps.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                p50_ms_median: median(group.iter().map(|r| r.latency_ms.p50).collect()),
                p99_ms_median: median(group.iter().map(|r| r.latency_ms.p99).collect()),
                server_cpu_us_per_req_median: cpu(|r| r.server_cpu_us_per_req),
                client_cpu_us_per_req_median: cpu(|r| r.client_cpu_us_per_req),
                errors: group.iter().map(|r| r.errors).sum(),
                non_2xx: group.iter().map(|r| r.non_2xx).sum(),
                requests: group.iter().map(|r| r.requests).sum(),
                ratio_vs_baseline: None,
                cpu_ratio_vs_baseline: None,
                cpu_predicted_ratio: None,
            }
        })
        .collect();
    let baselines: Vec<SummaryRow> = rows.iter().filter(|r| r.label == baseline).cloned().collect();
    for row in &mut rows {
        if let Some(base) = baselines.iter().find(|b| b.method == row.method) {
            row.ratio_vs_baseline = Some(row.rps_median / base.rps_median);
            row.cpu_ratio_vs_baseline = row
                .server_cpu_us_per_req_median
                .zip(base.server_cpu_us_per_req_median)
                .map(|(a, b)| a / b);
            let total = |r: &SummaryRow| {
                r.server_cpu_us_per_req_median
                    .zip(r.client_cpu_us_per_req_median)
                    .map(|(s, c)| s + c)
            };
            row.cpu_predicted_ratio = total(base).zip(total(row)).map(|(b, r)| b / r);
        }
    }
    rows
}

/// A Markdown table of the summary.
pub fn table(rows: &[SummaryRow], baseline: &str) -> String {
    let mut out = format!(
        "| server | method | rounds | req/s (median) | req/s min–max | p50 ms | p99 ms | server CPU µs/req | loadgen CPU µs/req | errors | non-2xx | × {baseline} req/s | × {baseline} CPU/req | × {baseline} req/s predicted by CPU |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    let opt =
        |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into());
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0}–{:.0} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.label,
            r.method.to_uppercase(),
            r.rounds,
            r.rps_median,
            r.rps_min,
            r.rps_max,
            r.p50_ms_median,
            r.p99_ms_median,
            opt(r.server_cpu_us_per_req_median, 1),
            opt(r.client_cpu_us_per_req_median, 1),
            r.errors,
            r.non_2xx,
            opt(r.ratio_vs_baseline, 2),
            opt(r.cpu_ratio_vs_baseline, 2),
            opt(r.cpu_predicted_ratio, 2),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
