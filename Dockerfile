# syntax=docker/dockerfile:1
# agent-otp: one static-ish binary on a distroless base, running as a non-root user, data in a
# volume. Build: docker build -t agent-otp .   Run: see docs/operations.md.

# Builder: the same build CI runs (scripts/build-release.sh: the `dist` profile, fat LTO);
# tests/it/deploy.rs checks that this stage runs that script and nothing else to build.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cp "$(scripts/build-release.sh)" /agent-otp
# The volume's mount point, owned by the runtime user (the final image has no shell to mkdir).
RUN mkdir -p /data

# Final: glibc, libgcc, CA certificates and a "nonroot" user (65532), no shell, no package
# manager. The server only needs the binary: templates, CSS and migrations are compiled in.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /agent-otp /usr/local/bin/agent-otp
COPY --from=builder --chown=65532:65532 /data /data
COPY policies.example.yaml /etc/agent-otp/policies.example.yaml
ENV AGENT_OTP_DATA_DIR=/data \
    AGENT_OTP_LISTEN=0.0.0.0:8787 \
    AGENT_OTP_POLICIES=/data/policies.yaml
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["agent-otp", "health"]
ENTRYPOINT ["agent-otp"]
CMD ["serve"]
