# The demo service (`cutover demo-service`) as a container image, to run the demo's scenario on a
# cluster with the specs in specs/kubernetes/:
#
#   docker build -t ghcr.io/YOU/cutover-demo:1.1.0 . && docker push ghcr.io/YOU/cutover-demo:1.1.0
#
# One image serves every version: the version it reports (x-version header, bodies, metric
# labels) is CUTOVER_VERSION, which cutover's Kubernetes provider sets in every container to the
# revision's version. Its behaviour comes from the environment, so a spec's `environment` can make
# a bad revision: ERROR_RATE (0..1), LATENCY_MS, JITTER_MS, FAIL_HEALTH=1, CRASH_AFTER_S.
# Ports: PORT (HTTP: /, /health, /metrics; default 8080) and GRPC_PORT (gRPC health; default 9090).

FROM rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cutover

FROM debian:bookworm-slim
COPY --from=build /src/target/release/cutover /usr/local/bin/cutover
ENV PORT=8080 GRPC_PORT=9090 CUTOVER_VERSION=dev ERROR_RATE=0 LATENCY_MS=0 JITTER_MS=0
EXPOSE 8080 9090
# Not root; state (unused by the demo service) under /tmp.
USER 65532:65532
ENV HOME=/tmp
ENTRYPOINT ["/bin/sh", "-c", "exec cutover demo-service --bind 0.0.0.0 --port \"$PORT\" --grpc-port \"$GRPC_PORT\" --version \"$CUTOVER_VERSION\" --error-rate \"$ERROR_RATE\" --latency-ms \"$LATENCY_MS\" --jitter-ms \"$JITTER_MS\" ${FAIL_HEALTH:+--fail-health} ${CRASH_AFTER_S:+--crash-after-s \"$CRASH_AFTER_S\"}"]
