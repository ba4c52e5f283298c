//! Rate limits: token buckets for requests (per session, per user, per address), login
//! attempts (per username and per address) and password-reset requests (per account); and the
//! addresses with failed logins lately, whose password checks wait behind everyone else's.
//!
//! Every bucket map is swept of idle keys periodically ([`Limits::sweep`]), so an attacker
//! cycling through names or addresses cannot grow memory without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::{SessionId, UserId};

/// Refusals a session may collect within [`ABUSE_WINDOW`] before it is closed.
const ABUSE_REFUSALS: u32 = 20;
const ABUSE_WINDOW: Duration = Duration::from_secs(10);
/// How long an address with a failed login stays suspect.
const SUSPECT_WINDOW: Duration = Duration::from_secs(60);

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

/// `per_second` on average, bursts of twice that.
fn per_second(per_second: u32) -> Quota {
    Quota::per_second(nonzero(per_second)).allow_burst(nonzero(per_second.saturating_mul(2)))
}

/// `count` per `period`, all of them at once if need be.
fn per_period(count: u32, period: Duration) -> Quota {
    Quota::with_period(period / count.max(1)).unwrap_or(Quota::per_hour(NonZeroU32::MIN)).allow_burst(nonzero(count))
}

/// All the node's rate limiters.
pub struct Limits {
    session: DefaultKeyedRateLimiter<SessionId>,
    user: DefaultKeyedRateLimiter<UserId>,
    address: DefaultKeyedRateLimiter<IpAddr>,
    login_name: DefaultKeyedRateLimiter<String>,
    login_address: DefaultKeyedRateLimiter<IpAddr>,
    reset: DefaultKeyedRateLimiter<UserId>,
    abuse: DefaultKeyedRateLimiter<SessionId>,
    /// When each address last failed a login. Its entries come only from password checks,
    /// which the login buckets and the hashing queues bound, and are swept after
    /// [`SUSPECT_WINDOW`].
    failed_logins: DashMap<IpAddr, Instant>,
}

fn check<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<()> {
    limiter.check_key(key).map_err(|not_until| Error::RateLimited {
        retry_after_ms: not_until.wait_time_from(DefaultClock::default().now()).as_millis().max(1) as u64,
    })
}

impl Limits {
    /// The limits the configuration sets.
    pub fn new(config: &Config) -> Self {
        Limits {
            session: RateLimiter::keyed(per_second(config.rate_session)),
            user: RateLimiter::keyed(per_second(config.rate_user)),
            address: RateLimiter::keyed(per_second(config.rate_address)),
            login_name: RateLimiter::keyed(per_period(config.login_attempts_per_minute, Duration::from_secs(60))),
            login_address: RateLimiter::keyed(per_period(
                config.login_attempts_per_minute.saturating_mul(6),
                Duration::from_secs(60),
            )),
            reset: RateLimiter::keyed(per_period(config.resets_per_hour, Duration::from_secs(3600))),
            abuse: RateLimiter::keyed(per_period(ABUSE_REFUSALS, ABUSE_WINDOW)),
            failed_logins: DashMap::new(),
        }
    }

    /// One request: a socket's counts against its session and its user, an HTTP request's
    /// against its address.
    pub fn request(&self, session: Option<SessionId>, user: Option<UserId>, address: Option<IpAddr>) -> Result<()> {
        if let Some(session) = session {
            check(&self.session, &session)?;
        }
        if let Some(user) = user {
            check(&self.user, &user)?;
        }
        match (session, address) {
            (None, Some(address)) => check(&self.address, &address),
            _ => Ok(()),
        }
    }

    /// One HTTP request made with a user's token, once the token is known to be theirs: it
    /// counts against the same per-user bucket as their sockets' frames.
    pub fn user_request(&self, user: UserId) -> Result<()> {
        check(&self.user, &user)
    }

    /// Whether a session that was just refused has been refused too often: it is then closed.
    pub fn abusive(&self, session: SessionId) -> bool {
        self.abuse.check_key(&session).is_err()
    }

    /// One login attempt for `username` from `address`.
    pub fn login(&self, username: &str, address: &str) -> Result<()> {
        check(&self.login_name, &username.to_ascii_lowercase())?;
        match address.parse::<IpAddr>() {
            Ok(ip) => check(&self.login_address, &ip),
            Err(_) => Ok(()),
        }
    }

    /// Notes a failed login from `address`.
    pub fn login_failed(&self, address: &str) {
        if let Ok(ip) = address.parse::<IpAddr>() {
            self.failed_logins.insert(ip, Instant::now());
        }
    }

    /// Whether `address` failed a login within the last minute: its password checks then go
    /// behind those of everyone else, so that guessing from a few addresses can't make other
    /// people's logins wait.
    pub fn is_suspect(&self, address: &str) -> bool {
        address
            .parse::<IpAddr>()
            .ok()
            .and_then(|ip| self.failed_logins.get(&ip).map(|at| at.elapsed() < SUSPECT_WINDOW))
            .unwrap_or(false)
    }

    /// Whether another password reset may be sent to this account now.
    pub fn reset(&self, user_id: UserId) -> bool {
        self.reset.check_key(&user_id).is_ok()
    }

    /// Forgets keys whose buckets are full again (idle), bounding memory.
    pub fn sweep(&self) {
        self.session.retain_recent();
        self.user.retain_recent();
        self.address.retain_recent();
        self.login_name.retain_recent();
        self.login_address.retain_recent();
        self.reset.retain_recent();
        self.abuse.retain_recent();
        self.failed_logins.retain(|_, at| at.elapsed() < SUSPECT_WINDOW);
    }
}
