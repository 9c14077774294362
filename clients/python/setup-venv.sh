#!/usr/bin/env bash
# Creates clients/python/.venv (git-ignored) with the client installed
# editable and its test extra. Idempotent: a venv that already has the
# package and the test tools is left as it is.
#
#   clients/python/setup-venv.sh
#   clients/python/.venv/bin/pytest clients/python/tests -q
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi

# Installed already (and pyproject.toml unchanged since): nothing to do.
stamp="$venv/.embedeval-installed"
want="$(sha256sum "$here/pyproject.toml" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$venv/bin/python" -c 'import embedeval, grpc_tools, pytest, numpy, sklearn' 2>/dev/null; then
    exit 0
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$here[test]"
echo "$want" >"$stamp"
