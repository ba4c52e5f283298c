//! The integration suite: real servers on port 0, real sockets, real SQLite files and a real
//! PostgreSQL server that the suite starts itself. Every test runs on both databases.

mod harness;

mod access;
mod backlog;
mod backpressure;
mod browser;
mod buckets;
mod cluster;
mod conversations;
mod cursor;
mod deploy;
mod failover;
mod faults;
mod feed;
mod flood;
mod frames;
mod groups;
mod hardening;
mod hashing;
mod http;
mod links;
mod log;
mod media;
mod mentions;
mod messages;
mod metrics;
mod moderation;
mod ordering;
mod poison;
mod proxy;
mod receipts;
mod secrets;
mod sessions;
mod tickets;
mod unread;
mod users;
