#!/usr/bin/env bash
# Prepare the TT-Metal runtime used by the prebuilt ttnn wheel on this machine.
#   With Tenstorrent hardware (/dev/tenstorrent) or a real sfpi toolchain: check it and report.
#   Without: set up mock-cluster support (see models/common/mock_device/README.md):
#     - Debian binutils-riscv64-unknown-elf (the shim links ELF stubs with it),
#     - build/mock_sfpi: our riscv-tt-elf-g++ shim + entry stub, linked into ttnn by create_venv.sh,
#     - the JIT kernel cache (build/tt-metal-cache) cleared whenever the shim changes.
# Options:
#   -c, --clean     also clear the JIT kernel cache and rebuild build/mock_sfpi from scratch
#   --development   accepted for compatibility with upstream's build_metal.sh; the prebuilt wheel has no
#                   separate development build, so it changes nothing here
set -euo pipefail
cd "$(dirname "$0")"
readonly REPO="$PWD"
readonly MOCK_SRC="$REPO/models/common/mock_device"
readonly MOCK_SFPI="$REPO/build/mock_sfpi"
readonly JIT_CACHE="$REPO/build/tt-metal-cache"

clean=0
for arg in "$@"; do
  case "$arg" in
    -c|--clean) clean=1 ;;
    --development) ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build_metal.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

if [ -e /dev/tenstorrent ]; then
  echo "build_metal.sh: Tenstorrent device(s) found: $(ls /dev/tenstorrent | tr '\n' ' ')"
  if [ -x /opt/tenstorrent/sfpi/compiler/bin/riscv-tt-elf-g++ ]; then
    echo "build_metal.sh: sfpi toolchain: $(/opt/tenstorrent/sfpi/compiler/bin/riscv-tt-elf-g++ --version | head -1)"
  else
    echo "build_metal.sh: no sfpi toolchain at /opt/tenstorrent/sfpi; ttnn uses <ttnn>/runtime/sfpi if the wheel has one" >&2
  fi
  [ "$clean" = 1 ] && rm -rf "$JIT_CACHE" && echo "build_metal.sh: cleared $JIT_CACHE"
  exit 0
fi

echo "build_metal.sh: no Tenstorrent device here: setting up the mock cluster (ops validate and dispatch, read-back is zeros)"

if ! command -v riscv64-unknown-elf-ld >/dev/null 2>&1 || ! command -v riscv64-unknown-elf-as >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "build_metal.sh: riscv64-unknown-elf binutils are missing and apt-get is unavailable." >&2
    echo "  Install GNU binutils for riscv64-unknown-elf (riscv64-unknown-elf-as/-ld) by other means and re-run." >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "build_metal.sh: installing binutils-riscv64-unknown-elf (Debian)"
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq binutils-riscv64-unknown-elf; } >/dev/null; then
    echo "build_metal.sh: apt-get could not install binutils-riscv64-unknown-elf; install it and re-run." >&2
    exit 1
  fi
fi

shim_hash="$(cat "$MOCK_SRC/riscv-tt-elf-g++" "$MOCK_SRC/stub.s" | sha256sum | cut -d' ' -f1)"
if [ "$clean" = 1 ] || [ "$(cat "$MOCK_SFPI/.shim-hash" 2>/dev/null)" != "$shim_hash" ]; then
  rm -rf "$MOCK_SFPI" "$JIT_CACHE"
  echo "build_metal.sh: cleared the JIT kernel cache ($JIT_CACHE): the shim is new or changed, or -c was given"
fi
mkdir -p "$MOCK_SFPI/compiler/bin" "$JIT_CACHE"
install -m 755 "$MOCK_SRC/riscv-tt-elf-g++" "$MOCK_SFPI/compiler/bin/riscv-tt-elf-g++"
riscv64-unknown-elf-as -march=rv32i -mabi=ilp32 -o "$MOCK_SFPI/stub.o" "$MOCK_SRC/stub.s"
echo "$shim_hash" > "$MOCK_SFPI/.shim-hash"
echo "build_metal.sh: mock sfpi toolchain in $MOCK_SFPI ($("$MOCK_SFPI/compiler/bin/riscv-tt-elf-g++" --version))"
echo "build_metal.sh: cluster descriptors: $(cd "$MOCK_SRC/clusters" && ls *.yaml | tr '\n' ' ')(models/common/mock_device/clusters)"
bash "$MOCK_SRC/link_sfpi.sh" "$REPO/python_env/bin/python"
echo "build_metal.sh: done"
