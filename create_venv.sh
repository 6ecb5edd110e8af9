#!/usr/bin/env bash
# Create (or refresh) python_env/: Python 3.12 + the pinned packages in requirements.txt + this project (editable).
# Safe and fast to re-run: packages are only re-installed when requirements.txt or pyproject.toml changed.
#   PYTHON=/path/to/python3.12 ./create_venv.sh   use this interpreter
#   ./create_venv.sh --force                      rebuild python_env/ from scratch
set -euo pipefail
cd "$(dirname "$0")"
readonly ENV_DIR=python_env
readonly WANT_VERSION="3.12"   # ttnn 0.81.1 ships cp310 and cp312 wheels only

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "create_venv.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

is_wanted_python() {
  [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$WANT_VERSION" ]
}

find_python() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  command -v "python$WANT_VERSION" >/dev/null 2>&1 && candidates+=("$(command -v "python$WANT_VERSION")")
  if command -v pyenv >/dev/null 2>&1; then
    local root; root="$(pyenv root)"
    for p in "$root"/versions/"$WANT_VERSION"*/bin/python"$WANT_VERSION"; do candidates+=("$p"); done
  fi
  command -v python3 >/dev/null 2>&1 && candidates+=("$(command -v python3)")
  for p in "${candidates[@]}"; do
    if is_wanted_python "$p"; then echo "$p"; return 0; fi
  done
  return 1
}

if [ "$force" = 1 ]; then rm -rf "$ENV_DIR"; fi
if [ -d "$ENV_DIR" ] && ! is_wanted_python "$ENV_DIR/bin/python"; then
  echo "create_venv.sh: $ENV_DIR/ is not a Python $WANT_VERSION environment; rebuilding it"
  rm -rf "$ENV_DIR"
fi

if [ ! -d "$ENV_DIR" ]; then
  if ! py="$(find_python)"; then
    cat >&2 <<MSG
create_venv.sh: no Python $WANT_VERSION interpreter found (looked at \$PYTHON, python$WANT_VERSION on PATH,
pyenv versions and python3). ttnn 0.81.1 needs CPython $WANT_VERSION. Install one, e.g.
  pyenv install $WANT_VERSION        or        apt-get install python$WANT_VERSION python$WANT_VERSION-venv
and run ./create_venv.sh again (or point PYTHON at it: PYTHON=/path/to/python$WANT_VERSION ./create_venv.sh).
MSG
    exit 1
  fi
  echo "create_venv.sh: creating $ENV_DIR/ with $py"
  "$py" -m venv "$ENV_DIR"
fi

stamp="$ENV_DIR/.tttv2-installed"
want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "create_venv.sh: installing pinned packages (requirements.txt) and this project (editable)"
  "$ENV_DIR/bin/python" -m pip install --quiet --upgrade pip
  "$ENV_DIR/bin/python" -m pip install --quiet -r requirements.txt
  "$ENV_DIR/bin/python" -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
else
  echo "create_venv.sh: $ENV_DIR/ is up to date"
fi

# Without Tenstorrent hardware, build_metal.sh prepares a mock sfpi toolchain; hook it into ttnn.
bash models/common/mock_device/link_sfpi.sh "$ENV_DIR/bin/python"
echo "create_venv.sh: done ($("$ENV_DIR/bin/python" --version), ttnn $("$ENV_DIR/bin/python" -c 'import importlib.metadata as m; print(m.version("ttnn"))'))"
