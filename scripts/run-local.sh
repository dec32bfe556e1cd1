#!/usr/bin/env bash
# Runs formatter-svc v1 on :8081 and hello-svc on :8080 in the foreground, each
# log line prefixed with its service. Ctrl-C stops both gracefully: each drains
# in-flight requests and flushes its spans, and its last log lines still show.
set -uo pipefail
cd "$(dirname "$0")/.."

bin=${BIN_DIR:-target/release}
export LOG_FORMAT=${LOG_FORMAT:-text}

# The prefixers ignore SIGINT, so they outlive the services and print their
# shutdown lines; they exit when the service closes its output.
prefix() { (trap '' INT TERM; exec sed -u "s/^/$1 /"); }

LISTEN_ADDR=0.0.0.0:8081 FORMATTER_VERSION=v1 "$bin/formatter-svc" 2>&1 | prefix '[formatter]' &
LISTEN_ADDR=0.0.0.0:8080 FORMATTER_URL=http://localhost:8081 "$bin/hello-svc" 2>&1 | prefix '[hello]    ' &

# Ctrl-C reaches every process in the foreground group; forward TERM (from
# `kill`) the same way, then wait for both pipelines to finish.
trap 'kill -INT $(jobs -p) 2>/dev/null' TERM
wait
