#!/usr/bin/env bash
# What the tests need on this machine, started or installed when missing: PostgreSQL, Redis, NATS
# with JetStream, RabbitMQ (integration, e2e), Chromium (the web chat's test), docker-compose and
# caddy (the deployment tests), Prometheus (the alert rules and a real scrape). Run by `npm test`, `npm run test:integration` and `npm run test:e2e`
# before the tests, and by .ci/run. Starting a server or installing a package needs root; without
# it, this says what is missing and the tests that need it say what to run.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

wait_for() { # name, command
  for _ in $(seq 1 30); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "$1 did not come up" >&2
  return 1
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start ||
    su postgres -s /bin/sh -c "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
  wait_for PostgreSQL "pg_isready -h 127.0.0.1 -p 5432 -q" || status=1
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping" || status=1
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  echo "starting NATS (JetStream)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for NATS "(exec 3<>/dev/tcp/127.0.0.1/4222)" || status=1
fi

if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ "rabbitmqctl -q --timeout 5 await_startup && (exec 3<>/dev/tcp/127.0.0.1/5672)" || status=1
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Chromium (the web chat's browser test drives it)"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || echo "could not install chromium: apt-get install -y chromium" >&2
fi

missing=()
command -v promtool >/dev/null || missing+=(prometheus)           # checks the alert rules; a real Prometheus scrapes a server
command -v docker-compose >/dev/null || missing+=(docker-compose) # validates docker-compose.yml
command -v caddy >/dev/null || missing+=(caddy)                   # validates the Compose proxy's Caddyfile
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (the deployment tests use them)"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { echo "could not install ${missing[*]}: apt-get install -y ${missing[*]}" >&2; status=1; }
fi

exit $status
