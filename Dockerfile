# syntax=docker/dockerfile:1
# Multi-stage build for both services. Build one with its target:
#   docker build --target hello-svc     -t hello-svc:latest .
#   docker build --target formatter-svc -t formatter-svc:latest .
# (`make build-app` does both.)

# --- builder: Debian 13's glibc, the same as the runtime image's ---
# Linked against glibc, not musl, so the image runs the C library and
# allocator the benchmarks measured (BENCHMARKS.md); musl's were never
# measured here. The slim image already has the C toolchain the linker
# needs, so nothing is installed here.
FROM rust:1.95-slim-trixie AS builder
WORKDIR /src
COPY . .
# BuildKit cache mounts keep the crate registry and compiled dependencies
# between builds, so a code change recompiles only the workspace's crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p hello-svc -p formatter-svc \
 && mkdir -p /out \
 && cp target/release/hello-svc target/release/formatter-svc /out/

# --- runtime images: one binary each on glibc and libgcc, non-root, nothing else ---
FROM gcr.io/distroless/cc-debian13:nonroot AS hello-svc
COPY --from=builder /out/hello-svc /usr/local/bin/hello-svc
USER 65532:65532
EXPOSE 8080
ENV LISTEN_ADDR=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/hello-svc"]

FROM gcr.io/distroless/cc-debian13:nonroot AS formatter-svc
COPY --from=builder /out/formatter-svc /usr/local/bin/formatter-svc
USER 65532:65532
EXPOSE 8080
ENV LISTEN_ADDR=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/formatter-svc"]
