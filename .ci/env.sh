# Sourced by .ci/book and .ci/test: creates the virtual environment once (re-created when
# pyproject.toml changes), puts it first on PATH and keeps every model hub offline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
VENV="${IAA_VENV:-$PWD/.venv}"
stamp="$VENV/.pyproject.sha256"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "Python 3.11 is required (found $("$PYTHON" --version)); set PYTHON=/path/to/python3.11" >&2; exit 1; }
  echo "setting up $VENV (first run: a few minutes) ..."
  start=$SECONDS
  "$PYTHON" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
  echo "$wanted" > "$stamp"
  echo "environment ready in $((SECONDS - start)) s"
fi
export PATH="$VENV/bin:$PATH"
