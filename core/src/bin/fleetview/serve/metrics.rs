//! `GET /metrics`: Prometheus metrics (text format, prometheus-client), names prefixed
//! `fleetview_`, labels of low cardinality (no IMEI).
//!
//! Counters and histograms are updated where things happen, through [`metrics()`] (one set per
//! process: the writer thread, connections and the API reach it without being handed it);
//! gauges (connections, queue depth, outbox lag) are read when the metrics are scraped.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::Ctx;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct State {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Result_ {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Forwarder {
    forwarder: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transport {
    transport: &'static str,
}

/// Every metric of the process.
pub(crate) struct Metrics {
    registry: Registry,
    connections: Family<State, Gauge>,
    logins: Family<Result_, Counter>,
    records: Counter,
    acks: Family<Transport, Counter>,
    decode_errors: Family<Kind, Counter>,
    commit: Histogram,
    ack_latency: Histogram,
    writer_queue: Gauge,
    commands: Family<Status, Counter>,
    forwarded: Family<Forwarder, Counter>,
    forward_failures: Family<Forwarder, Counter>,
    outbox_pending: Family<Forwarder, Gauge>,
    outbox_lag: Family<Forwarder, Gauge<f64, AtomicU64>>,
}

/// Latency buckets: 100 µs to about 6.5 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("fleetview");
        let m = Self {
            connections: Family::default(),
            logins: Family::default(),
            records: Counter::default(),
            acks: Family::default(),
            decode_errors: Family::default(),
            commit: seconds(),
            ack_latency: seconds(),
            writer_queue: Gauge::default(),
            commands: Family::default(),
            forwarded: Family::default(),
            forward_failures: Family::default(),
            outbox_pending: Family::default(),
            outbox_lag: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Device TCP connections held, by state (pending: not logged in yet)",
            m.connections.clone(),
        );
        registry.register(
            "logins",
            "Device logins, by result (accepted, refused)",
            m.logins.clone(),
        );
        registry.register(
            "records_committed",
            "Records committed to the database (new rows; a resent record is not counted)",
            m.records.clone(),
        );
        registry.register(
            "acks",
            "Acks sent to devices after the commit of their records, by transport",
            m.acks.clone(),
        );
        registry.register(
            "decode_errors",
            "Rejected device input, by error kind (core/docs/errors.md)",
            m.decode_errors.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time the writer took to apply and commit a group of jobs",
            m.commit.clone(),
        );
        registry.register(
            "ack_latency_seconds",
            "From a frame's arrival to its ack (decode, queue, commit)",
            m.ack_latency.clone(),
        );
        registry.register(
            "writer_queue_jobs",
            "Jobs waiting for the database writer",
            m.writer_queue.clone(),
        );
        registry.register(
            "commands",
            "Command status changes, by the new status",
            m.commands.clone(),
        );
        registry.register(
            "forwarded_items",
            "Records and events delivered by each forwarder",
            m.forwarded.clone(),
        );
        registry.register(
            "forward_failures",
            "Failed delivery attempts of each forwarder",
            m.forward_failures.clone(),
        );
        registry.register(
            "outbox_pending_entries",
            "Outbox entries a forwarder has not delivered yet",
            m.outbox_pending.clone(),
        );
        registry.register(
            "outbox_lag_seconds",
            "Age of the oldest entry a forwarder has not delivered (0 when none)",
            m.outbox_lag.clone(),
        );
        Self { registry, ..m }
    }

    /// A login accepted or refused (allowlist).
    pub(crate) fn login(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "refused" };
        self.logins.get_or_create(&Result_ { result }).inc();
    }

    pub(crate) fn committed(&self, records: usize) {
        self.records.inc_by(records as u64);
    }

    /// An ack sent, `latency` after the frame arrived.
    pub(crate) fn ack(&self, transport: &'static str, latency: Duration) {
        self.acks.get_or_create(&Transport { transport }).inc();
        self.ack_latency.observe(latency.as_secs_f64());
    }

    /// Rejected input of the kind `kind` (`DecodeError::code`).
    pub(crate) fn decode_error(&self, kind: &'static str) {
        self.decode_errors.get_or_create(&Kind { kind }).inc();
    }

    pub(crate) fn commit(&self, took: Duration) {
        self.commit.observe(took.as_secs_f64());
    }

    /// A command's new status.
    pub(crate) fn command(&self, status: &'static str) {
        self.commands.get_or_create(&Status { status }).inc();
    }
}

/// The process's metrics.
pub(crate) fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The text exposition, with the gauges read now.
pub(crate) async fn render(ctx: &Arc<Ctx>) -> String {
    let m = metrics();
    let (held, pending) = ctx.admission.counts();
    m.connections
        .get_or_create(&State { state: "pending" })
        .set(pending as i64);
    m.connections
        .get_or_create(&State { state: "logged_in" })
        .set(held.saturating_sub(pending) as i64);
    m.writer_queue.set(ctx.store.queued() as i64);
    for f in &ctx.forwarders.all {
        let json = f.json(&ctx.reader).await;
        let label = Forwarder {
            forwarder: json.name.clone(),
        };
        set_counter(&m.forwarded, &label, json.delivered);
        set_counter(&m.forward_failures, &label, json.failures);
        m.outbox_pending.get_or_create(&label).set(json.pending);
        m.outbox_lag.get_or_create(&label).set(json.lag_seconds);
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &m.registry) {
        tracing::warn!("metrics: {e}");
    }
    out
}

/// A counter kept elsewhere (a forwarder's), brought up to `value`.
fn set_counter(family: &Family<Forwarder, Counter>, label: &Forwarder, value: u64) {
    let c = family.get_or_create(label);
    let now = c.get();
    if value > now {
        c.inc_by(value - now);
    }
}
