# syntax=docker/dockerfile:1
# Build: the dependency layer is cached until Cargo.toml or Cargo.lock change.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/Cargo.toml
# Empty crates with the real manifests: `cargo build` here compiles only the dependencies.
RUN mkdir -p src actors/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs actors/src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src actors/src
COPY actors actors
COPY src src
# Touch so cargo sees the real sources as newer than the cached empty ones.
RUN touch src/main.rs src/lib.rs actors/src/lib.rs \
 && cargo build --release --locked \
 && strip target/release/blog

# Run: a small image, a non-root user, the binary as its own health check.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/blog --create-home blog
COPY --from=build /src/target/release/blog /usr/local/bin/blog
USER blog
WORKDIR /var/lib/blog
ENV BLOG_HTTP_ADDR=0.0.0.0:8080 \
    BLOG_DATA_DIR=/var/lib/blog/data \
    BLOG_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/blog", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/blog"]
CMD ["serve"]
