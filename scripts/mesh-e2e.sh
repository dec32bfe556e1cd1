#!/usr/bin/env bash
# The live mesh test: a kind cluster, Istio with one data plane and one
# tracing provider, the Jaeger v2 addon and the Hello app, checked through
# Jaeger's query API.
#
#   make mesh-e2e TRACING=zipkin|otel DATAPLANE=sidecar|ambient
#
# Needs Docker 28 or later (with BuildKit), curl, tar, sha256sum, Rust and internet
# access. kind, kubectl and istioctl are downloaded at the pinned versions
# below into target/mesh-e2e/bin, each checked against the SHA-256 its
# project publishes, unless the ones on PATH are those versions. The cluster
# is deleted on exit, pass or fail (MESH_E2E_KEEP=1 keeps it for debugging).
# Every Jaeger answer, and on failure the cluster's state, is saved in
# target/mesh-e2e/<data plane>-<provider>/.
set -euo pipefail

# --- pinned versions ----------------------------------------------------------
KIND_VERSION=v0.30.0
# kind v0.30.0's own node image, by digest as kind pins it and its release
# notes ask (kubernetes-sigs/kind v0.30.0, pkg/apis/config/defaults/image.go):
# Kubernetes 1.34, inside Istio 1.30's supported range (>= 1.32).
KIND_NODE_IMAGE=kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a
KUBECTL_VERSION=v1.34.1
# The Makefile's ISTIO_VERSION, the one the CRDs and the addon were vendored from.
ISTIO_VERSION=$(sed -n 's/^ISTIO_VERSION := //p' Makefile)

TRACING=${TRACING:-zipkin}
DATAPLANE=${DATAPLANE:-sidecar}
CLUSTER=${MESH_E2E_CLUSTER:-hello-mesh-e2e}
GATEWAY_PORT=${MESH_E2E_GATEWAY_PORT:-18080}
JAEGER_PORT=${MESH_E2E_JAEGER_PORT:-16686}
# How long a trace may take to fill in, in Jaeger, before its check fails.
TRACE_WAIT=${MESH_E2E_TRACE_WAIT:-90}
# How long Istio may take to report an HTTPRoute's status (ambient).
ROUTE_WAIT=${MESH_E2E_ROUTE_WAIT:-120}
root=$(pwd)
out=${MESH_E2E_OUT:-"$root/target/mesh-e2e/$DATAPLANE-$TRACING"}
bin="$root/target/mesh-e2e/bin"
# A prebuilt jaeger-check (the tests' stand-in run passes the debug build).
check=${MESH_E2E_CHECK:-"$root/target/release/jaeger-check"}

say() { printf '\n=== %s\n' "$*"; }
# Every request to the cluster is bounded, so a hung port-forward fails a check
# instead of hanging the job.
http() { curl -fsS --max-time 10 "$@"; }
fail() {
    echo "mesh-e2e: $*" >&2
    exit 1
}

case "$TRACING" in
zipkin | otel) ;;
*) fail "TRACING=$TRACING is not one of: zipkin otel" ;;
esac
case "$DATAPLANE" in
sidecar | ambient) ;;
*) fail "DATAPLANE=$DATAPLANE is not one of: sidecar ambient" ;;
esac
[ -n "$ISTIO_VERSION" ] || fail "cannot read ISTIO_VERSION from the Makefile (run from the repository's root)"
for tool in docker curl tar sha256sum cargo; do
    command -v "$tool" >/dev/null || fail "\`$tool\` is required"
done
docker info >/dev/null 2>&1 || fail "Docker is not running, or this user cannot reach it"
# `docker save --platform` (below) needs the daemon's API 1.48 (Docker 28):
# docs.docker.com, reference/cli/docker/image/save.
docker_api=$(docker version -f '{{.Server.APIVersion}}' 2>/dev/null || true)
case "$docker_api" in
1.4[89]* | 1.[5-9][0-9]* | [2-9].*) ;;
*) fail "Docker's API is ${docker_api:-unknown}; \`docker save --platform\` needs 1.48 (Docker 28) or later" ;;
esac

mkdir -p "$out" "$bin"
export PATH="$bin:$PATH"

# --- tools --------------------------------------------------------------------
case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) fail "no kind, kubectl or istioctl builds for $(uname -m)" ;;
esac
# kind and kubectl name their builds linux-* and darwin-*. Istio names its
# macOS archives osx (amd64) and osx-arm64, never darwin: istio/istio 1.30.3,
# release/downloadIstioCtl.sh (OSEXT="osx"; the arch suffix only for arm64).
case "$(uname -s)" in
Linux) os=linux istio_archive=linux-$arch ;;
Darwin)
    os=darwin
    if [ "$arch" = arm64 ]; then istio_archive=osx-arm64; else istio_archive=osx; fi
    ;;
*) fail "no kind, kubectl or istioctl builds for $(uname -s)" ;;
esac

fetch() { # URL FILE
    curl -fsSL --retry 3 --connect-timeout 20 --max-time 300 -o "$2" "$1" ||
        fail "cannot download $1"
}
# Downloads URL to FILE and checks it against the SHA-256 the project
# publishes beside it at CHECKSUM-URL (its first field: kind and Istio add
# the file name after the hash).
download() { # URL FILE CHECKSUM-URL
    fetch "$1" "$2"
    fetch "$3" "$2.sha256"
    local expected actual
    expected=$(awk '{print $1; exit}' "$2.sha256")
    actual=$(sha256sum "$2" | awk '{print $1}')
    rm "$2.sha256"
    if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
        fail "$1: SHA-256 $actual does not match the published $expected"
    fi
}
# Each version is read whole before it is matched: `grep -q` would stop
# reading at the first match, and under pipefail a tool still writing (kubectl
# prints a second line, Kustomize's version) would fail the check with SIGPIPE.
if ! kind version 2>/dev/null | grep "kind $KIND_VERSION " >/dev/null; then
    say "installing kind $KIND_VERSION"
    url="https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-$os-$arch"
    download "$url" "$bin/kind" "$url.sha256sum"
    chmod +x "$bin/kind"
fi
if ! kubectl version --client 2>/dev/null | grep -x "Client Version: $KUBECTL_VERSION" >/dev/null; then
    say "installing kubectl $KUBECTL_VERSION"
    url="https://dl.k8s.io/release/$KUBECTL_VERSION/bin/$os/$arch/kubectl"
    download "$url" "$bin/kubectl" "$url.sha256"
    chmod +x "$bin/kubectl"
fi
# istioctl prints `client version: 1.30.3` (istio/istio 1.30.3,
# pkg/version/cobra.go), the line the Makefile's install gate reads too.
istioctl_version() {
    istioctl version --remote=false --short 2>/dev/null | sed -n 's/^client version: //p'
}
if [ "$(istioctl_version)" != "$ISTIO_VERSION" ]; then
    say "installing istioctl $ISTIO_VERSION"
    url="https://github.com/istio/istio/releases/download/$ISTIO_VERSION/istioctl-$ISTIO_VERSION-$istio_archive.tar.gz"
    download "$url" "$bin/istioctl.tar.gz" "$url.sha256"
    tar -xzf "$bin/istioctl.tar.gz" -C "$bin" istioctl
    rm "$bin/istioctl.tar.gz"
fi

if [ -z "${MESH_E2E_CHECK:-}" ]; then
    say "building the trace checker"
    cargo build --locked --release -p jaeger-check
fi
[ -x "$check" ] || fail "$check was not built"

# --- the cluster, always torn down ---------------------------------------------
# When this run began, in microseconds, for Jaeger's search window.
started_us="$(date +%s)000000"
forwards=()
cleanup() {
    local status=$?
    for pid in "${forwards[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$status" -ne 0 ] && kubectl cluster-info >/dev/null 2>&1; then
        echo "mesh-e2e: failed; the cluster's state is in $out/cluster-state.txt" >&2
        {
            kubectl get pods -A -o wide
            kubectl get events -A --sort-by=.lastTimestamp | tail -n 60
            for app in hello-svc formatter-svc; do
                kubectl logs -l "app=$app" --all-containers --tail=100 --prefix
            done
            if [ "$DATAPLANE" = ambient ]; then
                kubectl get gateways.gateway.networking.k8s.io,httproutes -o yaml
                kubectl logs -l gateway.networking.k8s.io/gateway-name=waypoint --tail=100 --prefix
                kubectl -n istio-system logs -l app=ztunnel --tail=100 --prefix
            fi
        } >"$out/cluster-state.txt" 2>&1 || true
    fi
    if [ -n "${MESH_E2E_KEEP:-}" ]; then
        echo "mesh-e2e: MESH_E2E_KEEP is set: cluster $CLUSTER kept; delete it with: kind delete cluster --name $CLUSTER" >&2
    else
        say "deleting cluster $CLUSTER"
        kind delete cluster --name "$CLUSTER" || true
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The cluster's credentials go to a kubeconfig of its own: the user's
# ~/.kube/config and current context are left as they were.
export KUBECONFIG="$out/kubeconfig"
if kind get clusters 2>/dev/null | grep -x "$CLUSTER" >/dev/null; then
    say "deleting the cluster $CLUSTER left by an earlier run"
    kind delete cluster --name "$CLUSTER"
fi
say "creating kind cluster $CLUSTER ($KIND_NODE_IMAGE)"
kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 180s

say "building the images and loading them into the cluster"
make build-app
# For this machine's platform only: under Docker's containerd image store
# (the default of newer Docker installs) a plain `docker save` writes an
# image's whole multi-platform index, and kind's import (`ctr images import
# --all-platforms`) fails on the platforms whose blobs were never stored
# (kubernetes-sigs/kind#3795). `kind load docker-image` runs that plain
# `docker save` itself (kubernetes-sigs/kind v0.30.0,
# pkg/cmd/kind/load/docker-image/docker-image.go, save; the import in
# pkg/cluster/nodeutils/util.go, LoadImageArchive), so the archive is made
# here and handed to `kind load image-archive`.
docker save --platform "linux/$arch" -o "$out/images.tar" hello-svc:latest formatter-svc:latest
kind load image-archive --name "$CLUSTER" "$out/images.tar"
rm -f "$out/images.tar"

say "installing Istio $ISTIO_VERSION ($DATAPLANE data plane) with the $TRACING provider, and Jaeger"
make install-istio TRACING="$TRACING" DATAPLANE="$DATAPLANE"

wait_rollout() { # NAMESPACE DEPLOYMENT [KIND]
    kubectl -n "$1" rollout status "${3:-deployment}/$2" --timeout=300s ||
        fail "${3:-deployment} $1/$2 was not ready within 300 s (see $out/cluster-state.txt)"
}
wait_rollout istio-system istiod
if [ "$DATAPLANE" = sidecar ]; then
    wait_rollout istio-system istio-ingressgateway
else
    # The ambient profile's node agents instead of an ingress gateway
    # (istio/istio 1.30.3, manifests/profiles/ambient.yaml; DaemonSets
    # istio-cni-node and ztunnel in manifests/charts/).
    wait_rollout istio-system istio-cni-node daemonset
    wait_rollout istio-system ztunnel daemonset
fi
wait_rollout istio-system jaeger

say "deploying the app"
make deploy-app DATAPLANE="$DATAPLANE"
for deployment in hello-svc formatter-svc-v1 formatter-svc-v2; do
    wait_rollout default "$deployment"
done

# Ambient: wait on what Istio reports, not on time. Each Gateway is
# Programmed once its Deployment serves; each HTTPRoute parent is Accepted
# with ResolvedRefs; and ResolvedWaypoints is always True, so only its
# message tells a route no waypoint enforces from one that is
# (istio/istio 1.30.3, pilot/pkg/config/kube/gateway/conditions.go:
# "All waypoints resolved", or why not). kubectl wait keeps waiting while a
# JSONPath is missing (kubernetes/kubectl v0.34.1, the staging copy of
# kubectl v1.34.1: pkg/cmd/wait/wait.go, AllowMissingKeys).
# Gateways by their full resource name: Istio's CRDs have a `gateway` kind too
# (gateways.networking.istio.io beside gateways.gateway.networking.k8s.io).
gtw=gateways.gateway.networking.k8s.io
if [ "$DATAPLANE" = ambient ]; then
    kubectl wait --for=condition=Programmed "$gtw/hello-gateway" "$gtw/waypoint" --timeout=300s ||
        fail "the Gateways were not Programmed within 300 s (see $out/cluster-state.txt)"
    for route in hello formatter-svc; do
        for condition in Accepted ResolvedRefs; do
            kubectl wait --timeout="${ROUTE_WAIT}s" "httproute/$route" \
                --for="jsonpath={.status.parents[0].conditions[?(@.type==\"$condition\")].status}=True" ||
                fail "HTTPRoute $route: its parent is not $condition within $ROUTE_WAIT s (see $out/cluster-state.txt)"
        done
    done
    waypoints() {
        kubectl get httproute formatter-svc \
            -o jsonpath='{.status.parents[0].conditions[?(@.type=="ResolvedWaypoints")].message}'
    }
    deadline=$((SECONDS + ROUTE_WAIT))
    until [ "$(waypoints)" = "All waypoints resolved" ]; do
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "HTTPRoute formatter-svc: no waypoint enforces it after $ROUTE_WAIT s: \"$(waypoints)\""
        sleep 2
    done
    echo "HTTPRoute formatter-svc: $(waypoints)" >&2
fi

# --- port-forwards ------------------------------------------------------------
forward() { # NAMESPACE SERVICE LOCAL:REMOTE
    kubectl -n "$1" port-forward "service/$2" "$3" >"$out/port-forward-$2.log" 2>&1 &
    forwards+=($!)
}
if [ "$DATAPLANE" = sidecar ]; then
    forward istio-system istio-ingressgateway "$GATEWAY_PORT:80"
else
    # The Service Istio deploys for Gateway hello-gateway of class istio
    # (k8s/ambient/gateway.yaml; the Makefile's `hostport` reads it too).
    forward default hello-gateway-istio "$GATEWAY_PORT:80"
fi
forward istio-system tracing "$JAEGER_PORT:80"
gateway="http://127.0.0.1:$GATEWAY_PORT"
jaeger="http://127.0.0.1:$JAEGER_PORT/jaeger"

until_ok() { # SECONDS WHAT COMMAND...
    local seconds=$1 what=$2
    local deadline=$((SECONDS + seconds))
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within $seconds s"
        sleep 2
    done
}
# The sidecars and the routes reach the gateway a little after the pods are
# ready: wait for the first good answer rather than for a fixed time.
until_ok 120 "the gateway routing /sayHello to hello-svc" http "$gateway/sayHello/Brian"
until_ok 60 "Jaeger's query API on $jaeger" http "$jaeger/api/services"

# --- the checks ----------------------------------------------------------------
V1="Hello, puny human Brian! Morbo asks: how do you like running on Kubernetes?"
V2="Good news, Brian! If anyone needs me I'll be in the Angry Dome!"

request() { # NAME EXPECTED-BODY CURL-ARGS...: the answer's headers go to $out/NAME.headers
    local name=$1 expected=$2
    shift 2
    local body
    body=$(http -D "$out/$name.headers" "$@") || fail "$name: the request failed"
    [ "$body" = "$expected" ] || fail "$name: expected \"$expected\", got \"$body\""
    echo "$name: \"$body\"" >&2
}

# Polls Jaeger for the trace until the check passes: the services export
# every 5 s, and Envoy flushes every 5 s or every 5 spans, whichever comes
# first, under both providers (envoyproxy/envoy, the tracers' runtime
# defaults: tracing.zipkin.{flush_interval_ms,min_flush_spans} in
# source/extensions/tracers/zipkin/zipkin_tracer_impl.cc and
# tracing.opentelemetry.* in source/extensions/tracers/opentelemetry/tracer.cc),
# so a trace fills in over seconds.
check_trace() { # NAME TRACE-ID CHECK-ARGS...
    local name=$1 id=$2
    shift 2
    local deadline=$((SECONDS + TRACE_WAIT))
    say "$name: trace $id"
    while true; do
        if http -o "$out/$name.json" "$jaeger/api/traces/$id" &&
            "$check" "$@" "$out/$name.json" >"$out/$name.check.txt" 2>&1; then
            cat "$out/$name.check.txt"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            cat "$out/$name.check.txt" 2>/dev/null || true
            fail "$name: the trace was not as expected after $TRACE_WAIT s (answer: $out/$name.json)"
        fi
        sleep 3
    done
}

traceresponse_id() { # HEADERS-FILE: the trace id of its traceresponse header
    { grep -i '^traceresponse:' "$1" || true; } | head -n 1 |
        sed -n 's/^[^:]*: *00-\([0-9a-f]\{32\}\)-.*/\1/p'
}

request say-hello-v1 "$V1" "$gateway/sayHello/Brian"
id=$(traceresponse_id "$out/say-hello-v1.headers")
[ -n "$id" ] || fail "say-hello-v1: no traceresponse header in the answer"
check_trace say-hello-v1 "$id" say-hello --version v1 --dataplane "$DATAPLANE"

request say-hello-v2 "$V2" -A "Mozilla/4.0 (compatible; Netscape)" "$gateway/sayHello/Brian"
id=$(traceresponse_id "$out/say-hello-v2.headers")
[ -n "$id" ] || fail "say-hello-v2: no traceresponse header in the answer"
check_trace say-hello-v2 "$id" say-hello --version v2 --dataplane "$DATAPLANE"

# /sayHello2 makes no span of its own, so it sends no traceresponse: the
# request brings its trace id, in both formats the providers read.
id=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
parent=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
request say-hello2 "$V1" \
    -H "traceparent: 00-$id-$parent-01" \
    -H "x-b3-traceid: $id" -H "x-b3-spanid: $parent" -H "x-b3-sampled: 1" \
    "$gateway/sayHello2/Brian"
check_trace say-hello2 "$id" say-hello2 --dataplane "$DATAPLANE"

# The proxies that could trace the services' OTLP export: their sidecars, or
# under ambient the waypoint (ztunnel makes no spans).
if [ "$DATAPLANE" = sidecar ]; then
    proxies="hello-svc.default formatter-svc.default"
else
    proxies="waypoint.default"
fi
say "no export calls traced by $proxies"
# Jaeger v2's /api/traces reads only start and end (microseconds), not the
# UI's lookback, and defaults to the last 48 h (jaegertracing/jaeger v2.14.0,
# cmd/jaeger/internal/extension/jaegerquery/internal/query_parser.go): the
# search covers exactly this run.
for service in $proxies; do
    http -o "$out/search-$service.json" \
        "$jaeger/api/traces?service=$service&start=${started_us}&limit=1000" ||
        fail "cannot search Jaeger for $service's traces"
done
"$check" no-export-traces "$out"/search-*.json || fail "the services' OTLP export was traced by $proxies"

say "mesh-e2e passed on the $DATAPLANE data plane with the $TRACING provider"
