# Sourced by the busybox group scripts. Environment:
#   RUN      the emulator command prefix (tsvm exec ... or qemu-riscv64 ...)
#   BUSYBOX  host path of the riscv64 busybox binary
#   APPLETS  file to which every applet name used is appended
# The working directory holds the prepared input files.
set -u

# bb APPLET ARGS...: run one busybox applet under the emulator.
bb() {
  echo "$1" >> "$APPLETS"
  $RUN "$BUSYBOX" "$@"
}

# run APPLET ARGS...: a header line, the applet's stdout, its exit status.
run() {
  echo "## $*"
  bb "$@"
  echo "## status=$?"
}

# save FILE APPLET ARGS...: like run, but the applet's stdout goes to FILE.
save() {
  local out=$1
  shift
  echo "## $* > $out"
  bb "$@" > "$out"
  echo "## status=$?"
}
