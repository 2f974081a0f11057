# mailhop container image (docs/operations.md "Container"): a multi-stage build on Debian 12.
#
#   docker build -t mailhop .
#   docker run -d --name mailhop -p 2525:2525 \
#     -e MAILHOP_RELAY_HOST=smtp.example.com -e MAILHOP_RELAY_USERNAME=me@example.com \
#     -e MAILHOP_RELAY_PASSWORD_FILE=/run/secrets/relay_password \
#     -v "$PWD/relay_password:/run/secrets/relay_password:ro" \
#     -e MAILHOP_ALLOWED_NETWORKS="127.0.0.0/8, 172.16.0.0/12" \
#     -v mailhop-spool:/var/lib/mailhop mailhop
#
# Configured through MAILHOP_* variables (every key of config/mailhop.yaml; no file needed when
# MAILHOP_RELAY_HOST is set), or a file mounted at /etc/mailhop/mailhop.yaml. Logs go to
# stderr (MAILHOP_LOG_FORMAT=json for one JSON object per line).

# Every step is a script that CI runs without a Docker engine (tests/e2e/test_container.py):
# scripts/stage-image, the runtime package list of scripts/install-deps, scripts/add-mailhop-user.

# --- build -----------------------------------------------------------------------------------
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps --build
COPY . .
# Release build (no tests, prefix /usr) into /stage: the stripped binary and its links.
RUN scripts/stage-image /stage

# --- runtime ---------------------------------------------------------------------------------
FROM debian:12-slim
COPY scripts/install-deps scripts/add-mailhop-user /tmp/scripts/
# Only the shared libraries the binary links, then the user mailhop and its spool directory.
RUN /tmp/scripts/install-deps --runtime --clean \
 && /tmp/scripts/add-mailhop-user \
 && rm -r /tmp/scripts
COPY --from=build /stage/ /

# Listen on every address of the container; the relay only for the container networks that
# MAILHOP_ALLOWED_NETWORKS lists (default: loopback only — set it, or use auth). The admin API
# on 8025 for the health check (and Prometheus, when admin.listen is made reachable).
ENV MAILHOP_LISTEN="0.0.0.0:2525" \
    MAILHOP_SPOOL_PATH="/var/lib/mailhop" \
    MAILHOP_ADMIN_LISTEN="127.0.0.1:8025" \
    MAILHOP_LOG_FORMAT="text"
VOLUME ["/var/lib/mailhop"]
EXPOSE 2525 8025
USER mailhop
# `mailhop health`: exit 0 when /readyz on MAILHOP_ADMIN_LISTEN says ready (docs/operations.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/sbin/mailhop", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/mailhop"]
CMD ["run"]
