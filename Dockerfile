# mailhop container image (docs/operations.md): a multi-stage build on Debian 12.
#
#   docker build -t mailhop .
#   docker run -d --name mailhop -p 2525:2525 \
#     -e MAILHOP_RELAY_HOST=smtp.example.com -e MAILHOP_RELAY_USERNAME=me@example.com \
#     -e MAILHOP_RELAY_PASSWORD_FILE=/run/secrets/relay_password \
#     -v mailhop-spool:/var/lib/mailhop mailhop
#
# Configured through MAILHOP_* variables (every key of config/mailhop.yaml; no file needed when
# MAILHOP_RELAY_HOST is set), or a file mounted at /etc/mailhop/mailhop.yaml. Logs go to
# stderr (MAILHOP_LOG_FORMAT=json for one JSON object per line).

# --- build -----------------------------------------------------------------------------------
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps --build
COPY . .
RUN cmake --preset release -DMAILHOP_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr \
 && cmake --build build/release --target mailhop \
 && DESTDIR=/stage cmake --install build/release \
 && strip /stage/usr/sbin/mailhop

# --- runtime ---------------------------------------------------------------------------------
FROM debian:12-slim
# Only the shared libraries the binary links (Boost.Asio, Beast, JSON are header-only).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 libspdlog1.10 libfmt9 libyaml-cpp0.7 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system mailhop \
 && useradd --system --gid mailhop --home-dir /var/lib/mailhop --shell /usr/sbin/nologin mailhop \
 && install -d -o mailhop -g mailhop -m 0750 /var/lib/mailhop
COPY --from=build /stage/usr/sbin/mailhop /usr/sbin/mailhop
RUN ln -s mailhop /usr/sbin/sendmail && ln -s ../sbin/mailhop /usr/bin/mailq

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
# `mailhop health`: exit 0 when /readyz says ready (the admin work; see docs/operations.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/sbin/mailhop", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/mailhop"]
CMD ["run"]
