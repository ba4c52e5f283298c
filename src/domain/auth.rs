//! Credentials: argon2id password hashing off the async workers, and signed login tokens.
//!
//! Invariants:
//! - Password hashing never runs on a tokio worker: it runs on fixed sets of hashing threads
//!   behind short queues; a full queue answers `rate_limited` at once. New passwords hash at
//!   the lowest priority, so registrations and resets can't slow logins. Checks of logins from
//!   addresses that failed one lately queue apart and go last, so guessing can't slow others.
//! - Tokens are HS256 only; `exp`, `iat`, `nbf`, `iss` and `sub` are required and checked.
//!   Revocation (logout, reset) is not in the token: the user domain checks it in the store.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation, decode, encode};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::model::UserId;

/// argon2id at the OWASP floor: 19 MiB, two passes, one lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("static argon2 params are valid")
}

/// One hashing thread's argon2 working memory, allocated once and reused for every hash.
///
/// Letting argon2 allocate 19 MiB per hash leaves that memory stuck in the allocator: glibc's
/// adaptive mmap threshold rises past 19 MiB after the first free, later buffers come from
/// per-thread arenas, and RSS was measured at over 300 MB after 40 concurrent registrations
/// (against 12 MB when every buffer is mmapped). Owning the buffer makes the cost exactly
/// `threads × 19 MiB`, whatever the allocator.
struct Hasher {
    blocks: Vec<Block>,
}

impl Hasher {
    fn new() -> Self {
        Hasher { blocks: vec![Block::default(); params().block_count()] }
    }

    fn compute(&mut self, argon: &Argon2<'_>, password: &str, salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
        let needed = argon.params().block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut self.blocks)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    }

    fn hash(&mut self, password: &str) -> anyhow::Result<String> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let mut out = [0u8; 32];
        let params = params();
        self.compute(&Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()), password, &salt, &mut out)?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("{e}"))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("{e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &str, phc: &str) -> anyhow::Result<bool> {
        let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let version = Version::try_from(parsed.version.unwrap_or(0x13)).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            anyhow::bail!("stored hash lacks salt or output");
        };
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut out = vec![0u8; expected.len()];
        self.compute(&Argon2::new(Algorithm::Argon2id, version, params), password, salt, &mut out)?;
        // `Output` compares in constant time.
        Ok(Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))? == expected)
    }
}

type Job = Box<dyn FnOnce(&mut Hasher) + Send>;

/// Jobs one hashing thread may have waiting in each lane before more are refused with
/// `rate_limited`.
const QUEUED_PER_THREAD: usize = 8;

/// The `nice` of the threads that hash new passwords: below everything else, so that a flood
/// of registrations or resets takes only the CPU that logins and sockets leave over.
const NEW_PASSWORD_NICE: i32 = 19;

/// How long a refused caller is told to wait before trying again.
const BUSY_RETRY_MS: u64 = 1000;

/// Which queue of a pool a job waits in: threads take every clean job before any suspect one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Everyone's.
    Clean = 0,
    /// From an address that failed a login lately.
    Suspect = 1,
}

/// Hashes and checks passwords on dedicated threads, in two pools: checks of logins at normal
/// priority, and hashes of new passwords (registration, reset) at the lowest, so that no flood
/// of the latter can slow the former. Each pool's queues are short and full means
/// `rate_limited` at once: excess work fails fast instead of piling up, and no tokio worker
/// ever hashes.
pub struct Passwords {
    checks: Pool,
    new_passwords: Pool,
    /// A real hash of a random password, verified against when the username is unknown so that
    /// both cases cost the same time.
    dummy_hash: String,
}

/// The two lanes of waiting jobs of a pool.
#[derive(Default)]
struct Lanes {
    waiting: [VecDeque<Job>; 2],
    closed: bool,
}

/// What a pool's threads and its handle share.
#[derive(Default)]
struct Queue {
    lanes: std::sync::Mutex<Lanes>,
    ready: std::sync::Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next job, clean ones first; `None` once the pool is closed.
    fn next(&self) -> Option<Job> {
        let mut lanes = self.lock();
        loop {
            let [clean, suspect] = &mut lanes.waiting;
            if let Some(job) = clean.pop_front().or_else(|| suspect.pop_front()) {
                return Some(job);
            }
            if lanes.closed {
                return None;
            }
            lanes = self.ready.wait(lanes).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A few threads, each with its own [`Hasher`], behind one bounded queue per lane.
struct Pool {
    queue: Arc<Queue>,
    /// Jobs each lane may hold waiting.
    capacity: usize,
    /// `check` or `new`, for the metrics.
    name: &'static str,
    metrics: Arc<Metrics>,
}

impl Pool {
    fn start(name: &'static str, threads: usize, nice: Option<i32>, metrics: Arc<Metrics>) -> std::io::Result<Pool> {
        let threads = threads.max(1);
        let queue = Arc::new(Queue::default());
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new().name(format!("chatgate-{name}-{i}")).spawn(move || {
                if let Some(nice) = nice {
                    lower_priority(nice);
                }
                // The 19 MiB working memory is taken at the first job, not at start-up.
                let mut hasher: Option<Hasher> = None;
                while let Some(job) = queue.next() {
                    job(hasher.get_or_insert_with(Hasher::new));
                }
            })?;
        }
        Ok(Pool { queue, capacity: threads * QUEUED_PER_THREAD, name, metrics })
    }

    async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        work: impl FnOnce(&mut Hasher) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            let _ = done.send(work(hasher));
        });
        let queued = {
            let mut lanes = self.queue.lock();
            let waiting = &mut lanes.waiting[lane as usize];
            let room = waiting.len() < self.capacity;
            if room {
                waiting.push_back(job);
            }
            room
        };
        self.metrics.hash_job(self.name, queued);
        if !queued {
            return Err(Error::RateLimited { retry_after_ms: BUSY_RETRY_MS });
        }
        self.queue.ready.notify_one();
        result.await.map_err(Error::internal)?.map_err(Error::Internal)
    }
}

impl Drop for Pool {
    /// Lets the threads finish what waits and end.
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

/// Lowers the calling thread's scheduling priority (Linux keeps `nice` per thread).
fn lower_priority(nice: i32) {
    // SAFETY: setpriority takes plain integers and touches no memory of ours; who = 0 is the
    // calling thread.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0;
    if failed {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower a hashing thread's priority");
    }
}

impl Passwords {
    /// Starts `threads` threads in each pool.
    pub fn new(threads: usize, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let checks = Pool::start("check", threads, None, metrics.clone())?;
        let new_passwords = Pool::start("new", threads, Some(NEW_PASSWORD_NICE), metrics)?;
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let dummy_hash = Hasher::new().hash(&hex::encode(random)).map_err(std::io::Error::other)?;
        Ok(Passwords { checks, new_passwords, dummy_hash })
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.new_passwords.run(Lane::Clean, move |hasher| hasher.hash(&password)).await
    }

    /// Checks `password` against `hash` in `lane`; with no hash, burns the same time and
    /// answers false.
    pub async fn verify(&self, password: String, hash: Option<String>, lane: Lane) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self.checks.run(lane, move |hasher| hasher.verify(&password, &hash)).await?;
        Ok(ok && known)
    }
}

/// How far in the past a token's `nbf` lies, for nodes whose clocks run a little behind.
const NBF_SKEW_SECS: i64 = 5;

/// The claims of a chatgate token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    /// The user's token version when the token was issued; a reset bumps it.
    ver: i64,
}

/// What a verified token says. Revocation still has to be checked against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The user the token was issued to.
    pub user_id: UserId,
    /// The token's unique id, used to revoke it alone.
    pub jti: Arc<str>,
    /// The user's token version at issue.
    pub version: i64,
    /// Expiry, in Unix milliseconds.
    pub expires_at: i64,
}

/// Issues and verifies login tokens.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: i64,
}

impl Tokens {
    /// Creates a token service with the given HMAC key.
    pub fn new(secret: &[u8], issuer: &str, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.algorithms = vec![jsonwebtoken::Algorithm::HS256];
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "sub"]);
        validation.validate_nbf = true;
        // Expiry is exact, so every node and the socket watchdog agree on it; clock skew between
        // nodes is absorbed by issuing `nbf` a little in the past instead.
        validation.leeway = 0;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            ttl_secs: ttl_secs as i64,
        }
    }

    /// Signs a new token for `user_id` at token version `version`.
    pub fn issue(&self, user_id: UserId, version: i64, now_ms: i64) -> Result<(String, TokenClaims)> {
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let now = now_ms / 1000;
        let claims = Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            iat: now,
            nbf: now - NBF_SKEW_SECS,
            exp: now + self.ttl_secs,
            jti: hex::encode(jti),
            ver: version,
        };
        let token =
            encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)?;
        Ok((token, to_token_claims(claims)?))
    }

    /// Verifies signature, algorithm, issuer and times.
    pub fn verify(&self, token: &str) -> Result<TokenClaims> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| Error::TokenInvalid)?;
        to_token_claims(data.claims)
    }
}

fn to_token_claims(claims: Claims) -> Result<TokenClaims> {
    Ok(TokenClaims {
        user_id: claims.sub.parse().map_err(|_| Error::TokenInvalid)?,
        jti: claims.jti.into(),
        version: claims.ver,
        expires_at: claims.exp.saturating_mul(1000),
    })
}

/// Returns the configured signing key, or the one kept in `data_dir/jwt.key`, creating it with
/// 256 random bits (and owner-only permissions) on first start.
pub fn load_or_create_key(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            write_private(&path, hex::encode(key).as_bytes())?;
            Ok(key.to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::now_ms;

    #[test]
    fn password_hashes_verify_and_interoperate() {
        use argon2::PasswordVerifier;
        let mut hasher = Hasher::new();
        let phc = hasher.hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse", &phc).unwrap());
        assert!(!hasher.verify("wrong horse", &phc).unwrap());
        // The stock verifier agrees, so hashes stay portable.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
    }

    #[tokio::test]
    async fn clean_checks_go_before_suspect_ones_and_full_lanes_refuse() {
        let pool = Arc::new(Pool::start("check", 1, None, Arc::new(Metrics::default())).unwrap());
        // Hold the one thread, so that what follows waits.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Lane::Clean, move |_| Ok(held.recv().ok())).await }
        });
        while !pool.queue.lock().waiting.iter().all(VecDeque::is_empty) {
            tokio::task::yield_now().await;
        }
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for (lane, tag) in [(Lane::Suspect, "suspect"), (Lane::Clean, "clean")] {
            let (pool, order) = (pool.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                pool.run(lane, move |_| {
                    order.lock().unwrap().push(tag);
                    Ok(())
                })
                .await
            }));
        }
        while pool.queue.lock().waiting.iter().map(VecDeque::len).sum::<usize>() < 2 {
            tokio::task::yield_now().await;
        }
        // A lane holds 8 waiting jobs per thread; the ninth suspect one is refused at once,
        // while the clean lane still has room.
        let mut fillers = Vec::new();
        for _ in 1..QUEUED_PER_THREAD {
            let pool = pool.clone();
            fillers.push(tokio::spawn(async move { pool.run(Lane::Suspect, |_| Ok(())).await }));
        }
        while pool.queue.lock().waiting[Lane::Suspect as usize].len() < QUEUED_PER_THREAD {
            tokio::task::yield_now().await;
        }
        assert!(matches!(pool.run(Lane::Suspect, |_| Ok(())).await, Err(Error::RateLimited { .. })));
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        for task in waiting.into_iter().chain(fillers) {
            task.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["clean", "suspect"]);
    }

    #[test]
    fn token_round_trip_and_rejections() {
        let tokens = Tokens::new(&[7u8; 32], "chatgate", 3600);
        let now = 1_700_000_000_000;
        let (token, claims) = tokens.issue(UserId(42), 3, now_ms()).unwrap();
        assert_eq!(tokens.verify(&token).unwrap(), claims);
        assert_eq!(claims.user_id, UserId(42));
        assert_eq!(claims.version, 3);

        let other_key = Tokens::new(&[8u8; 32], "chatgate", 3600);
        assert!(matches!(other_key.verify(&token), Err(Error::TokenInvalid)));
        let other_issuer = Tokens::new(&[7u8; 32], "someone-else", 3600);
        assert!(matches!(other_issuer.verify(&token), Err(Error::TokenInvalid)));
        let (expired, _) = tokens.issue(UserId(42), 3, now - 10 * 3600 * 1000).unwrap();
        assert!(matches!(tokens.verify(&expired), Err(Error::TokenInvalid)));
    }
}
