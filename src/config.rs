//! Configuration: one struct, read from flags and `CHATGATE_*` environment variables,
//! validated once at start-up. Every default is stated on its field and in `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// An address (`10.0.0.7`) or a network (`10.0.0.0/8`).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text} is neither an address nor a CIDR network"))
}

/// Signing keys published in docs and example files, which anyone can sign tokens with.
const EXAMPLE_SECRETS: &[&str] = &["trial-only-signing-key-change-me-0123456789"];

/// Everything chatgate can be told at start-up.
#[derive(Debug, Clone, Parser)]
#[command(name = "chatgate", version, about = "A real-time chat gateway and IM backend", args_override_self = true)]
pub struct Config {
    /// Address to listen on for HTTP and WebSocket.
    #[arg(long, env = "CHATGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the generated signing key, uploads and the outbox.
    #[arg(long, env = "CHATGATE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://...`. Default: `sqlite://<data-dir>/chatgate.db`.
    #[arg(long, env = "CHATGATE_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Redis URL for multi-node deployments. Unset means a single node with an in-process bus.
    #[arg(long, env = "CHATGATE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// This node's name in a cluster (logs, `/readyz`). Default: random at each start.
    #[arg(long, env = "CHATGATE_NODE_ID")]
    pub node_id: Option<String>,

    /// URL the server POSTs password-reset notifications to. Unset: they are appended to
    /// `<data-dir>/outbox.jsonl`.
    #[arg(long, env = "CHATGATE_NOTIFY_WEBHOOK")]
    pub notify_webhook: Option<String>,

    /// Public base URL of this service, used in reset links. Default: `http://<listen>`.
    #[arg(long, env = "CHATGATE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// HMAC key for signing tokens (at least 32 bytes). Unset: a random key is generated once
    /// and kept in `<data-dir>/jwt.key`. Every node of a cluster must share it.
    #[arg(long, env = "CHATGATE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Development mode: accepts a well-known example `--jwt-secret` (such as the trial key of
    /// old docker-compose files). Never for a deployment anyone else can reach.
    #[arg(long, env = "CHATGATE_DEV")]
    pub dev: bool,

    /// Issuer (`iss`) written into and required of every token.
    #[arg(long, env = "CHATGATE_JWT_ISSUER", default_value = "chatgate")]
    pub jwt_issuer: String,

    /// Lifetime of a login token, in seconds (default 7 days).
    #[arg(long, env = "CHATGATE_TOKEN_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub token_ttl_secs: u64,

    /// Largest WebSocket message or HTTP request body accepted, in bytes. A larger frame
    /// closes the socket with 1009.
    #[arg(long, env = "CHATGATE_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Frames that may wait in one session's outbound queue before the session is dropped as a
    /// slow consumer.
    #[arg(long, env = "CHATGATE_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Bytes that may wait in one session's outbound queue; a consumer over it is dropped as a
    /// slow consumer (close 1008), and nobody else waits for it.
    #[arg(long, env = "CHATGATE_OUTBOUND_QUEUE_BYTES", default_value_t = 1024 * 1024)]
    pub outbound_queue_bytes: usize,

    /// Requests one session may have in flight at once; further frames wait to be read.
    #[arg(long, env = "CHATGATE_SESSION_INFLIGHT", default_value_t = 32)]
    pub session_inflight: usize,

    /// Seconds between WebSocket pings the server sends.
    #[arg(long, env = "CHATGATE_PING_INTERVAL_SECS", default_value_t = 30)]
    pub ping_interval_secs: u64,

    /// Seconds of silence after a ping before the socket is considered dead and closed.
    #[arg(long, env = "CHATGATE_PING_TIMEOUT_SECS", default_value_t = 30)]
    pub ping_timeout_secs: u64,

    /// Seconds between checks of every live session's token, and every online user's groups,
    /// against the database: sessions of tokens revoked meanwhile end, and group fan-out here
    /// follows the stored membership, so a kick or membership change lost with the bus (a Redis
    /// outage) takes effect within this bound. Also run when the bus comes back.
    #[arg(long, env = "CHATGATE_REVALIDATE_SECS", default_value_t = 60)]
    pub revalidate_secs: u64,

    /// Largest `maxMembers` a group may have; also the default for new groups.
    #[arg(long, env = "CHATGATE_GROUP_MAX_MEMBERS", default_value_t = 2000)]
    pub group_max_members: i64,

    /// Longest text message, in characters.
    #[arg(long, env = "CHATGATE_MAX_TEXT_CHARS", default_value_t = 5000)]
    pub max_text_chars: usize,

    /// Seconds after sending during which a sender may recall a message.
    #[arg(long, env = "CHATGATE_RECALL_WINDOW_SECS", default_value_t = 120)]
    pub recall_window_secs: u64,

    /// Seconds after sending during which a sender may edit a text message (default 48 hours).
    #[arg(long, env = "CHATGATE_EDIT_WINDOW_SECS", default_value_t = 48 * 3600)]
    pub edit_window_secs: u64,

    /// Largest upload, in bytes (default 100 MiB).
    #[arg(long, env = "CHATGATE_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Bytes of uploads one user may keep stored (default 1 GiB); an upload past it is refused
    /// with `quota.exceeded` and leaves nothing behind.
    #[arg(long, env = "CHATGATE_STORAGE_QUOTA_BYTES", default_value_t = 1 << 30)]
    pub storage_quota_bytes: u64,

    /// Longest life of a signed file link, in seconds (at most 900, the default). A link lives
    /// between two thirds of this and all of it: links minted close together are the same URL,
    /// so browsers cache one file once.
    #[arg(long, env = "CHATGATE_FILE_LINK_SECS", default_value_t = 900)]
    pub file_link_secs: u64,

    /// Where uploads are stored: `s3://bucket[/prefix]` on an S3-compatible store that every
    /// node shares, with its endpoint, region and credentials from the standard `AWS_*`
    /// variables (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_ALLOW_HTTP`). Unset: the directory `<data-dir>/files`.
    #[arg(long, env = "CHATGATE_MEDIA_URL")]
    pub media_url: Option<String>,

    /// Seconds an unauthenticated socket may stay open before it is closed (1008).
    #[arg(long, env = "CHATGATE_AUTH_GRACE_SECS", default_value_t = 10)]
    pub auth_grace_secs: u64,

    /// Browser origins allowed to open a WebSocket, comma-separated, matched exactly
    /// (`scheme://host[:port]`); `*` allows any. A handshake without an Origin header (not a
    /// browser) is allowed. Default: the origin of `--public-url`.
    #[arg(long, env = "CHATGATE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Load balancers whose word on the client's address is taken: an address or CIDR,
    /// repeatable or comma-separated; none by default. Such a peer may start a connection with
    /// a PROXY protocol v2 header (haproxy's `send-proxy-v2`), which names the client; without
    /// one, the client address is read from `Forwarded` or `X-Forwarded-For` (the rightmost
    /// entry that is not itself a trusted proxy). From anyone else neither is read. Every
    /// per-address limit and the login log use that address.
    #[arg(long = "trusted-proxy", env = "CHATGATE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// WebSocket connections one node accepts; beyond it, handshakes get HTTP 503.
    #[arg(long, env = "CHATGATE_MAX_CONNECTIONS", default_value_t = 18_000)]
    pub max_connections: usize,

    /// Sessions one user may hold on one node; a new one beyond it ends their oldest.
    #[arg(long, env = "CHATGATE_MAX_SESSIONS_PER_USER", default_value_t = 16)]
    pub max_sessions_per_user: usize,

    /// Requests per second one session may make (bursts of twice that); past it, requests get
    /// `rate_limited` with `retryAfter`, and a session that keeps on is closed with 1008.
    #[arg(long, env = "CHATGATE_RATE_SESSION", default_value_t = 20)]
    pub rate_session: u32,

    /// Requests per second one user may make over all their sessions (bursts of twice that).
    #[arg(long, env = "CHATGATE_RATE_USER", default_value_t = 50)]
    pub rate_user: u32,

    /// HTTP requests per second from one address (bursts of twice that).
    #[arg(long, env = "CHATGATE_RATE_ADDRESS", default_value_t = 50)]
    pub rate_address: u32,

    /// Login attempts per minute for one username (six times that per address).
    #[arg(long, env = "CHATGATE_LOGIN_ATTEMPTS_PER_MINUTE", default_value_t = 10)]
    pub login_attempts_per_minute: u32,

    /// Password-reset notifications per hour for one account; further requests are answered
    /// alike but send nothing.
    #[arg(long, env = "CHATGATE_RESETS_PER_HOUR", default_value_t = 3)]
    pub resets_per_hour: u32,

    /// Maximum database connections in the pool.
    #[arg(long, env = "CHATGATE_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Milliseconds a request may wait for a database connection (or the database to answer a
    /// connection attempt) before it fails with `unavailable`: a database outage fails requests
    /// fast instead of piling them up.
    #[arg(long, env = "CHATGATE_DB_TIMEOUT_MS", default_value_t = 2000)]
    pub db_timeout_ms: u64,

    /// SQLite `synchronous` mode. `normal` survives a process crash; `full` also survives an
    /// OS crash or power loss, at a lower commit rate.
    #[arg(long, env = "CHATGATE_SQLITE_SYNC", value_enum, default_value_t = SqliteSync::Normal)]
    pub sqlite_sync: SqliteSync,

    /// Threads that hash passwords (argon2id: CPU-bound, 19 MiB each). Default: the core count.
    #[arg(long, env = "CHATGATE_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    #[arg(long, env = "CHATGATE_LOG", default_value = "info")]
    pub log: String,

    /// Log output format.
    #[arg(long, env = "CHATGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// SQLite durability level; see [`Config::sqlite_sync`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// `PRAGMA synchronous=NORMAL`.
    Normal,
    /// `PRAGMA synchronous=FULL`.
    Full,
}

/// Log output format; see [`Config::log_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["chatgate"])
    }
}

impl Config {
    /// Checks the values that clap's types cannot, once, before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        if self.max_frame_bytes < 1024 {
            bail!("--max-frame-bytes must be at least 1024");
        }
        if self.outbound_queue == 0 || self.session_inflight == 0 {
            bail!("--outbound-queue and --session-inflight must be positive");
        }
        if self.token_ttl_secs == 0 || self.revalidate_secs == 0 {
            bail!("--token-ttl-secs and --revalidate-secs must be positive");
        }
        if self.ping_interval_secs == 0 || self.ping_timeout_secs == 0 {
            bail!("--ping-interval-secs and --ping-timeout-secs must be positive");
        }
        if !(2..=100_000).contains(&self.group_max_members) {
            bail!("--group-max-members must be between 2 and 100000");
        }
        if self.max_text_chars == 0 || self.max_upload_bytes == 0 || self.storage_quota_bytes == 0 {
            bail!("--max-text-chars, --max-upload-bytes and --storage-quota-bytes must be positive");
        }
        if !(3..=900).contains(&self.file_link_secs) {
            bail!("--file-link-secs must be between 3 and 900");
        }
        if self.auth_grace_secs == 0 || self.max_connections == 0 || self.max_sessions_per_user == 0 {
            bail!("--auth-grace-secs, --max-connections and --max-sessions-per-user must be positive");
        }
        if self.db_max_connections == 0 || self.db_timeout_ms == 0 {
            bail!("--db-max-connections and --db-timeout-ms must be positive");
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            bail!("--jwt-secret must be at least 32 bytes");
        }
        if let Some(secret) = &self.jwt_secret
            && EXAMPLE_SECRETS.contains(&secret.as_str())
            && !self.dev
        {
            bail!(
                "--jwt-secret is a published example key: anyone can sign tokens with it; set 32+ random bytes (or pass --dev)"
            );
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres:") || url.starts_with("postgresql:"))
        {
            bail!("--database-url must start with sqlite:, postgres: or postgresql:");
        }
        if let Some(url) = &self.notify_webhook
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("--notify-webhook must be an http(s) URL");
        }
        if let Some(url) = &self.media_url
            && !url.strip_prefix("s3://").is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        {
            bail!("--media-url must be an s3://bucket[/prefix] URL");
        }
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            bail!("--redis-url must be a redis:// or rediss:// URL");
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("chatgate.db").display()))
    }

    /// The public base URL in effect, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    /// The ping interval as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    /// The origins a browser may open sockets from; `None` allows any.
    pub fn allowed_origins(&self) -> Option<Vec<String>> {
        if self.allowed_origins.iter().any(|o| o == "*") {
            return None;
        }
        if !self.allowed_origins.is_empty() {
            return Some(self.allowed_origins.iter().map(|o| o.trim_end_matches('/').to_owned()).collect());
        }
        let public = self.public_url();
        let origin = match public.split_once("://") {
            Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
            None => public,
        };
        Some(vec![origin])
    }

    /// The pong timeout as a duration.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_secs(self.ping_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The README's configuration table lists every flag.
    #[test]
    fn readme_documents_every_flag() {
        let readme = include_str!("../README.md");
        for arg in Config::command().get_arguments() {
            if let Some(long) = arg.get_long()
                && long != "help"
                && long != "version"
            {
                assert!(readme.contains(&format!("| `--{long}` |")), "README lacks --{long}");
            }
        }
    }

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        Config::default().validate().unwrap();
        let bad = |args: &[&str]| Config::parse_from([&["chatgate"], args].concat()).validate().is_err();
        assert!(bad(&["--max-frame-bytes", "10"]));
        assert!(bad(&["--jwt-secret", "short"]));
        assert!(bad(&["--jwt-secret", EXAMPLE_SECRETS[0]]));
        let proxies =
            Config::parse_from(["chatgate", "--trusted-proxy", "10.0.0.0/8,127.0.0.1", "--trusted-proxy", "::1"]);
        assert_eq!(proxies.trusted_proxies.len(), 3);
        assert!(Config::try_parse_from(["chatgate", "--trusted-proxy", "haproxy"]).is_err());
        assert!(!bad(&["--jwt-secret", EXAMPLE_SECRETS[0], "--dev"]));
        assert!(bad(&["--database-url", "mysql://x"]));
        assert!(bad(&["--notify-webhook", "ftp://x"]));
        assert!(bad(&["--outbound-queue", "0"]));
        assert!(bad(&["--redis-url", "http://x"]));
        assert!(!bad(&["--redis-url", "redis://127.0.0.1:6379"]));
        assert!(bad(&["--media-url", "/var/files"]));
        assert!(bad(&["--media-url", "s3://"]));
        assert!(!bad(&["--media-url", "s3://media/chatgate"]));
    }
}
