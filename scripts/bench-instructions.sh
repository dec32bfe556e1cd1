#!/usr/bin/env bash
# Instructions per request, per service and arm, counted by callgrind, and
# each arm as a ratio to the bare pair (axum + reqwest, no tracing, no logs).
# CPU time on a shared 2-core VM moves by tens of microseconds between rounds;
# instruction totals repeat within 0.3 %. They leave out the kernel (sockets,
# wake-ups, the write of each log line).
#
#   make bench-instructions          # or: scripts/bench-instructions.sh [REQUESTS]
#   BENCH_BIN=/elsewhere/target/profiling scripts/bench-instructions.sh
#                                    # another build's services (before/after)
#   BENCH_ARMS="bare disabled not-exported grpc" scripts/bench-instructions.sh
#                                    # other arms (the bare one is always run)
#   BENCH_CONNECTIONS=1 BENCH_RATE=0 scripts/bench-instructions.sh 1000
#                                    # sequential requests, as fast as they go
#   BENCH_BARE=<bare-pair binary> BENCH_SINKS=<mesh-bench binary>
#                                    # other builds of the floor and the sinks
#   BENCH_HELLO_PORT=27080 BENCH_FORMATTER_PORT=27081
#                                    # other ports (default 17080, 17081)
#
# The arms: `bare` (bench/bare-pair); `disabled` (OTEL_SDK_DISABLED=true,
# RUST_LOG=warn); `traced-warn` (every span exported over OTLP/HTTP,
# RUST_LOG=warn); `deployed` (as k8s/app.yaml runs it: exported over
# OTLP/HTTP, RUST_LOG=info, LOG_FORMAT=json); `deployed-text` (the same with
# LOG_FORMAT=text). Optional: `not-exported` (OTEL_TRACES_EXPORTER=none) and
# `grpc` (exported over OTLP/gRPC), both at warn.
#
# Each arm runs its two services (the `profiling` build, with symbols) under
# callgrind, warms them up, zeroes the counters, sends REQUESTS requests (by
# default 150 a second over 4 connections) and dumps the counters. The
# exported arms send to `mesh-bench --sinks-only`'s counting sinks. Each
# service's log lines are counted, against the requests answered.
set -euo pipefail

requests=${1:-3072}
connections=${BENCH_CONNECTIONS:-4}
# Requests a second; 0 sends each as soon as the last is answered.
rate=${BENCH_RATE:-150}
load=(-c "$connections")
[ "$rate" != 0 ] && load+=(-q "$rate")
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_BIN:-$root/target/profiling}
bare=${BENCH_BARE:-$root/target/profiling/bare-pair}
sinks=${BENCH_SINKS:-$root/target/release/mesh-bench}
arms=${BENCH_ARMS:-bare disabled traced-warn deployed deployed-text}
case " $arms " in *" bare "*) ;; *) arms="bare $arms" ;; esac
work=$(mktemp -d)
# Each arm's callgrind profile stays here, for callgrind_annotate or kcachegrind.
kept="$root/target/bench-instructions"
mkdir -p "$kept"
# Other ports let two checkouts measure at once.
hello_port=${BENCH_HELLO_PORT:-17080}
formatter_port=${BENCH_FORMATTER_PORT:-17081}

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
"$sinks" --sinks-only >"$work/sinks" &
pids+=($!)
for _ in $(seq 100); do
    [ "$(wc -l <"$work/sinks")" -ge 2 ] && break
    sleep 0.1
done
http_sink=$(awk '$1 == "http" {print $2}' "$work/sinks")
grpc_sink=$(awk '$1 == "grpc" {print $2}' "$work/sinks")
if [ -z "$http_sink" ] || [ -z "$grpc_sink" ]; then
    echo "bench-instructions: the sinks did not start ($sinks --sinks-only)" >&2
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

# measure ARM ENV...: prints "ARM hello|formatter INSTRUCTIONS_PER_REQUEST"
# and "ARM hello-lines|formatter-lines LOG_LINES".
measure() {
    local arm=$1
    shift
    local common=(RUST_LOG=warn OTEL_BSP_SCHEDULE_DELAY=5000 LOG_FORMAT=json "$@")
    local hello_cmd=("$bin/hello-svc") formatter_cmd=("$bin/formatter-svc")
    if [ "$arm" = bare ]; then
        hello_cmd=("$bare" hello)
        formatter_cmd=("$bare" formatter)
    fi
    env "${common[@]}" LISTEN_ADDR="127.0.0.1:$formatter_port" OTEL_SERVICE_NAME=formatter-svc \
        valgrind --tool=callgrind --callgrind-out-file="$work/$arm.formatter.out" \
        "${formatter_cmd[@]}" >"$work/$arm.formatter.log" 2>/dev/null &
    local formatter=$!
    env "${common[@]}" LISTEN_ADDR="127.0.0.1:$hello_port" OTEL_SERVICE_NAME=hello-svc \
        FORMATTER_URL="http://127.0.0.1:$formatter_port" \
        valgrind --tool=callgrind --callgrind-out-file="$work/$arm.hello.out" \
        "${hello_cmd[@]}" >"$work/$arm.hello.log" 2>/dev/null &
    local hello=$!
    pids+=("$formatter" "$hello")
    wait_for "http://127.0.0.1:$hello_port/healthz"
    wait_for "http://127.0.0.1:$formatter_port/healthz"
    local url="http://127.0.0.1:$hello_port/sayHello/Brian"
    oha -n 600 "${load[@]}" --no-tui "$url" >/dev/null
    callgrind_control -z "$hello" >/dev/null 2>&1
    callgrind_control -z "$formatter" >/dev/null 2>&1
    local lines_before=() service
    for service in hello formatter; do lines_before+=("$(wc -l <"$work/$arm.$service.log")"); done
    oha -n "$requests" "${load[@]}" --no-tui --output-format json "$url" >"$work/$arm.json"
    callgrind_control -d "$hello" >/dev/null 2>&1
    callgrind_control -d "$formatter" >/dev/null 2>&1
    # Lines are written before the response goes out, so they are all in
    # the files by now.
    echo "$arm hello-lines $(($(wc -l <"$work/$arm.hello.log") - lines_before[0]))"
    echo "$arm formatter-lines $(($(wc -l <"$work/$arm.formatter.log") - lines_before[1]))"
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

http=(OTEL_EXPORTER_OTLP_ENDPOINT="$http_sink" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)
run_arm() {
    case $1 in
    bare) measure bare ;;
    disabled) measure disabled OTEL_SDK_DISABLED=true ;;
    not-exported) measure not-exported OTEL_TRACES_EXPORTER=none ;;
    traced-warn) measure traced-warn "${http[@]}" ;;
    grpc) measure grpc OTEL_EXPORTER_OTLP_ENDPOINT="$grpc_sink" OTEL_EXPORTER_OTLP_PROTOCOL=grpc ;;
    deployed) measure deployed "${http[@]}" RUST_LOG=info LOG_FORMAT=json ;;
    deployed-text) measure deployed-text "${http[@]}" RUST_LOG=info LOG_FORMAT=text ;;
    *)
        echo "bench-instructions: unknown arm \`$1\` in BENCH_ARMS" >&2
        exit 2
        ;;
    esac
}
# shellcheck disable=SC2086 # a list of words
set -- $arms
echo "measuring $requests requests an arm under callgrind (about a minute an arm): $*" >&2
for arm in "$@"; do run_arm "$arm"; done >"$work/results"
get() { awk -v a="$1" -v s="$2" '$1 == a && $2 == s {print $3}' "$work/results"; }

# ratio A B: A/B to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "| arm | hello-svc (instructions/req) | formatter-svc | both | vs the bare pair | log lines a request (hello + formatter) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
bare_both=$(($(get bare hello) + $(get bare formatter)))
for arm in "$@"; do
    h=$(get "$arm" hello)
    f=$(get "$arm" formatter)
    lines="$(ratio "$(get "$arm" hello-lines)" "$requests") + $(ratio "$(get "$arm" formatter-lines)" "$requests")"
    echo "| $arm | $h | $f | $((h + f)) | $(ratio $((h + f)) "$bare_both")× | $lines |"
done

# The frames of the costliest arm measured (the deployed one by default).
shown=deployed
case " $* " in *" deployed "*) ;; *) shown=${!#} ;; esac
echo
echo "| where ($shown arm, inclusive) | hello-svc | formatter-svc |"
echo "| --- | ---: | ---: |"
row() { echo "| $1 | $(frame "$shown" hello "$2") | $(frame "$shown" formatter "$2") |"; }
row "batch processor: export (convert, encode, send)" 'BatchSpanProcessor::get_spans_and_export'
row "  encoding straight from the spans (otlp_export)" 'otlp_export::Encoder::export_request'
row "  freeing the exported spans" 'core::ptr::drop_in_place<opentelemetry_sdk::trace::export::SpanData>'
row "span start (registry, layer, SDK)" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::new_span'
row "span end (layer, SDK, hand-off)" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::try_close'
row "span enter" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::enter'
row "span exit" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::exit'
row "log lines: writing them (mesh_telemetry::log_format)" 'LogLines<W> as tracing_subscriber::layer::Layer<S>>::on_event::\{\{closure\}\}'
row "the access line, from its fields to the write" 'mesh_server::access_log::AccessLog::finish'
row "events, all layers" 'Layered<L,S> as tracing_core::subscriber::Subscriber>::event'
row "malloc (all callers)" '(\./malloc/)?\./malloc/malloc\.c:malloc'
row "free (all callers)" '(\./malloc/)?\./malloc/malloc\.c:free'
