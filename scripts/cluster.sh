#!/usr/bin/env bash
# A local chatgate cluster on loopback, without docker: the topology of docker-compose.yml
# (redis-server, PostgreSQL, N gateway nodes, haproxy in front), each on a free port, all state
# under DIR.
#
#   scripts/cluster.sh start DIR [NODES]   start it (2 nodes by default); prints DIR/cluster.env
#   scripts/cluster.sh kill-node DIR I     SIGKILL node I (1-based), as a crash would
#   scripts/cluster.sh stop DIR            stop everything started under DIR
#
# The gateway binary is $CHATGATE_BIN, or target/release/chatgate (built if missing).
# Needs redis-server, haproxy and PostgreSQL's initdb/pg_ctl on PATH (or under
# /usr/lib/postgresql/*/bin). PostgreSQL refuses root, so as root it runs as `postgres`.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,11p' "$0"; exit 2; }

for pg in /usr/lib/postgresql/*/bin; do [ -d "$pg" ] && PATH="$PATH:$pg"; done
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 300); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

case "$cmd" in
start)
  nodes=${3:-2}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  bin=${CHATGATE_BIN:-}
  if [ -z "$bin" ]; then
    bin="$(cd "$(dirname "$0")/.." && pwd)/target/release/chatgate"
    [ -x "$bin" ] || (cd "$(dirname "$0")/.." && cargo build --release --bin chatgate)
  fi

  redis_port=$(free_port)
  mkdir -p "$dir/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir/redis" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"

  pg_port=$(free_port)
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
  as_postgres initdb -D "$dir/pg/data" -A trust -U postgres --no-sync >/dev/null
  as_postgres pg_ctl -D "$dir/pg/data" -l "$dir/pg/log" -w \
    -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE chatgate" >/dev/null

  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mkdir -p "$dir/data"
  urls=()
  servers=""
  for i in $(seq 1 "$nodes"); do
    port=$(free_port)
    CHATGATE_JWT_SECRET=$secret nohup "$bin" --listen "127.0.0.1:$port" --data-dir "$dir/data" \
      --database-url "postgres://postgres@127.0.0.1:$pg_port/chatgate" \
      --redis-url "redis://127.0.0.1:$redis_port" --node-id "node-$i" --log-format json \
      --trusted-proxy 127.0.0.1 \
      >"$dir/node-$i.log" 2>&1 &
    echo $! >"$dir/node-$i.pid"
    echo "$port" >"$dir/node-$i.port"
    urls+=("http://127.0.0.1:$port")
    servers+="    server node-$i 127.0.0.1:$port check send-proxy-v2 check-send-proxy inter 500ms fall 2 rise 2"$'\n'
  done
  for url in "${urls[@]}"; do wait_http "$url/readyz"; done

  lb_port=$(free_port)
  cat >"$dir/haproxy.cfg" <<CFG
global
    # Two descriptors per proxied connection, and a process may hold 20,000 here.
    maxconn 9000
defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    option redispatch
    retries 3
frontend chat
    bind 127.0.0.1:$lb_port
    default_backend gateways
backend gateways
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    # Each connection starts with a PROXY v2 header naming the client (health checks: LOCAL).
    # Nodes trust 127.0.0.1 (haproxy) to send it; clients bind 127.0.0.2 and up.
$servers
CFG
  haproxy -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid"
  wait_http "http://127.0.0.1:$lb_port/healthz"

  cat >"$dir/cluster.env" <<ENV
LB_URL=http://127.0.0.1:$lb_port
NODE_URLS=${urls[*]}
REDIS_URL=redis://127.0.0.1:$redis_port
DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/chatgate
ENV
  cat "$dir/cluster.env"
  ;;
kill-node)
  i=${3:?node number}
  kill -9 "$(cat "$dir/node-$i.pid")"
  ;;
stop)
  [ -f "$dir/haproxy.pid" ] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
  for pidfile in "$dir"/node-*.pid; do [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true; done
  [ -d "$dir/pg/data" ] && as_postgres pg_ctl -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  ;;
*)
  sed -n '2,11p' "$0"; exit 2
  ;;
esac
