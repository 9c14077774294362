"""Regenerates the gRPC stubs of the embedeval contract.

    python tools/generate.py [OUT_DIR]

Runs grpcio-tools' protoc over ``<repo>/proto/embedeval/v1/*.proto`` (Python
messages, ``.pyi`` type stubs and gRPC stubs), flattens ``embedeval/v1/`` into
OUT_DIR (default: ``src/embedeval/_proto``) and makes the imports between the
generated modules package-relative, so they live inside ``embedeval._proto``
without an ``embedeval.v1`` package on the path. The output is a pure function
of the .proto files and the grpcio-tools version: ``tests/test_generated.py``
regenerates into a temporary folder and compares byte for byte.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

HERE = Path(__file__).resolve().parent
CLIENT_ROOT = HERE.parent
PROTO_ROOT = CLIENT_ROOT.parent.parent / "proto"
PACKAGE_DIR = CLIENT_ROOT / "src" / "embedeval" / "_proto"
PROTO_PACKAGE = "embedeval/v1"
# Where the modules live once installed (recorded as the messages' __module__).
TARGET_MODULE = "embedeval._proto"

_IMPORT = re.compile(r"^from embedeval\.v1 import (\w+_pb2) as ", re.MULTILINE)
_MODULE_NAME = re.compile(r"'embedeval\.v1\.(\w+_pb2)'")


def is_generated(path: Path) -> bool:
    """Whether `path` is a file this script writes (and so may replace)."""
    return path.is_file() and re.fullmatch(r"\w+_pb2(_grpc)?\.pyi?", path.name) is not None


def fix(text: str) -> str:
    """Package-relative imports and module names in one generated file."""
    text = _IMPORT.sub(r"from . import \1 as ", text)
    return _MODULE_NAME.sub(lambda m: f"'{TARGET_MODULE}.{m.group(1)}'", text)


def generate(out_dir: Path) -> List[Path]:
    """Writes the stubs into `out_dir` (replacing earlier ones); returns them."""
    protos = sorted(p.relative_to(PROTO_ROOT).as_posix() for p in (PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PROTO_PACKAGE}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as raw_dir:
        raw = Path(raw_dir)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{PROTO_ROOT}",
                f"--python_out={raw}",
                f"--pyi_out={raw}",
                f"--grpc_python_out={raw}",
                *protos,
            ],
            cwd=PROTO_ROOT,
            check=True,
        )
        for stale in out_dir.iterdir():
            if is_generated(stale):
                stale.unlink()
        written = []
        for src in sorted((raw / PROTO_PACKAGE).iterdir()):
            dst = out_dir / src.name
            dst.write_bytes(fix(src.read_text(encoding="utf-8")).encode("utf-8"))
            written.append(dst)
    return written


def main(argv: List[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else PACKAGE_DIR
    for path in generate(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
