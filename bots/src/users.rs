//! Bot users and groups: created through the server's own routes once, remembered in a state
//! file, and reused by later runs against the same server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A bot's credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BotUser {
    /// Server-side user id.
    pub id: String,
    /// A login token.
    pub token: String,
    /// When the token was issued, ms since the epoch.
    pub issued_ms: u64,
}

/// What the bots remember of one server (or one cluster: its nodes share a database). Pointed
/// at another server, the remembered tokens fail their check and the bots log in afresh.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    users: BTreeMap<String, BotUser>,
    groups: BTreeMap<String, String>,
}

/// The bots' own password: bot accounts are throwaway accounts on a test server.
const PASSWORD: &str = "chatgate-bots-password";
/// Tokens are re-obtained once older than this (the server's default lifetime is 7 days).
const TOKEN_REUSE_MS: u64 = 24 * 3600 * 1000;
/// Logins in flight at once: each costs the server an argon2 hash.
const LOGIN_CONCURRENCY: usize = 4;
/// Times one call waits out a `rate_limited` answer before giving up.
const RATE_LIMITED_RETRIES: usize = 100;

/// Users and groups on one server, backed by the state file.
pub struct Pool {
    http: reqwest::Client,
    base: String,
    path: PathBuf,
    file: StateFile,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Pool {
    /// Opens the state at `path`, for the server at `addr` (`host:port`).
    pub fn open(path: &Path, addr: &str) -> anyhow::Result<Pool> {
        let file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(Pool { http, base: format!("http://{addr}"), path: path.to_owned(), file })
    }

    fn state(&mut self) -> &mut StateFile {
        &mut self.file
    }

    /// Saves what was learned.
    pub fn save(&self) -> anyhow::Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.file)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    /// Calls a route over HTTP and returns its `data`, or the error reason. A `rate_limited`
    /// answer (the server's hashing queue is full while many bots register) is waited out as
    /// the server asks, a bounded number of times.
    pub(crate) async fn call(
        &self,
        token: Option<&str>,
        route: &str,
        data: Value,
    ) -> anyhow::Result<Result<Value, String>> {
        for _ in 0..RATE_LIMITED_RETRIES {
            let mut request = self.http.post(format!("{}{route}", self.base)).json(&data);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let body: Value = request.send().await.with_context(|| format!("calling {route}"))?.json().await?;
            match (body["code"].as_i64(), body["error"].as_str()) {
                (Some(0), _) => return Ok(Ok(body["data"].clone())),
                (_, Some("rate_limited")) => {
                    let wait = body["retryAfter"].as_u64().unwrap_or(100).clamp(10, 5_000);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                (_, error) => return Ok(Err(error.unwrap_or("unknown").to_owned())),
            }
        }
        Ok(Err("rate_limited".to_owned()))
    }

    pub(crate) async fn get(
        &self,
        token: &str,
        route: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<Result<Value, String>> {
        let body: Value =
            self.http.get(format!("{}{route}", self.base)).bearer_auth(token).query(query).send().await?.json().await?;
        Ok(match body["code"].as_i64() {
            Some(0) => Ok(body["data"].clone()),
            _ => Err(body["error"].as_str().unwrap_or("unknown").to_owned()),
        })
    }

    /// Logs `name` in, registering it first if the server does not know it.
    async fn obtain(&self, name: &str) -> anyhow::Result<BotUser> {
        let credentials = json!({"username": name, "password": PASSWORD});
        let mut reply = self.call(None, "/user/login", credentials.clone()).await?;
        if reply.as_ref().err().is_some_and(|e| e == "auth.invalid_credentials") {
            reply = match self.call(None, "/user/register", credentials.clone()).await? {
                // Another run registered it meanwhile.
                Err(e) if e == "user.exists" => self.call(None, "/user/login", credentials).await?,
                other => other,
            };
        }
        let data = reply.map_err(|e| anyhow::anyhow!("logging in {name}: {e}"))?;
        Ok(BotUser {
            id: data["userinfo"]["id"].as_str().context("userinfo.id")?.to_owned(),
            token: data["token"].as_str().context("token")?.to_owned(),
            issued_ms: now_ms(),
        })
    }

    /// The users `{prefix}{0..count}`, reusing remembered tokens while the server still takes
    /// them.
    pub async fn users(&mut self, prefix: &str, count: usize) -> anyhow::Result<Vec<BotUser>> {
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
        // One remembered token stands for all: a server that lost its data refuses it.
        let sample = names.first().and_then(|n| self.state().users.get(n).cloned());
        if let Some(user) = sample
            && self.get(&user.token, "/user/info", &[]).await?.is_err()
        {
            eprintln!("the server does not know the remembered bots; logging in again");
            let state = self.state();
            state.users.clear();
            state.groups.clear();
        }
        let fresh_after = now_ms().saturating_sub(TOKEN_REUSE_MS);
        let missing: Vec<String> = names
            .iter()
            .filter(|n| self.state().users.get(*n).is_none_or(|u| u.issued_ms < fresh_after))
            .cloned()
            .collect();
        if !missing.is_empty() {
            eprintln!("logging in {} bot users (each costs the server a password hash)...", missing.len());
            let this = &*self;
            let obtained: Vec<(String, BotUser)> = stream::iter(missing)
                .map(|name| async move { this.obtain(&name).await.map(|u| (name, u)) })
                .buffer_unordered(LOGIN_CONCURRENCY)
                .try_collect()
                .await?;
            self.state().users.extend(obtained);
            self.save()?;
        }
        let state = self.state();
        Ok(names.iter().map(|n| state.users[n].clone()).collect())
    }

    /// A group named `name` owned by `members[0]` with exactly `members`, reused if it still
    /// has them all.
    pub async fn group(&mut self, name: &str, members: &[BotUser]) -> anyhow::Result<String> {
        let Some((owner, rest)) = members.split_first() else { bail!("a group needs an owner") };
        if let Some(id) = self.state().groups.get(name).cloned() {
            let info = self.get(&owner.token, "/group/room/info", &[("groupId", id.as_str())]).await?;
            if info.is_ok_and(|d| d["group"]["memberCount"].as_u64() == Some(members.len() as u64)) {
                return Ok(id);
            }
        }
        let ids: Vec<&str> = rest.iter().map(|m| m.id.as_str()).collect();
        let made = self
            .call(
                Some(&owner.token),
                "/group/room/add",
                json!({"name": name, "members": ids, "maxMembers": members.len().max(2)}),
            )
            .await?
            .map_err(|e| anyhow::anyhow!("creating group {name}: {e}"))?;
        let id = made["group"]["id"].as_str().context("group.id")?.to_owned();
        self.state().groups.insert(name.to_owned(), id.clone());
        self.save()?;
        Ok(id)
    }
}
