//! Shared helpers of the integration suite: servers in this process and in processes of their
//! own ([`servers`]), clients over the socket and HTTP ([`clients`]), and the external servers
//! the suite starts itself: PostgreSQL ([`postgres`]), Redis ([`redis`]) and S3 ([`s3`]).

pub mod clients;
pub mod postgres;
pub mod redis;
pub mod s3;
pub mod servers;

use std::time::Duration;

pub use clients::*;
pub use postgres::*;
pub use redis::*;
pub use s3::*;
pub use servers::*;

/// How long a test waits for any one expected event before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}
