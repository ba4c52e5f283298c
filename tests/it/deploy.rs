//! The deployment files agree with the real configuration.

use chatgate::Config;
use clap::CommandFactory;

const COMPOSE: &str = include_str!("../../docker-compose.yml");
const HAPROXY: &str = include_str!("../../deploy/haproxy.cfg");
const DOCKERFILE: &str = include_str!("../../Dockerfile");

/// The names of the top-level services of the compose file.
fn services() -> Vec<String> {
    let section = COMPOSE.split("\nservices:\n").nth(1).expect("a services section");
    section
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':').to_owned())
        .collect()
}

#[test]
fn compose_runs_the_documented_topology() {
    assert_eq!(services(), ["postgres", "redis", "gateway-1", "gateway-2", "lb"]);
    for service in ["postgres", "redis"] {
        let block = COMPOSE.split(&format!("\n  {service}:\n")).nth(1).unwrap();
        let block = block.split("\n  gateway-1:").next().unwrap();
        assert!(block.contains("healthcheck:"), "{service} has no health check");
    }
    assert!(
        COMPOSE.contains("x-gateway: &gateway") && COMPOSE.contains("build: .") && COMPOSE.contains("healthcheck:")
    );
    assert!(COMPOSE.contains("\"8080:8080\""), "the balancer publishes 8080");
}

#[test]
fn compose_environment_names_real_settings() {
    let known: Vec<String> = Config::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    let mut used = Vec::new();
    for line in COMPOSE.lines().chain(DOCKERFILE.lines()) {
        for word in line.split(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())) {
            if word.starts_with("CHATGATE_") {
                assert!(known.iter().any(|k| k == word), "{word} is not a chatgate setting");
                used.push(word.to_owned());
            }
        }
    }
    for needed in
        ["CHATGATE_DATABASE_URL", "CHATGATE_REDIS_URL", "CHATGATE_JWT_SECRET", "CHATGATE_LISTEN", "CHATGATE_NODE_ID"]
    {
        assert!(used.iter().any(|u| u == needed), "compose never sets {needed}");
    }
    // The nodes listen where the balancer and the health checks look.
    assert!(COMPOSE.contains("CHATGATE_LISTEN: 0.0.0.0:8080") && DOCKERFILE.contains("CHATGATE_LISTEN=0.0.0.0:8080"));
    for node in ["gateway-1", "gateway-2"] {
        let line = HAPROXY.lines().find(|l| l.trim_start().starts_with(&format!("server {node} {node}:8080 check")));
        let line = line.unwrap_or_else(|| panic!("haproxy lacks {node}"));
        // The nodes learn the client's address from the balancer's PROXY v2 header, health
        // checks included (they trust it: CHATGATE_TRUSTED_PROXIES).
        assert!(line.contains("send-proxy-v2") && line.contains("check-send-proxy"), "{line}");
    }
    assert!(COMPOSE.contains("CHATGATE_TRUSTED_PROXIES: 172.28.0.10") && COMPOSE.contains("ipv4_address: 172.28.0.10"));
    assert!(HAPROXY.contains("GET /readyz") && COMPOSE.contains("/readyz") && DOCKERFILE.contains("/readyz"));
}
