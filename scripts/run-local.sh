#!/usr/bin/env bash
# Runs formatter-svc v1 on :8081 and hello-svc on :8080 in the foreground, each
# log line prefixed with its service. Where traces go:
# - OTEL_EXPORTER_OTLP_ENDPOINT, when set;
# - else a receiver already listening on localhost:4318 (Jaeger, a collector);
# - else trace-viewer, started here on :4318, which prints each trace as a tree.
# Ctrl-C stops them all gracefully: the services drain in-flight requests and
# flush their spans, and the viewer prints them before it exits.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

bin=${BIN_DIR:-target/release}
export LOG_FORMAT=${LOG_FORMAT:-text}

# The prefixers ignore SIGINT, so they outlive the processes and print their
# last lines; they exit when the process closes its output.
prefix() { (trap '' INT TERM; exec sed -u "s/^/$1 /"); }

if [ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
	echo "spans go to OTEL_EXPORTER_OTLP_ENDPOINT=$OTEL_EXPORTER_OTLP_ENDPOINT"
elif (exec 3<>/dev/tcp/127.0.0.1/4318) 2>/dev/null; then
	echo "an OTLP receiver listens on localhost:4318: spans go there (Jaeger's UI: http://localhost:16686)"
else
	echo "no OTLP receiver on localhost:4318: starting trace-viewer there; each trace prints below as a tree"
	"$bin/trace-viewer" --listen 127.0.0.1:4318 2>&1 | prefix '[traces]   ' &
	# Export every 200 ms rather than every 5 s, so a tree shows right away.
	export OTEL_BSP_SCHEDULE_DELAY=${OTEL_BSP_SCHEDULE_DELAY:-200}
	# Until it listens, the services' first export would find nobody.
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4318) 2>/dev/null && break; sleep 0.1; done
fi

LISTEN_ADDR=0.0.0.0:8081 FORMATTER_VERSION=v1 "$bin/formatter-svc" 2>&1 | prefix '[formatter]' &
LISTEN_ADDR=0.0.0.0:8080 FORMATTER_URL=http://localhost:8081 "$bin/hello-svc" 2>&1 | prefix '[hello]    ' &

# Ctrl-C reaches every process in the foreground group; forward TERM (from
# `kill`) the same way, then wait for every pipeline to finish.
trap 'kill -INT $(jobs -p) 2>/dev/null' TERM
wait
