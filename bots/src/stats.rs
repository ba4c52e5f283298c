//! What a run measures, kept per task, merged per worker and across workers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::gap::Gaps;

/// Highest latency recorded, in microseconds (longer ones are clamped to it): 10 minutes.
const MAX_MICROS: u64 = 600_000_000;

/// A latency histogram in microseconds, three significant figures. It costs nothing until a
/// value is recorded (a histogram of this range is ~160 KB, and idle sessions record none).
#[derive(Debug, Clone, Default)]
pub struct Latency(Option<Box<Histogram<u64>>>);

impl Latency {
    fn histogram(&mut self) -> &mut Histogram<u64> {
        self.0.get_or_insert_with(|| {
            Box::new(Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds"))
        })
    }

    /// Records one latency.
    pub fn record(&mut self, micros: u64) {
        self.histogram().saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds another histogram's values.
    pub fn add(&mut self, other: &Latency) {
        if let Some(theirs) = &other.0 {
            // Same bounds on both sides, so this cannot fail.
            let _ = self.histogram().add(theirs.as_ref());
        }
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    /// The value at `quantile`, in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.0.as_ref().map_or(0.0, |h| h.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// The largest value, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.0.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0)
    }

    /// p50, p90, p99, p99.9 and max, in milliseconds.
    pub fn summary(&self) -> Value {
        json!({"count": self.count(), "p50_ms": self.ms(0.5), "p90_ms": self.ms(0.9), "p99_ms": self.ms(0.99),
               "p999_ms": self.ms(0.999), "max_ms": self.max_ms()})
    }

    fn encode(&self) -> String {
        let Some(histogram) = &self.0 else { return String::new() };
        let mut bytes = Vec::new();
        // Writing into a Vec only fails on a histogram too large to encode, which ours is not.
        let _ = V2Serializer::new().serialize(histogram.as_ref(), &mut bytes);
        STANDARD.encode(bytes)
    }

    fn decode(text: &str) -> anyhow::Result<Latency> {
        let mut latency = Latency::default();
        if !text.is_empty() {
            let bytes = STANDARD.decode(text)?;
            let histogram: Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice())?;
            latency.histogram().add(&histogram)?;
        }
        Ok(latency)
    }
}

/// One histogram that many tasks of a worker record into, each through a [`Recorder`].
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<Latency>>);

impl Shared {
    /// A recorder for one task.
    pub fn recorder(&self) -> Recorder {
        Recorder { shared: self.clone(), buffer: Vec::new() }
    }

    /// What was recorded.
    pub fn take(&self) -> Latency {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A task's buffer in front of a [`Shared`] histogram: one lock per [`RECORD_BATCH`] values.
#[derive(Debug)]
pub struct Recorder {
    shared: Shared,
    buffer: Vec<u64>,
}

/// Values a recorder holds before it takes the shared histogram's lock.
const RECORD_BATCH: usize = 256;

impl Recorder {
    /// Records one latency, in microseconds.
    pub fn record(&mut self, micros: u64) {
        self.buffer.push(micros);
        if self.buffer.len() >= RECORD_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut shared = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        for micros in self.buffer.drain(..) {
            shared.record(micros);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.encode())
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Latency::decode(&text).map_err(serde::de::Error::custom)
    }
}

/// Everything one worker (or a whole run) measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Sessions that opened and were authenticated.
    pub sessions: u64,
    /// Sessions that could not open or authenticate, by reason.
    pub connect_failures: BTreeMap<String, u64>,
    /// Time from dialing to an authenticated session.
    pub connect_latency: Latency,
    /// Sends made.
    pub sent: u64,
    /// Sends the server acknowledged with success.
    pub acked: u64,
    /// Failed replies, by error reason.
    pub errors: BTreeMap<String, u64>,
    /// Messages received by sessions, counted once per receiving session.
    pub deliveries: u64,
    /// Bytes of the frames that carried them (the average tells the frame size).
    pub delivered_bytes: u64,
    /// Of those, the ones received before the senders stopped: what rates are computed from,
    /// so a backlog drained afterwards does not inflate them.
    pub deliveries_in_window: u64,
    /// Acknowledgements received before the senders stopped.
    pub acked_in_window: u64,
    /// Send (scheduled) time to each delivery.
    pub latency: Latency,
    /// Send (scheduled) time to the server's acknowledgement.
    pub ack_latency: Latency,
    /// Loss and disorder seen by receiving sessions.
    pub gaps: Gaps,
    /// Sessions the server closed during the run, by close reason.
    pub closed: BTreeMap<String, u64>,
    /// For a slow consumer: milliseconds from the start until the server dropped it.
    pub dropped_after_ms: Option<f64>,
}

impl Stats {
    /// Adds another worker's or task's figures into these.
    pub fn merge(&mut self, other: &Stats) {
        self.sessions += other.sessions;
        add_counts(&mut self.connect_failures, &other.connect_failures);
        self.connect_latency.add(&other.connect_latency);
        self.sent += other.sent;
        self.acked += other.acked;
        add_counts(&mut self.errors, &other.errors);
        self.deliveries += other.deliveries;
        self.delivered_bytes += other.delivered_bytes;
        self.deliveries_in_window += other.deliveries_in_window;
        self.acked_in_window += other.acked_in_window;
        self.latency.add(&other.latency);
        self.ack_latency.add(&other.ack_latency);
        self.gaps.add(&other.gaps);
        add_counts(&mut self.closed, &other.closed);
        self.dropped_after_ms = match (self.dropped_after_ms, other.dropped_after_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Counts a failure under `reason`.
    pub fn fail(map: &mut BTreeMap<String, u64>, reason: &str) {
        *map.entry(reason.to_owned()).or_default() += 1;
    }

    /// The figures as JSON for scripts, with rates over `seconds`.
    pub fn to_json(&self, seconds: f64) -> Value {
        let per_sec = |n: u64| if seconds > 0.0 { (n as f64 / seconds).round() } else { 0.0 };
        json!({
            "sessions": self.sessions,
            "connect_failures": self.connect_failures,
            "connect_latency": self.connect_latency.summary(),
            "sent": self.sent,
            "acked": self.acked,
            "acked_per_sec": per_sec(self.acked_in_window),
            "errors": self.errors,
            "deliveries": self.deliveries,
            "deliveries_per_sec": per_sec(self.deliveries_in_window),
            "delivery_frame_bytes": self.delivered_bytes.checked_div(self.deliveries).unwrap_or(0),
            "latency": self.latency.summary(),
            "ack_latency": self.ack_latency.summary(),
            "gaps": self.gaps,
            "closed": self.closed,
            "dropped_after_ms": self.dropped_after_ms,
        })
    }

    /// The figures as a table for people.
    pub fn table(&self, seconds: f64) -> String {
        let rate = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
        let lat = |l: &Latency| {
            if l.count() == 0 {
                "-".to_owned()
            } else {
                format!(
                    "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
                    l.ms(0.5),
                    l.ms(0.9),
                    l.ms(0.99),
                    l.ms(0.999),
                    l.max_ms(),
                    l.count()
                )
            }
        };
        let counts = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
            }
        };
        let mut out = String::new();
        out += &format!("sessions         {} open, failures: {}\n", self.sessions, counts(&self.connect_failures));
        out += &format!("connect ms       {}\n", lat(&self.connect_latency));
        out += &format!(
            "sent             {} ({:.0}/s), acked {} ({:.0}/s while sending)\n",
            self.sent,
            rate(self.sent),
            self.acked,
            rate(self.acked_in_window)
        );
        out += &format!("ack ms           {}\n", lat(&self.ack_latency));
        out +=
            &format!("deliveries       {} ({:.0}/s while sending)\n", self.deliveries, rate(self.deliveries_in_window));
        out += &format!("delivery ms      {}\n", lat(&self.latency));
        out += &format!(
            "gap check        missing {}, duplicates {}, reordered {}\n",
            self.gaps.missing, self.gaps.duplicates, self.gaps.reordered
        );
        out += &format!("errors           {}\n", counts(&self.errors));
        out += &format!("closed by server {}\n", counts(&self.closed));
        if let Some(ms) = self.dropped_after_ms {
            out += &format!("slow consumer    dropped after {ms:.0} ms\n");
        }
        out
    }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_and_clamping() {
        let mut l = Latency::default();
        for us in 1..=1000 {
            l.record(us * 1000);
        }
        assert!((l.ms(0.5) - 500.0).abs() < 1.0, "{}", l.ms(0.5));
        assert!((l.ms(0.99) - 990.0).abs() < 1.0, "{}", l.ms(0.99));
        l.record(0);
        l.record(u64::MAX);
        assert_eq!(l.count(), 1002);
        assert!((l.max_ms() - 600_000.0).abs() / 600_000.0 < 0.001);
    }

    #[test]
    fn stats_survive_the_trip_between_processes_and_merge() {
        let mut a =
            Stats { sessions: 2, sent: 10, acked: 9, deliveries: 100, deliveries_in_window: 100, ..Default::default() };
        a.latency.record(1500);
        a.latency.record(2500);
        Stats::fail(&mut a.errors, "rate_limited");
        a.gaps.missing = 1;
        let text = serde_json::to_string(&a).unwrap();
        let b: Stats = serde_json::from_str(&text).unwrap();
        assert_eq!(b.latency.count(), 2);
        assert_eq!(b.errors["rate_limited"], 1);
        assert_eq!(
            serde_json::from_str::<Stats>(&serde_json::to_string(&Stats::default()).unwrap()).unwrap().latency.count(),
            0
        );
        let shared = Shared::default();
        {
            let (mut r1, mut r2) = (shared.recorder(), shared.recorder());
            (0..300).for_each(|i| r1.record(i + 1));
            r2.record(5);
        }
        assert_eq!(shared.take().count(), 301, "recorders flush what they hold when dropped");
        let mut total = Stats { dropped_after_ms: Some(900.0), ..Default::default() };
        total.merge(&b);
        total.merge(&Stats { dropped_after_ms: Some(400.0), ..a.clone() });
        assert_eq!((total.sessions, total.sent, total.acked, total.deliveries), (4, 20, 18, 200));
        assert_eq!(total.latency.count(), 4);
        assert_eq!(total.errors["rate_limited"], 2);
        assert_eq!(total.gaps.missing, 2);
        assert_eq!(total.dropped_after_ms, Some(400.0));
        assert_eq!(total.to_json(2.0)["deliveries_per_sec"], 100.0);
        assert!(total.table(2.0).contains("missing 2"));
    }
}
