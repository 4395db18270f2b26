#!/usr/bin/env bash
# Start Redis, RabbitMQ, PostgreSQL and MariaDB on this machine if they are not
# answering, with the same commands the machine uses at boot. The tests use them
# (the SQL servers as data sources: tests/test_datasources.py); nothing else does.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "services: nothing answers on port $1" >&2; return 1
}

if ! port_open 6379; then
  if command -v redis-server >/dev/null; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_port 6379
  else
    echo "services: redis-server is not installed (apt-get install redis-server)" >&2
  fi
fi

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null; then
    echo "services: starting RabbitMQ"
    rabbitmq-server -detached
    wait_port 5672
  else
    echo "services: rabbitmq-server is not installed (apt-get install rabbitmq-server)" >&2
  fi
fi
if ! port_open 5432; then
  if ls /etc/postgresql >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
    wait_port 5432
  else
    echo "services: PostgreSQL is not installed (apt-get install postgresql)" >&2
  fi
fi

if ! port_open 3306; then
  if [ -x /usr/sbin/mariadbd ]; then
    echo "services: starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_port 3306
  else
    echo "services: MariaDB is not installed (apt-get install mariadb-server)" >&2
  fi
fi
# the databases the tests write to (`test` on both servers; trust / empty root password)
if port_open 5432 && command -v psql >/dev/null; then
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null \
    | grep -q 1 || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
fi
if port_open 3306 && command -v mariadb >/dev/null; then
  mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true
fi
# tests/test_multihost.py makes network namespaces and veth pairs with iproute2
if ! command -v ip >/dev/null && command -v apt-get >/dev/null; then
  echo "services: installing iproute2"
  (apt-get install -y -q iproute2 >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iproute2 >/dev/null 2>&1; }) \
    || echo "services: could not install iproute2; tests/test_multihost.py will skip" >&2
fi
# The spider sandbox (node/sandbox.py): bubblewrap, and the unprivileged user
# spiders run as when a node runs as root.
if ! command -v bwrap >/dev/null && command -v apt-get >/dev/null; then
  echo "services: installing bubblewrap"
  (apt-get install -y -q bubblewrap >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; }) \
    || echo "services: could not install bubblewrap; nodes run spiders unsandboxed (sandbox=auto)" >&2
fi
if [ "$(id -u)" = 0 ] && ! id crawlfleet-spider >/dev/null 2>&1; then
  echo "services: creating the sandbox user crawlfleet-spider"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    crawlfleet-spider || echo "services: could not create the user crawlfleet-spider" >&2
fi
exit 0
