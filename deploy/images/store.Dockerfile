# An S3-compatible object store for deploy/compose.yaml: moto's S3 server
# (from PyPI) on the debootstrapped debian:bookworm-slim, kept on the volume
# at /data (every request is recorded there and replayed at start, so a
# stopped and started store has lost nothing). STORE_BUCKET names the bucket
# made at start; STORE_PORT its port (9000).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY store-requirements.txt /opt/store/requirements.txt
RUN python3 -m venv /opt/store/venv \
 && /opt/store/venv/bin/pip install --no-cache-dir -q -r /opt/store/requirements.txt \
 && groupadd --gid 10002 store && useradd --uid 10002 --gid 10002 --no-create-home store \
 && mkdir -p /data && chown 10002:10002 /data
COPY store.py /opt/store/store.py
ENV STORE_BUCKET=embedeval STORE_PORT=9000
VOLUME /data
EXPOSE 9000
USER 10002:10002
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD /opt/store/venv/bin/python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/%s' % (os.environ['STORE_PORT'], os.environ['STORE_BUCKET']), timeout=2)"
ENTRYPOINT ["/opt/store/venv/bin/python", "/opt/store/store.py"]
