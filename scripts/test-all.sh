#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the Debian packages the
# tests use (cross compilers and QEMU, the reference oracle), the npm
# dependencies, then type-checks, lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross binutils-riscv64-linux-gnu
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  qemu-user qemu-system-misc qemu-utils opensbi device-tree-compiler passt python3
)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test-all: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

echo "test-all: type check and build"
npx tsc -p tsconfig.json
echo "test-all: lint"
npx eslint src tests bench
echo "test-all: tests"
mapfile -t files < <(find dist/tests -name '*.test.js' | sort)
node --test --test-concurrency=2 --test-timeout=900000 "${files[@]}"
