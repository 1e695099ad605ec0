# syntax=docker/dockerfile:1.7
# One app served alone, verifying tokens a Cortex issued (PREFIQ_JWKS_URL or PREFIQ_JWT_KEYS).
# Build from the repository root:
#   docker build -f resources/deploy/docker/app.Dockerfile --build-arg APP=crm -t prefiq/app-crm .
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG APP
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    test -n "${APP}" \
    && cargo build --locked --release -p "app-${APP}" \
    && install -D "target/release/app-${APP}" /out/server

# distroless: glibc and CA certificates, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/server /usr/local/bin/server
WORKDIR /home/nonroot
USER 65532:65532
ENV PREFIQ_BIND=0.0.0.0:8080 \
    PREFIQ_ENV=production
EXPOSE 8080
# The server binary probes itself (GET /healthz): no curl or shell in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/server", "--probe"]
ENTRYPOINT ["/usr/local/bin/server"]
