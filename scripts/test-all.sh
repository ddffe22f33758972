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
  docker-registry skopeo umoci apache2-utils openssl curl
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
mapfile -t files < <(find dist/tests -name '*.test.js' | sort)
# The suite runs three times: with the JIT at its defaults, with every
# block translated on first execution (threshold 0), and with the
# interpreter only. TSVM_JIT reaches tsvm processes directly and in-process
# VMs through the preloaded tests/helpers/jit-env.ts. TSVM_JIT_MODES picks
# a subset (e.g. TSVM_JIT_MODES=on).
export NODE_OPTIONS="--import=$PWD/dist/tests/helpers/jit-env.js ${NODE_OPTIONS:-}"
# Tests whose subject does not depend on the engine run in the first pass
# only: devices, QMP and the console on a booted guest, the CLI's errors,
# disk images, the archive and registry clients, the OCI image store and
# its interop with skopeo and umoci, the host's memory core, the layering
# rule, and everything under tests/host (the many-VM host, its API and
# CLI). The boots themselves, the CPU, the JIT and the guest programs run
# in every pass.
ONCE='/(host/[a-z0-9-]+|images/oci-[a-z]+|system/(virtio-[a-z]+|console|run-bad-input)|workloads/(debian-fetch|container-sandbox|rootfs-build|dropin|exec-tty|exec-publish)|unit/(container-exec-rule|runtime-control-protocol|bind-host-os|dropin-[a-z]+|pty|pty-vm|netns|netns-publish|netns-network|overlay-host-os|cpio|fdt|images|modules|qcow2|qmp|virtqueue|virtio-[a-z-]+|vm-lib|layering-lint|compiler-threads|frame-pool|p2m|page-sharing|host-swap|mempool-isolation|mempool-threads|frame-pool-runs|alloc-policy|activity|oci-[a-z]+|vm-agent-[a-z]+|net-switch|net-gateway|tcp-bridge|fs-late))\.test\.js$'
first=1
for mode in ${TSVM_JIT_MODES:-on 0 off}; do
  run=("${files[@]}")
  if [ "$first" -eq 0 ]; then
    mapfile -t run < <(printf '%s\n' "${files[@]}" | grep -Ev "$ONCE")
  fi
  first=0
  echo "test-all: tests with TSVM_JIT=$mode (${#run[@]} files)"
  # The timeout catches a hung file. The longest file, container-debian with an empty
  # ~/.cache/tsvm, builds the debian image (8 minutes alone, over 15 beside the other files).
  TSVM_JIT=$mode node --test --test-concurrency=2 --test-timeout=1800000 "${run[@]}"
done
