"""The version is written once, in pyproject.toml; the package reads it."""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import embedeval
from embedeval import _toml

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_version_is_the_one_of_pyproject():
    written = _toml.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
    assert embedeval.__version__ == written == version("embedeval-client")
    # No second copy in the package's sources.
    for path in Path(embedeval.__file__).parent.glob("*.py"):
        assert f'"{written}"' not in path.read_text(encoding="utf-8"), path
