# Build: a release binary with SQLite and libpq statically bundled.
FROM rust:1-bookworm AS build
WORKDIR /src
# build.rs embeds templates/defaults and diesel embeds migrations/: both are compiled in.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
RUN cargo build --release --locked && strip target/release/recaudo

# Run: a small Debian image, non-root, data in a volume.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data recaudo \
    && mkdir -p /data && chown recaudo /data
COPY --from=build /src/target/release/recaudo /usr/local/bin/recaudo
USER recaudo
ENV RECAUDO_DATA_DIR=/data RECAUDO_BIND=0.0.0.0:8080 RECAUDO_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["recaudo"]
CMD ["serve"]
