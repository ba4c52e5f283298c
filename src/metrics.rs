//! Prometheus metrics, served at `/metrics` in the text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `route` label of request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route's path in the route table, or `unknown`.
    pub route: &'static str,
}

/// The labels of the request counter: each from a fixed set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// The route's path in the route table, or `unknown`.
    pub route: &'static str,
    /// The status class: `2xx`, `4xx` or `5xx`.
    pub status: &'static str,
    /// `ok`, or the error's reason with validation fields folded into `validation`.
    pub reason: &'static str,
}

/// The labels of the password hashing counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HashingLabel {
    /// `check` (a login) or `new` (a registration or reset).
    pub pool: &'static str,
    /// `queued`, or `refused` when the pool's queue was full.
    pub outcome: &'static str,
}

/// The `state` label of presence changes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PresenceLabel {
    /// `online` or `offline`.
    pub state: &'static str,
}

/// Every metric the node exports.
pub struct Metrics {
    registry: Registry,
    /// Authenticated sessions on this node.
    pub sessions: Gauge,
    /// WebSocket frames received.
    pub frames_in: Counter,
    /// WebSocket frames queued for sending.
    pub frames_out: Counter,
    /// Pushes queued to sessions.
    pub deliveries: Counter,
    /// Sessions dropped because their outbound queue was full.
    pub queue_drops: Counter,
    /// Envelopes published to Redis.
    pub redis_publishes: Counter,
    /// Envelopes that could not be published (Redis down, or the queue full).
    pub redis_publish_failures: Counter,
    /// Times the Redis connection was lost (each followed by reconnect and resubscribe).
    pub redis_reconnects: Counter,
    /// Inbound bus envelopes dropped because this node could not keep up.
    pub bus_dropped: Counter,
    /// 1 while the bus (Redis) answers, 0 while this node runs degraded without it.
    pub bus_up: Gauge,
    /// Times every live session's token was checked against the database.
    pub revalidations: Counter,
    /// Request latency by route, in seconds.
    pub request_seconds: Family<RouteLabel, Histogram>,
    /// Requests by route, status class and reason.
    pub requests: Family<OutcomeLabel, Counter>,
    /// Password hashing jobs, by pool and whether they were queued or refused.
    pub hashing: Family<HashingLabel, Counter>,
    /// Users whose first session here opened (`online`) or whose last one closed (`offline`).
    pub presence_changes: Family<PresenceLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("chatgate");
        let request_seconds = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let metrics = Metrics {
            sessions: Gauge::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            deliveries: Counter::default(),
            queue_drops: Counter::default(),
            redis_publishes: Counter::default(),
            redis_publish_failures: Counter::default(),
            redis_reconnects: Counter::default(),
            bus_dropped: Counter::default(),
            bus_up: Gauge::default(),
            revalidations: Counter::default(),
            request_seconds: request_seconds.clone(),
            requests: Family::default(),
            hashing: Family::default(),
            presence_changes: Family::default(),
            registry: Registry::default(),
        };
        registry.register("sessions", "Authenticated sessions on this node", metrics.sessions.clone());
        registry.register("frames_in", "WebSocket frames received", metrics.frames_in.clone());
        registry.register("frames_out", "WebSocket frames queued for sending", metrics.frames_out.clone());
        registry.register("deliveries", "Pushes queued to sessions", metrics.deliveries.clone());
        registry.register("queue_drops", "Sessions dropped for a full outbound queue", metrics.queue_drops.clone());
        registry.register("redis_publishes", "Envelopes published to Redis", metrics.redis_publishes.clone());
        registry.register("redis_publish_failures", "Envelopes not published", metrics.redis_publish_failures.clone());
        registry.register("redis_reconnects", "Redis connection losses", metrics.redis_reconnects.clone());
        registry.register("bus_dropped", "Inbound bus envelopes dropped", metrics.bus_dropped.clone());
        registry.register(
            "revalidations",
            "Checks of every session against the database",
            metrics.revalidations.clone(),
        );
        registry.register(
            "bus_up",
            "Whether the bus answers (1) or the node runs degraded (0)",
            metrics.bus_up.clone(),
        );
        registry.register("request_seconds", "Request latency by route", request_seconds);
        registry.register("requests", "Requests by route, status class and reason", metrics.requests.clone());
        registry.register("password_hashes", "Password hashing jobs by pool and outcome", metrics.hashing.clone());
        registry.register(
            "presence_changes",
            "Users coming online or going offline on this node",
            metrics.presence_changes.clone(),
        );
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    /// Records one request: its duration under its route, and its outcome, `None` for success
    /// or the error's HTTP status and reason family.
    pub fn observe(&self, route: &'static str, seconds: f64, failure: Option<(u16, &'static str)>) {
        self.request_seconds.get_or_create(&RouteLabel { route }).observe(seconds);
        let (status, reason) = match failure {
            None => ("2xx", "ok"),
            Some((status, reason)) if status >= 500 => ("5xx", reason),
            Some((_, reason)) => ("4xx", reason),
        };
        self.requests.get_or_create(&OutcomeLabel { route, status, reason }).inc();
    }

    /// Counts one password hashing job of `pool`, queued or refused.
    pub fn hash_job(&self, pool: &'static str, queued: bool) {
        let outcome = if queued { "queued" } else { "refused" };
        self.hashing.get_or_create(&HashingLabel { pool, outcome }).inc();
    }

    /// Counts one user coming online (`true`) or going offline here.
    pub fn presence_change(&self, online: bool) {
        let state = if online { "online" } else { "offline" };
        self.presence_changes.get_or_create(&PresenceLabel { state }).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
