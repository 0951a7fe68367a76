//! Telling the live publisher that the CA's database may have changed.
//!
//! With `notify_channel`, the watcher LISTENs and signals on every notification (the CA's
//! schema adds a trigger, see docs/postgres.md); otherwise it polls
//! `max(updated_at) WHERE updated_at > $last` every `poll_interval`. Either way it only
//! signals ([`InputChanged`]); the publisher re-reads the whole table consistently.
//!
//! A lost connection is retried with capped exponential backoff and jitter, counted in
//! `ocsp_edge_publisher_input_errors_total{kind}` and shown by
//! `ocsp_edge_publisher_input_connected`; after every (re)connection the watcher signals
//! once, since what changed while nobody listened is unknown. Logs name the database
//! (`postgres://user@host:port/db`), never the password. Never writes to the database.

use super::{ConfigProblem, ErrorKind, PostgresError, PostgresInput};
use crate::publish::signal::{ChangeSender, InputChanged, InputMetrics};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_postgres::{AsyncMessage, Client};

/// The first wait after a failure; it doubles up to `reconnect_max`.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// How often an idle LISTEN connection is checked, so a server that vanished without
/// closing the connection is noticed in bounded time.
const LISTEN_HEALTH_CHECK: Duration = Duration::from_secs(15);

/// Watches `input` until the receiving end of `changes` is dropped.
pub async fn watch(input: Arc<PostgresInput>, changes: ChangeSender, metrics: InputMetrics) {
    let issuer = input.issuer.as_str();
    let mut backoff = Backoff::new(input.reconnect_max);
    metrics.set_connected(issuer, false);
    loop {
        let failure = match input.connect().await {
            Ok((client, connection)) => {
                metrics.set_connected(issuer, true);
                backoff.reset();
                tracing::info!(issuer, database = %input.target(), "watching the CA database");
                let ended = if changes.try_send(reconnected(issuer)).is_err() && changes.is_closed() {
                    Ended::Stopped
                } else {
                    match &input.config.notify_channel {
                        Some(channel) => listen(&input, client, connection, channel, &changes).await,
                        None => poll(&input, client, connection, &changes).await,
                    }
                };
                metrics.set_connected(issuer, false);
                match ended {
                    Ended::Stopped => return,
                    Ended::Failed(error) => error,
                }
            }
            Err(error) => error,
        };
        let kind = match &failure {
            PostgresError::Database { kind, .. } => *kind,
            PostgresError::Config { .. } => ErrorKind::Connect,
        };
        metrics.error(issuer, kind.label());
        let delay = backoff.next_delay();
        tracing::warn!(issuer, error = %failure, retry_in = ?delay, "CA database watcher");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = changes.closed() => return,
        }
    }
}

enum Ended {
    /// The publisher is gone.
    Stopped,
    Failed(PostgresError),
}

fn reconnected(issuer: &str) -> InputChanged {
    InputChanged {
        issuer: issuer.to_string(),
        age: None,
    }
}

/// Sends without waiting: a full channel already holds a signal that will make the
/// publisher re-read everything, so dropping this one loses nothing.
fn signal(changes: &ChangeSender, issuer: &str, age: Option<Duration>) -> Result<(), Ended> {
    match changes.try_send(InputChanged {
        issuer: issuer.to_string(),
        age,
    }) {
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Err(Ended::Stopped),
        _ => Ok(()),
    }
}

async fn listen(
    input: &PostgresInput,
    client: Client,
    mut connection: super::Connection,
    channel: &str,
    changes: &ChangeSender,
) -> Ended {
    // The connection must be polled by hand to see notifications; a task forwards them
    // and ends with the connection.
    let (notifications, mut received) = tokio::sync::mpsc::unbounded_channel();
    let _driver = AbortOnDrop(tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let forward = match message {
                Ok(AsyncMessage::Notification(notification)) => Ok(notification.payload().to_string()),
                Ok(_) => continue,
                Err(error) => Err(error),
            };
            let failed = forward.is_err();
            if notifications.send(forward).is_err() || failed {
                break;
            }
        }
    }));
    listen_on(input, &client, channel, changes, &mut received).await
}

/// Ends a connection's task with the watcher's, also when the watcher's own task is
/// aborted (the live publisher does so on reload and shutdown): no connection outlives it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn listen_on(
    input: &PostgresInput,
    client: &Client,
    channel: &str,
    changes: &ChangeSender,
    received: &mut tokio::sync::mpsc::UnboundedReceiver<Result<String, tokio_postgres::Error>>,
) -> Ended {
    let issuer = input.issuer.as_str();
    // `channel` was checked to be a plain identifier.
    if let Err(error) = client.batch_execute(&format!("LISTEN {channel}")).await {
        return Ended::Failed(input.error(ErrorKind::Query, &error));
    }
    let mut health = tokio::time::interval(LISTEN_HEALTH_CHECK);
    health.tick().await;
    loop {
        tokio::select! {
            message = received.recv() => match message {
                Some(Ok(payload)) => {
                    if let Err(ended) = signal(changes, issuer, age_of_payload(&payload)) {
                        return ended;
                    }
                }
                Some(Err(error)) => return Ended::Failed(input.error(ErrorKind::Lost, &error)),
                None => return Ended::Failed(lost(input)),
            },
            _ = health.tick() => {
                let check = tokio::time::timeout(input.connect_timeout, client.simple_query("")).await;
                match check {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => return Ended::Failed(input.error(ErrorKind::Lost, &error)),
                    Err(_) => return Ended::Failed(lost(input)),
                }
            }
            _ = changes.closed() => return Ended::Stopped,
        }
    }
}

fn lost(input: &PostgresInput) -> PostgresError {
    PostgresError::Database {
        target: input.target(),
        kind: ErrorKind::Lost,
        message: "the connection ended (or stopped answering)".into(),
    }
}

/// The trigger in docs/postgres.md sends `extract(epoch from now())`: when the changing
/// transaction began. Anything else (or a time ahead of ours) gives no age; the payload is
/// only ever a metric, never trusted for anything else.
fn age_of_payload(payload: &str) -> Option<Duration> {
    let seconds: f64 = payload.trim().parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let age = now - seconds;
    (0.0..1e9).contains(&age).then(|| Duration::from_secs_f64(age))
}

async fn poll(
    input: &PostgresInput,
    client: Client,
    connection: super::Connection,
    changes: &ChangeSender,
) -> Ended {
    let _driver = AbortOnDrop(tokio::spawn(async move {
        // Its error surfaces as the failure of the next poll.
        let _ = connection.await;
    }));
    poll_with(input, &client, changes).await
}

async fn poll_with(input: &PostgresInput, client: &Client, changes: &ChangeSender) -> Ended {
    let issuer = input.issuer.as_str();
    let statement = match poll_statement(input) {
        Ok(sql) => sql,
        Err(problem) => return Ended::Failed(input.config_error(problem)),
    };
    let query_error = |error: tokio_postgres::Error| {
        let kind = if error.is_closed() {
            ErrorKind::Lost
        } else {
            ErrorKind::Query
        };
        Ended::Failed(input.error(kind, &error))
    };
    // `timestamp` columns hold UTC, as the read takes them.
    if let Err(error) = client.batch_execute("SET TIME ZONE 'UTC'").await {
        return query_error(error);
    }
    let statement = match client.prepare(&statement).await {
        Ok(statement) => statement,
        Err(error) => return query_error(error),
    };
    let mut last: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut ticks = tokio::time::interval(input.poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = changes.closed() => return Ended::Stopped,
        }
        let since = last.unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
        let newest =
            tokio::time::timeout(input.connect_timeout, client.query_one(&statement, &[&since])).await;
        let newest: Option<chrono::DateTime<chrono::Utc>> = match newest {
            Ok(Ok(row)) => match row.try_get(0) {
                Ok(value) => value,
                Err(error) => return query_error(error),
            },
            Ok(Err(error)) => return query_error(error),
            Err(_) => return Ended::Failed(lost(input)),
        };
        let Some(newest) = newest else { continue };
        // The first poll after connecting only sets the mark: the connection's own
        // signal already covers whatever happened before.
        if last.replace(newest).is_some() {
            let age = (chrono::Utc::now() - newest).to_std().ok();
            if let Err(ended) = signal(changes, issuer, age) {
                return ended;
            }
        }
    }
}

/// `SELECT max(updated_at) … WHERE updated_at > $1`, over the table or the configured query.
fn poll_statement(input: &PostgresInput) -> Result<String, ConfigProblem> {
    let c = &input.config;
    let Some(column) = &c.columns.updated_at else {
        return Err(ConfigProblem::PollWithoutUpdatedAt);
    };
    let column = format!("\"{}\"", column.replace('"', "\"\""));
    let source = match (&c.table, &c.query) {
        (Some(table), _) => {
            super::read::quote_table(table).ok_or_else(|| ConfigProblem::TableName(table.clone()))?
        }
        (None, Some(query)) => format!("({query}) AS input"),
        (None, None) => return Err(ConfigProblem::TableOrQuery),
    };
    Ok(format!(
        "SELECT max({column})::timestamptz FROM {source} WHERE {column} > $1::timestamptz"
    ))
}

/// Consecutive failures, for the shared capped exponential backoff with jitter
/// ([`ocsp_edge_core::backoff`]), so watchers of many issuers (or publishers) do not retry in lockstep.
struct Backoff {
    failures: u32,
    cap: Duration,
}

impl Backoff {
    fn new(cap: Duration) -> Backoff {
        Backoff { failures: 0, cap }
    }

    fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        ocsp_edge_core::backoff::jittered(ocsp_edge_core::backoff::exponential(
            FIRST_RETRY,
            self.cap,
            self.failures,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(2));
        let steps: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        let steps_ms = [200, 400, 800, 1600, 2000, 2000, 2000, 2000];
        for (delay, step) in steps.iter().zip(steps_ms) {
            let step = Duration::from_millis(step);
            // ±20 % jitter around each step.
            assert!(
                *delay >= step.mul_f64(0.8) && *delay < step.mul_f64(1.2),
                "{delay:?} for step {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() < FIRST_RETRY.mul_f64(1.2));
    }

    fn input(extra: &str) -> PostgresInput {
        let text =
            format!("host = \"127.0.0.1\"\ndbname = \"ca\"\nuser = \"reader\"\ntls = \"disable\"\n{extra}");
        toml::from_str::<super::super::PostgresConfig>(&text)
            .unwrap()
            .checked("ec")
            .unwrap()
    }

    #[test]
    fn the_poll_needs_updated_at_and_quotes_it() {
        let problem = poll_statement(&input("table = \"certs\"\n")).unwrap_err();
        assert!(
            matches!(problem, ConfigProblem::PollWithoutUpdatedAt),
            "{problem:?}"
        );
        assert_eq!(
            problem.to_string(),
            "without notify_channel the watcher polls columns.updated_at; map it (or set notify_channel)"
        );
        let sql = poll_statement(&input("table = \"ca.certs\"\n[columns]\nupdated_at = 'a\"b'\n")).unwrap();
        assert_eq!(
            sql,
            "SELECT max(\"a\"\"b\")::timestamptz FROM ca.certs WHERE \"a\"\"b\" > $1::timestamptz"
        );
        let sql = poll_statement(&input("query = \"SELECT 1\"\n[columns]\nupdated_at = \"u\"\n")).unwrap();
        assert!(sql.contains("FROM (SELECT 1) AS input"), "{sql}");
    }

    #[test]
    fn only_a_past_epoch_payload_gives_an_age() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let age = age_of_payload(&format!("{}", now - 2.5)).unwrap();
        assert!(
            age >= Duration::from_secs(2) && age < Duration::from_secs(10),
            "{age:?}"
        );
        for payload in ["", "soon", "NaN", "inf", "-inf", &format!("{}", now + 60.0)] {
            assert_eq!(age_of_payload(payload), None, "{payload}");
        }
    }
}
