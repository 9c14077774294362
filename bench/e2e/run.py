"""The end-to-end benchmark: embedeval serving a ResNet-18 on CIFAR-format
data, against the independent Python pipeline (pipeline.py), on the same
machine in the same run.

    bench/.venv/bin/python bench/e2e/run.py --embedeval target/release/embedeval [--train 10000 --test 2000]

In a fresh temporary folder it writes the model (make_resnet18.py) and the
data (make_cifar.py), starts `embedeval serve` on a free loopback port with
empty models and datasets roots and its own data dir, waits for `health`,
adds the dataset, then:

- idle RSS: the server's VmRSS once the dataset is added and the model
  registered (`embedeval models add resnet18 --onnx MODEL.onnx --loss infonce
  --tau 0.2 --preset cifar10`), before any evaluation;
- cold: `embedeval eval resnet18 --dataset cifar --skip-alignment --format
  json`, timed, while the server's VmRSS is sampled every 0.1 s; peak RSS is
  the largest sample or VmHWM, whichever is larger;
- after RSS: the server's VmRSS about 2 s after the cold eval returned;
- cached: the same eval again (embeddings from the cache), timed;
- python: pipeline.py on the same files, timed;

compares the metrics, prints a JSON summary and a Markdown table row, writes
the summary to bench/e2e/last.json and stops the server (SIGTERM) whatever
happens.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LAST = HERE / "last.json"
sys.path.insert(0, str(HERE.parent))

import machine as where  # noqa: E402

# (name in the summary, path in the report / pipeline output, absolute tolerance)
CHECKS = [
    ("uniformity_loss", ("uniformity_loss",), 1e-3),
    ("tolerance", ("tolerance",), 1e-3),
    ("nearest_negative_similarity[0]", ("nearest_negative_similarity", 0), 1e-3),
    ("knn_top1", ("knn", "top1"), 0.01),
    ("knn_top5", ("knn", "top5"), 0.01),
    ("linear_top1", ("linear", "top1"), 0.01),
]


def clean_env():
    """This environment without EMBEDEVAL_* settings that would change the
    server or the client (a token file, a database URL, a cache size), so
    that only the flags here count; the library's location and the log
    filter stay."""
    keep = {"EMBEDEVAL_ORT_LIB", "EMBEDEVAL_LOG"}
    return {k: v for k, v in os.environ.items() if not k.startswith("EMBEDEVAL_") or k in keep}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    """VmRSS and VmHWM of a process, in MiB (None once it is gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024.0  # kB
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def rss(pid):
    s = proc_status(pid)
    return s.get("VmRSS") if s else None


class RssSampler:
    """Samples a process's VmRSS every `period` seconds on a thread."""

    def __init__(self, pid, period=0.1):
        self.pid, self.period = pid, period
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss(self.pid)
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def peak(self):
        return max(self.samples) if self.samples else None


def timed(cmd, **kw):
    """Runs cmd; returns (seconds, CompletedProcess). Fails loudly on a non-zero exit."""
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), **kw)
    seconds = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}\n"
                           f"stdout: {p.stdout[-4000:]}\nstderr: {p.stderr[-4000:]}")
    return seconds, p


def parse_json(text):
    """The first JSON object in text (whatever is printed around it)."""
    start = text.find("{")
    if start < 0:
        raise ValueError(f"no JSON object in: {text[:2000]!r}")
    obj, _ = json.JSONDecoder().raw_decode(text[start:])
    return obj


def get(d, path):
    for p in path:
        d = d[p]
    return d


def compare(report, python):
    """Every check as {embedeval, python, diff, tol, ok}, and whether all passed."""
    rows = {}
    for name, path, tol in CHECKS:
        try:
            a, b = float(get(report, path)), float(get(python, path))
            diff = abs(a - b)
            rows[name] = dict(embedeval=a, python=b, diff=diff, tol=tol, ok=bool(diff <= tol))
        except (KeyError, IndexError, TypeError, ValueError) as e:
            rows[name] = dict(error=f"{type(e).__name__}: {e}", tol=tol, ok=False)
    for name, a, b in [("num_test", int(report.get("num_test", -1)), python["num_test"]),
                       ("embedding_dim", int(report.get("embedding_dim", -1)), python["embedding_dim"])]:
        rows[name] = dict(embedeval=a, python=b, ok=a == b)
    return rows, all(r["ok"] for r in rows.values())


def fmt_s(x):
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def fmt_mib(x):
    return "n/a" if x is None else f"{x:,.0f} MiB"


def markdown_row(s):
    label = (f"ResNet-18 (CIFAR, 512-d features, 128-d head), "
             f"{s['config']['train']:,} train / {s['config']['test']:,} test")
    cold, cached, py = s["seconds"]["embedeval_cold"], s["seconds"]["embedeval_cached"], s["seconds"]["python"]
    failed = [k for k, r in s["comparison"].items() if not r["ok"]]
    agree = "yes" if s["agree"] else "no: " + ", ".join(failed)
    if s["config"].get("skip_alignment") is False:
        agree += " (alignment not skipped)"
    return (f"| {label} | {fmt_s(cold)} | {fmt_s(cached)} | {fmt_s(py)} | {py / cold:.2f}× (python / cold) "
            f"| {fmt_mib(s['rss_mib']['idle'])} | {fmt_mib(s['rss_mib']['peak'])} "
            f"| {fmt_mib(s['rss_mib']['after'])} | {agree} |")


class Server:
    """`embedeval serve` on a free loopback port, with fresh roots under work."""

    def __init__(self, binary, work, flags=()):
        self.binary, self.work, self.flags = binary, work, list(flags)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = None
        self.log_path = work / "server.log"
        self.exit_code = None

    def start(self):
        dirs = {k: self.work / k for k in ("models", "datasets", "data")}
        for d in dirs.values():
            d.mkdir()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--addr", self.addr, "--models-dir", str(dirs["models"]),
             "--datasets-dir", str(dirs["datasets"]), "--data-dir", str(dirs["data"]), *self.flags],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=clean_env())
        return self

    @property
    def pid(self):
        return self.proc.pid

    def client(self, *args):
        return [str(self.binary), *map(str, args), "--server", self.addr]

    def wait_healthy(self, timeout=180.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited {self.proc.returncode} before serving:\n{self.log_tail()}")
            p = subprocess.run(self.client("health"), capture_output=True, text=True, env=clean_env())
            if p.returncode == 0:
                return
            time.sleep(0.25)
        raise RuntimeError(f"the server was not SERVING after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n=4000):
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, grace=45.0):
        """SIGTERM, then SIGKILL if it is still there after `grace` seconds
        (the server's own --shutdown-grace is 30 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        self.log.close()


def eval_command(server, model, skip_alignment):
    cmd = server.client("eval", model, "--dataset", "cifar", "--format", "json")
    if skip_alignment:
        cmd.insert(cmd.index("--format"), "--skip-alignment")
    return cmd


def has_skip_alignment(binary):
    p = subprocess.run([str(binary), "eval", "--help"], capture_output=True, text=True, env=clean_env())
    return "--skip-alignment" in p.stdout + p.stderr


def run_eval(server, model, skip_alignment):
    seconds, p = timed(eval_command(server, model, skip_alignment), cwd=ROOT)
    report = parse_json(p.stdout)
    if report.get("status") != "COMPLETED":
        raise RuntimeError(f"evaluation {report.get('id')} {report.get('status')}: {report.get('error')}")
    return seconds, report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedeval", required=True, type=pathlib.Path, help="the embedeval binary")
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--after-wait", type=float, default=2.0, help="seconds before the 'after' RSS")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--serve-flag", action="append", default=[],
                    help="a flag for `embedeval serve` (repeat for several), e.g. --serve-flag=--ort-arena")
    args = ap.parse_args()
    binary = args.embedeval.resolve()
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary}: not an executable")
    py = sys.executable

    skip_alignment = has_skip_alignment(binary)
    if not skip_alignment:
        print("warning: this embedeval's eval has no --skip-alignment; the alignment stage runs "
              "(it encodes the test split's positive views too)", file=sys.stderr)

    work = pathlib.Path(tempfile.mkdtemp(prefix="embedeval-e2e-"))
    server = None
    try:
        model, data = work / "resnet18.onnx", work / "cifar"
        subprocess.run([py, HERE / "make_resnet18.py", model], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([py, HERE / "make_cifar.py", data, "--train", str(args.train), "--test", str(args.test)],
                       check=True, stdout=subprocess.DEVNULL)

        server = Server(binary, work, args.serve_flag).start()
        started = time.perf_counter()
        server.wait_healthy()
        ready_s = time.perf_counter() - started
        add_s, _ = timed(server.client("datasets", "add", "cifar", data), cwd=ROOT)
        time.sleep(0.5)
        idle_empty = rss(server.pid)
        register_s, _ = timed(server.client("models", "add", "resnet18", "--onnx", model, "--loss", "infonce",
                                            "--tau", "0.2", "--preset", "cifar10"), cwd=ROOT)
        time.sleep(0.5)
        idle = rss(server.pid)

        with RssSampler(server.pid) as sampler:
            cold_s, cold = run_eval(server, "resnet18", skip_alignment)
        hwm = (proc_status(server.pid) or {}).get("VmHWM")
        peak = max(v for v in (sampler.peak, hwm) if v is not None)
        time.sleep(args.after_wait)
        after = rss(server.pid)

        cached_s, cached = run_eval(server, "resnet18", skip_alignment)
        after_cached = rss(server.pid)

        python_s, p = timed([py, HERE / "pipeline.py", model, data])
        python = parse_json(p.stdout)

        rows, agree = compare(cold, python)
        cached_rows, cached_agree = compare(cached, python)
        summary = dict(
            config=dict(train=args.train, test=args.test, model="ResNet-18 CIFAR (make_resnet18.py)",
                        model_bytes=model.stat().st_size, loss="infonce", tau=0.2, preset="cifar10",
                        skip_alignment=skip_alignment, embedeval=str(binary), cpus=os.cpu_count()),
            seconds=dict(embedeval_cold=cold_s, embedeval_cached=cached_s, python=python_s,
                         server_ready=ready_s, dataset_add=add_s, model_add=register_s),
            ratio_python_over_cold=python_s / cold_s,
            ratio_python_over_cached=python_s / cached_s,
            rss_mib=dict(idle_before_model=idle_empty, idle=idle, peak=peak, peak_sampled=sampler.peak, hwm=hwm, after=after,
                         after_cached=after_cached, samples=len(sampler.samples),
                         python_peak=python.get("peak_rss_mib")),
            embedeval_timings=dict(cold=cold.get("timings"), cached=cached.get("timings")),
            python_timings=python.get("timings"),
            comparison=rows, agree=agree, cached_agrees=cached_agree,
            execution_provider=cold.get("execution_provider"),
            python_versions=python.get("versions"),
        )
        summary["markdown"] = markdown_row(summary)
    except BaseException:
        if server is not None:
            print(f"server log ({server.log_path}):\n{server.log_tail()}", file=sys.stderr)
            args.keep = True
        raise
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary["server_exit_code"] = server.exit_code
    LAST.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    summary["machine"] = where.describe()
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print()
    print(where.line())
    print("| model, data | embedeval cold | cached | python | ratio | idle RSS | peak RSS | after RSS | agree |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(summary["markdown"])
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
