#!/usr/bin/env bash
# Installs what cargo cannot fetch: the wasm32-wasip2 Rust target, Debian's clang 19 with
# wasi-libc for C guests, and Debian's nats-server (JetStream) for the scale-out tests.
# (JavaScript and Python toolchains come from the npm registry and PyPI; `make
# lang-guests` installs them into the project: examples/js/node_modules and target/pyvenv.)
#
# With --browser: Debian's chromium and chromium-driver instead, for the web view's
# browser tests (`make test` needs them; the demo does not).
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ "${1:-}" = "--browser" ]; then
  if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    $SUDO apt-get update -q || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
  fi
  exit 0
fi

rustup target add wasm32-wasip2
if ! command -v clang-19 >/dev/null || [ ! -d /usr/lib/wasm32-wasi ] || ! [ -x /usr/sbin/nats-server ]; then
  $SUDO apt-get update -q || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32 nats-server
fi
