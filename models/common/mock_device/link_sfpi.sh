#!/usr/bin/env bash
# Point ttnn's sfpi toolchain directory (<ttnn>/runtime/sfpi) at the mock toolchain that build_metal.sh made
# in build/mock_sfpi, unless ttnn already has a real one. Called by both build_metal.sh and create_venv.sh,
# so the two scripts work in either order. Usage: link_sfpi.sh PYTHON
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
python="$1"
mock_sfpi="$repo/build/mock_sfpi"

[ -x "$python" ] || exit 0   # no python_env yet: create_venv.sh will link later
ttnn_dir="$("$python" -c 'import importlib.util, os; s = importlib.util.find_spec("ttnn"); print(os.path.dirname(s.origin) if s else "")' 2>/dev/null || true)"
[ -n "$ttnn_dir" ] || exit 0  # ttnn not installed yet
target="$ttnn_dir/runtime/sfpi"

if [ -e "$target" ] && [ ! -L "$target" ]; then
  echo "link_sfpi: ttnn has its own sfpi toolchain at $target; leaving it alone"
elif [ -d "$mock_sfpi" ]; then
  mkdir -p "$ttnn_dir/runtime"
  ln -sfn "$mock_sfpi" "$target"
  echo "link_sfpi: ttnn uses the mock sfpi toolchain ($target -> $mock_sfpi)"
elif [ ! -e /dev/tenstorrent ] && [ ! -e /opt/tenstorrent/sfpi ]; then
  echo "link_sfpi: no sfpi toolchain and no Tenstorrent device: run ./build_metal.sh to set up the mock device" >&2
fi
