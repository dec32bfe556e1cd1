#!/usr/bin/env bash
# Instructions per request, per service and arm, counted by callgrind: the
# quiet measure of what tracing adds. CPU time on a shared 2-core VM moves by
# tens of microseconds between rounds; instruction totals repeat within 0.3 %.
# They leave out the kernel (sockets, wake-ups), which tracing barely changes.
#
#   make bench-instructions          # or: scripts/bench-instructions.sh [REQUESTS]
#   BENCH_BIN=/elsewhere/target/profiling scripts/bench-instructions.sh
#                                    # another build's services (before/after)
#   BENCH_CONNECTIONS=1 BENCH_RATE=0 scripts/bench-instructions.sh 1000
#                                    # sequential requests, as fast as they go
#
# Each arm runs hello-svc and formatter-svc (the `profiling` build, with
# symbols) under callgrind, warms them up, zeroes the counters, sends REQUESTS
# requests (by default 150 a second over 4 connections) and dumps the
# counters. The exported arms send to `mesh-bench --sinks-only`'s counting
# sinks, over OTLP/HTTP and gRPC.
set -euo pipefail

requests=${1:-3072}
connections=${BENCH_CONNECTIONS:-4}
# Requests a second; 0 sends each as soon as the last is answered.
rate=${BENCH_RATE:-150}
load=(-c "$connections")
[ "$rate" != 0 ] && load+=(-q "$rate")
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-$root/target/profiling}
work=$(mktemp -d)
# Each arm's callgrind profile stays here, for callgrind_annotate or kcachegrind.
kept="$root/target/bench-instructions"
mkdir -p "$kept"
hello_port=17080
formatter_port=17081

for tool in valgrind callgrind_control callgrind_annotate oha python3 curl awk; do
    command -v "$tool" >/dev/null || {
        echo "bench-instructions: \`$tool\` is missing (valgrind: apt-get install valgrind; oha: make bench installs it)" >&2
        exit 2
    }
done

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The benchmark's counting sinks (OTLP/HTTP and OTLP/gRPC): they count spans
# without decoding them.
"$root/target/release/mesh-bench" --sinks-only >"$work/sinks" &
pids+=($!)
for _ in $(seq 100); do
    [ "$(wc -l <"$work/sinks")" -ge 2 ] && break
    sleep 0.1
done
http_sink=$(awk '$1 == "http" {print $2}' "$work/sinks")
grpc_sink=$(awk '$1 == "grpc" {print $2}' "$work/sinks")
if [ -z "$http_sink" ] || [ -z "$grpc_sink" ]; then
    echo "bench-instructions: the sinks did not start (target/release/mesh-bench --sinks-only)" >&2
    exit 1
fi

wait_for() {
    local url=$1
    for _ in $(seq 300); do
        curl -fs -o /dev/null "$url" && return 0
        sleep 0.1
    done
    echo "bench-instructions: $url did not answer within 30 s" >&2
    exit 1
}

# measure ARM ENV...: prints "ARM hello|formatter INSTRUCTIONS_PER_REQUEST".
measure() {
    local arm=$1
    shift
    local common=(RUST_LOG=warn OTEL_BSP_SCHEDULE_DELAY=5000 "$@")
    env "${common[@]}" LISTEN_ADDR="127.0.0.1:$formatter_port" OTEL_SERVICE_NAME=formatter-svc \
        valgrind --tool=callgrind --callgrind-out-file="$work/$arm.formatter.out" \
        "$bin/formatter-svc" >/dev/null 2>&1 &
    local formatter=$!
    env "${common[@]}" LISTEN_ADDR="127.0.0.1:$hello_port" OTEL_SERVICE_NAME=hello-svc \
        FORMATTER_URL="http://127.0.0.1:$formatter_port" \
        valgrind --tool=callgrind --callgrind-out-file="$work/$arm.hello.out" \
        "$bin/hello-svc" >/dev/null 2>&1 &
    local hello=$!
    pids+=("$formatter" "$hello")
    wait_for "http://127.0.0.1:$hello_port/healthz"
    wait_for "http://127.0.0.1:$formatter_port/healthz"
    local url="http://127.0.0.1:$hello_port/sayHello/Brian"
    oha -n 600 "${load[@]}" --no-tui "$url" >/dev/null
    callgrind_control -z "$hello" >/dev/null 2>&1
    callgrind_control -z "$formatter" >/dev/null 2>&1
    oha -n "$requests" "${load[@]}" --no-tui --output-format json "$url" >"$work/$arm.json"
    callgrind_control -d "$hello" >/dev/null 2>&1
    callgrind_control -d "$formatter" >/dev/null 2>&1
    kill "$hello" "$formatter"
    wait "$hello" "$formatter" 2>/dev/null || true
    local ok
    ok=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["statusCodeDistribution"].get("200", 0))' "$work/$arm.json")
    if [ "$ok" -ne "$requests" ]; then
        echo "bench-instructions: $arm answered $ok of $requests requests with 200" >&2
        exit 1
    fi
    for service in hello formatter; do
        # The first dump, taken after the zeroing, holds just the measured
        # requests (callgrind numbers dumps .1, .2, …).
        local dump="$work/$arm.$service.out.1"
        [ -f "$dump" ] || {
            echo "bench-instructions: callgrind wrote no dump for $arm/$service" >&2
            exit 1
        }
        local total
        total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
        echo "$arm $service $((total / ok))"
        callgrind_annotate --inclusive=yes "$dump" >"$work/$arm.$service.annotated" 2>/dev/null
        cp "$dump" "$kept/$arm.$service.callgrind"
    done
}

# frame ARM SERVICE PATTERN: the inclusive instructions a request of the
# first (costliest) function matching PATTERN; callgrind names a recursive
# call's copies NAME'2, NAME'3; annotate lists by cost. "n/a" when
# no function matches.
frame() {
    local count
    count=$(grep -m1 -E "$3('[0-9]+)? \[" "$work/$1.$2.annotated" | awk '{gsub(",", "", $1); print $1}')
    if [ -n "$count" ]; then echo $((count / requests)); else echo "n/a"; fi
}

echo "measuring $requests requests an arm under callgrind (about a minute an arm, four arms)" >&2
{
    measure disabled OTEL_SDK_DISABLED=true
    measure not-exported OTEL_TRACES_EXPORTER=none
    measure http OTEL_EXPORTER_OTLP_ENDPOINT="$http_sink" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
    measure grpc OTEL_EXPORTER_OTLP_ENDPOINT="$grpc_sink" OTEL_EXPORTER_OTLP_PROTOCOL=grpc
} >"$work/results"
get() { awk -v a="$1" -v s="$2" '$1 == a && $2 == s {print $3}' "$work/results"; }

echo
echo "| arm | hello-svc (instructions/req) | formatter-svc | both | added vs SDK disabled |"
echo "| --- | ---: | ---: | ---: | ---: |"
base=$(($(get disabled hello) + $(get disabled formatter)))
for arm in disabled not-exported http grpc; do
    h=$(get "$arm" hello)
    f=$(get "$arm" formatter)
    echo "| $arm | $h | $f | $((h + f)) | $((h + f - base)) |"
done

echo
echo "| where (http arm, inclusive) | hello-svc | formatter-svc |"
echo "| --- | ---: | ---: |"
row() { echo "| $1 | $(frame http hello "$2") | $(frame http formatter "$2") |"; }
row "batch processor: export (convert, encode, send)" 'BatchSpanProcessor::get_spans_and_export'
row "  encoding straight from the spans (otlp_export)" 'otlp_export::Encoder::export_request'
row "  freeing the exported spans" 'core::ptr::drop_in_place<opentelemetry_sdk::trace::export::SpanData>'
row "span start (registry, layer, SDK)" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::new_span'
row "span end (layer, SDK, hand-off)" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::try_close'
row "span enter" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::enter'
row "span exit" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::exit'
row "malloc (all callers)" '(\./malloc/)?\./malloc/malloc\.c:malloc'
row "free (all callers)" '(\./malloc/)?\./malloc/malloc\.c:free'
