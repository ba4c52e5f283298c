//! S8: logins while others flood the server with work that hashes, or used to: bogus password
//! resets, registrations and wrong-password logins. A person's login p99 during the flood is
//! compared with its p99 in calm, in the same run, under the limits people get.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use crate::common::{BOTS_CPU, chatgate};
use crate::{Report, Sizes, ratio};

/// People who log in, each from an address of their own, once per phase.
const PEOPLE: usize = 100;
/// Flooding clients, spread over 127.0.0.2-9.
const FLOODERS: usize = 32;
const PASSWORD: &str = "a person's long password";

pub fn s8(report: &mut Report, _z: &Sizes) {
    report.detail("\n## S8: logins during a hashing flood\n");
    let data = tempfile::tempdir().expect("S8 data dir");
    // The limits people get, not the load flags: what a real deployment would run with.
    let server = chatgate(
        data.path(),
        &["--rate-address", "50", "--login-attempts-per-minute", "10", "--rate-user", "50", "--rate-session", "20"],
    );
    let base = server.url().replace("ws://", "http://");
    // The people and the flood are this process's threads: on the load's own CPU, as the bots
    // are elsewhere, so that they take no time from the server's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(pin_to_load_cpu)
        .build()
        .expect("runtime");
    let (calm, flooded, counts) = runtime.block_on(async {
        register_people(&base).await;
        let calm = login_round(&base).await;
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let flood: Vec<_> =
            (0..FLOODERS).map(|i| tokio::spawn(flooder(base.clone(), i, stop.clone(), counts.clone()))).collect();
        // Let the flood fill every queue before measuring.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let flooded = login_round(&base).await;
        stop.store(true, Ordering::Relaxed);
        for task in flood {
            let _ = task.await;
        }
        (calm, flooded, counts)
    });
    let ((calm, calm_refused), (flooded, flood_refused)) = (calm, flooded);
    let (calm_p99, flood_p99) = (p99(calm), p99(flooded));
    report.detail(&format!(
        "- {PEOPLE} people log in one after another, each from an address of its own (127.0.1.x), once in calm and once while {FLOODERS} clients on 127.0.0.2-9 send bogus resets, registrations and wrong-password logins in a closed loop; server flags `--rate-address 50 --login-attempts-per-minute 10`\n- flood requests: {} sent, {} refused as `rate_limited`, {} other refusals, {} accepted\n- login p99 of those let in: {calm_p99:.1} ms calm, {flood_p99:.1} ms during the flood; people refused (`rate_limited`, the login hashing queue full): {calm_refused} of {PEOPLE} calm, {flood_refused} of {PEOPLE} during the flood",
        counts.sent.load(Ordering::Relaxed),
        counts.limited.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.accepted.load(Ordering::Relaxed),
    ));
    report.row(
        "S8",
        "login p99 during a flood of resets, registrations, bad logins",
        [
            format!("{flood_p99:.1} ms, {flood_refused} of {PEOPLE} refused"),
            format!("{calm_p99:.1} ms (calm)"),
            ratio(flood_p99, calm_p99),
        ],
        "≤ 2 × calm, none refused",
        Some(flood_p99 <= 2.0 * calm_p99 && flood_refused == 0 && calm_refused == 0),
    );
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    limited: AtomicU64,
    refused: AtomicU64,
    accepted: AtomicU64,
}

fn client(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::V4(address)).build().expect("HTTP client")
}

fn person_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, 1 + i as u8)
}

async fn post(http: &reqwest::Client, base: &str, route: &str, body: Value) -> Value {
    match http.post(format!("{base}{route}")).json(&body).send().await {
        Ok(reply) => reply.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn register_people(base: &str) {
    for i in 0..PEOPLE {
        let body = json!({"username": format!("person-{i}"), "password": PASSWORD});
        let reply = post(&client(person_address(i)), base, "/user/register", body).await;
        assert_eq!(reply["code"], 0, "registering person-{i}: {reply}");
    }
}

/// Each person logs in once: the latencies of those let in, in ms, and how many were refused.
async fn login_round(base: &str) -> (Vec<f64>, usize) {
    let mut took = Vec::with_capacity(PEOPLE);
    let mut refused = 0;
    for i in 0..PEOPLE {
        let http = client(person_address(i));
        let body = json!({"username": format!("person-{i}"), "password": PASSWORD});
        let started = Instant::now();
        let reply = post(&http, base, "/user/login", body).await;
        if reply["code"] == 0 {
            took.push(started.elapsed().as_secs_f64() * 1000.0);
        } else {
            refused += 1;
        }
    }
    (took, refused)
}

async fn flooder(base: String, i: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let http = client(Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (route, body) = match n % 3 {
            0 => {
                let secret: String = {
                    let mut rng = rand::rng();
                    (0..64).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap()).collect()
                };
                ("/user/resetPassword", json!({"resetToken": secret, "password": "an attacker's password"}))
            }
            1 => {
                ("/user/register", json!({"username": format!("flood-{i}-{n}"), "password": "an attacker's password"}))
            }
            _ => ("/user/login", json!({"username": format!("flood-{i}-1"), "password": "wrong wrong wrong"})),
        };
        let reply = post(&http, &base, route, body).await;
        counts.sent.fetch_add(1, Ordering::Relaxed);
        let counter = match (reply["code"].as_i64(), reply["error"].as_str()) {
            (Some(0), _) => &counts.accepted,
            (_, Some("rate_limited")) => &counts.limited,
            _ => &counts.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn p99(mut took: Vec<f64>) -> f64 {
    if took.is_empty() {
        return f64::NAN;
    }
    took.sort_by(f64::total_cmp);
    took[(took.len() * 99 / 100).min(took.len() - 1)]
}

/// Pins the calling thread to the CPU the load runs on.
fn pin_to_load_cpu() {
    let cpu: usize = BOTS_CPU.parse().expect("one CPU number");
    // SAFETY: the set is a plain bit set on the stack, sized as the call is told.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}
