"""The object store of deploy/compose.yaml: moto's S3 server, durable.

moto keeps objects in memory. Every request it serves is recorded to
/data/recording.jsonl (moto's recorder, its lines written under a lock), and
at start the recording is replayed into a server on loopback before the
store listens on the network: stopping and starting the container loses
nothing. Then the bucket STORE_BUCKET is made if missing and the server
listens on 0.0.0.0:STORE_PORT until SIGTERM.
"""

import os
import signal
import threading
import urllib.error
import urllib.request

os.environ.setdefault("MOTO_RECORDER_FILEPATH", "/data/recording.jsonl")
os.environ["MOTO_ENABLE_RECORDING"] = "true"

from moto.moto_api import recorder  # noqa: E402
from moto.moto_api._internal.recorder.models import Recorder  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

_lock = threading.Lock()
_record = Recorder._record_request


def _record_locked(self, request, body=None):
    # Each entry is written as two writes: serialised, so that concurrent
    # requests cannot interleave their lines.
    with _lock:
        _record(self, request, body)


Recorder._record_request = _record_locked


def main() -> None:
    port = int(os.environ.get("STORE_PORT", "9000"))
    bucket = os.environ.get("STORE_BUCKET", "embedeval")
    path = os.environ["MOTO_RECORDER_FILEPATH"]
    if os.path.exists(path) and os.path.getsize(path) > 0:
        replay = ThreadedMotoServer(ip_address="127.0.0.1", port=port + 1, verbose=False)
        replay.start()
        recorder.replay_recording(target_host=f"http://127.0.0.1:{port + 1}")
        replay.stop()
        print(f"store: replayed {path}", flush=True)
    server = ThreadedMotoServer(ip_address="0.0.0.0", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}/{bucket}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5)
    except urllib.error.HTTPError:
        urllib.request.urlopen(urllib.request.Request(url, method="PUT"), timeout=5)
        print(f"store: bucket {bucket} made", flush=True)
    print(f"store: serving s3 on 0.0.0.0:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
