//! The scenarios, grouped by what they measure; each adds its rows and details to the report.

pub mod exact;
pub mod fanout;
pub mod logins;
pub mod memory;
pub mod messages;
pub mod robustness;
pub mod unread;

/// Every node of a benchmark cluster shares this key, so bot tokens survive between runs.
const JWT_SECRET: &str = "chatgate-benchmark-cluster-signing-key-0123456789";
