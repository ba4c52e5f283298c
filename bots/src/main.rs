//! `chatgate-bots`: load-test bots for chatgate, and for the peers it is compared with.
//!
//! # Codemap
//!
//! - [`cli`]: the command line and the bounds every run is held to (loopback only, sessions
//!   and time capped).
//! - [`run`]: the parent. Sets bot users and groups up ([`users`]), writes a [`plan`], starts
//!   worker processes, shows live progress and merges their results.
//! - [`worker`]: a worker process: opens its sessions ([`conn`]), waits for the go, sends on
//!   an open-loop schedule or a closed-loop window ([`pace`]), and measures ([`stats`],
//!   [`gap`]).
//!
//! - [`exact`]: the exactness run, in this process: bots mix sends with edits, reactions,
//!   recalls and reads while the server may be killed under them, then sync from nothing and
//!   count what was lost, duplicated, reordered or missed.
//!
//! Several worker processes exist because one process can hold only ~19,900 sockets here;
//! several source addresses because each has only ~28k ephemeral ports.

mod cli;
mod conn;
mod exact;
mod gap;
mod pace;
mod plan;
mod run;
mod stats;
mod users;
mod worker;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match cli::Cli::parse().command {
        cli::Command::Run(args) => run::run(*args).await,
        cli::Command::Worker { plan, index } => worker::main(&plan, index).await,
    }
}
