"""Where a benchmark ran: the processor's model and the flags that decide the
exact kNN's engine, and the engine a server started in this environment runs
for a large search (EMBEDEVAL_KNN_ENGINE when set, else the first guess of
``index::Engine::choose_with``: bf16 with AVX-512 F and BF16, vnni with
AVX-512 F and VNNI, int8 with AVX2 and FMA, else f32; the server then times
each engine it can run once per class of searches and keeps the fastest)."""
import os
from pathlib import Path
from typing import Dict, List

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx_vnni", "avx512_vnni")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def flags() -> List[str]:
    """The flags of FLAGS this processor has."""
    words = set(_cpuinfo().split())
    return [f for f in FLAGS if f in words]


def model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def knn_engine() -> str:
    forced = os.environ.get("EMBEDEVAL_KNN_ENGINE", "auto")
    if forced not in ("", "auto"):
        return f"{forced} (EMBEDEVAL_KNN_ENGINE)"
    have = set(flags())
    if {"avx512f", "avx512_bf16"} <= have:
        fastest = "bf16"
    elif {"avx512f", "avx512_vnni"} <= have:
        fastest = "vnni up to 192 dimensions, else f32"
    elif {"avx2", "fma"} <= have:
        fastest = "int8 up to 192 dimensions, else f32"
    else:
        fastest = "f32"
    return (f"auto: first guess {fastest} for large searches, then the fastest measured; "
            "f32 for small ones")


def describe() -> Dict[str, str]:
    return dict(processor=model(), flags=" ".join(flags()), knn_engine=knn_engine())


def line() -> str:
    d = describe()
    return f"processor: {d['processor']} ({d['flags']}); exact kNN engine: {d['knn_engine']}"
