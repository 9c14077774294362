#!/usr/bin/env bash
# Regenerates the committed gRPC stubs in src/embedeval/_proto/ from
# <repo>/proto/embedeval/v1/*.proto with grpcio-tools (the version pinned in
# pyproject.toml's test extra; clients/python/setup-venv.sh installs it).
#
#   clients/python/generate.sh            # uses clients/python/.venv if there
#   PYTHON=python3 clients/python/generate.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$here/.venv/bin/python" ]; then
        python="$here/.venv/bin/python"
    else
        python=python3
    fi
fi
exec "$python" "$here/tools/generate.py" "$here/src/embedeval/_proto"
