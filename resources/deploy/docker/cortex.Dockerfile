# syntax=docker/dockerfile:1.7
# Cortex: every installed app (prefiq.toml), identity, RBAC, tenancy, audit and the admin UI.
# Build from the repository root:
#   docker build -f resources/deploy/docker/cortex.Dockerfile -t prefiq/cortex .
ARG RUST_VERSION=1.95.0

# The full image, not -slim: it has OpenSSL's headers and pkg-config, which webhook deliveries' TLS
# links against (distroless/cc below ships the libssl it needs at run time).
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release -p cortex \
    && install -D target/release/cortex /out/cortex

# distroless: glibc and CA certificates, no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/cortex /usr/local/bin/cortex
WORKDIR /home/nonroot
USER 65532:65532
# Production refuses to start without PREFIQ_SIGNING_KEY (`cortex key generate` makes one), the
# https PREFIQ_PUBLIC_URL its tokens name as issuer, and on PostgreSQL PREFIQ_APP_DATABASE_URL
# (a role row-level security binds); it never creates an administrator without
# PREFIQ_ADMIN_EMAIL or `cortex admin create`.
ENV PREFIQ_BIND=0.0.0.0:8080 \
    PREFIQ_ENV=production
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/cortex", "probe"]
ENTRYPOINT ["/usr/local/bin/cortex"]
CMD ["serve"]
