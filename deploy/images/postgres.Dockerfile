# PostgreSQL for deploy/compose.yaml, from Debian's package on the
# debootstrapped debian:bookworm-slim (scripts/base-images): nothing pulled.
# Configured as the official image is, through the environment:
# POSTGRES_USER, POSTGRES_DB, and POSTGRES_PASSWORD_FILE (a secret file) or
# POSTGRES_PASSWORD; the cluster lives on the volume at /var/lib/postgresql/data.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
USER postgres
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD pg_isready -q -h 127.0.0.1 -U "${POSTGRES_USER:-postgres}" -d "${POSTGRES_DB:-postgres}"
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
