#!/usr/bin/env bash
# Installs the real servers the tests run against: Debian's Celery 5.2 (with
# the redis and AMQP clients), redis-server, RabbitMQ, PostgreSQL and
# Chromium. Skips the install when everything is already there, so a
# developer's second run is quick. Needs root or passwordless sudo on a fresh machine.
set -euo pipefail

have_all() {
  command -v redis-server >/dev/null 2>&1 &&
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] &&
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 &&
    [ -x /usr/bin/chromium ] &&
    /usr/bin/python3 -c 'import celery, redis, amqp' >/dev/null 2>&1
}

if have_all; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "installing test dependencies from Debian: python3-celery python3-redis python3-amqp redis-server rabbitmq-server postgresql chromium" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  python3-celery python3-redis python3-amqp redis-server rabbitmq-server postgresql chromium fonts-dejavu-core >/dev/null
# The packages start system services; the tests start their own servers on
# free ports and do not need them.
$SUDO service redis-server stop >/dev/null 2>&1 || true
$SUDO service postgresql stop >/dev/null 2>&1 || true
$SUDO service rabbitmq-server stop >/dev/null 2>&1 || true

have_all || { echo "test dependencies still missing after apt-get install" >&2; exit 1; }
