# syntax=docker/dockerfile:1.7
# The prefiq command line, for CI jobs (`prefiq codegen --check`, `prefiq migrate status`).
# Build from the repository root:
#   docker build -f resources/deploy/docker/prefiq.Dockerfile -t prefiq/prefiq .
#   docker run --rm -v "$PWD:/work" -w /work prefiq/prefiq codegen --check
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p prefiq \
    && install -D target/release/prefiq /out/prefiq

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/prefiq /usr/local/bin/prefiq
WORKDIR /home/nonroot
USER 65532:65532
# A command that runs and exits, not a server: `prefiq --version` answering is its health.
HEALTHCHECK --interval=60s --timeout=5s --retries=1 \
    CMD ["/usr/local/bin/prefiq", "--version"]
ENTRYPOINT ["/usr/local/bin/prefiq"]
CMD ["--help"]
