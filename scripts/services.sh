#!/usr/bin/env bash
# Start the broker servers the integration tests use, when they are not running:
# PostgreSQL 5432, Redis 6379, NATS with JetStream 4222, RabbitMQ 5672, Mosquitto 1883.
# Then wait until each port answers. Safe to run again: running servers are left alone.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
  local port=$1 name=$2
  shift 2
  if up "$port"; then
    return 0
  fi
  echo "services: starting $name (port $port)"
  "$@" || echo "services: could not start $name" >&2
}

start 5432 PostgreSQL pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
mkdir -p /var/lib/redis /var/log/redis
start 6379 Redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
  --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
start 5672 RabbitMQ rabbitmq-server -detached
start 1883 Mosquitto mosquitto -d -c /etc/mosquitto/mosquitto.conf
mkdir -p /var/lib/nats-server
start 4222 NATS start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

status=0
for entry in 5432:PostgreSQL 6379:Redis 4222:NATS 1883:Mosquitto 5672:RabbitMQ; do
  port=${entry%%:*} name=${entry#*:}
  for _ in $(seq 1 120); do
    up "$port" && break
    sleep 0.5
  done
  if up "$port"; then
    echo "services: $name is up on port $port"
  else
    echo "services: $name did not come up on port $port" >&2
    status=1
  fi
done
exit $status
