#!/usr/bin/env bash
# Installs what the stack and the tests need on a fresh Debian machine; idempotent and quiet when
# everything is already there. Debian packages: redis-server (sessions, queue, flags), php-cli
# (the legacy stand-in), nginx (the site config and its tests), prometheus (promtool, for the alert
# rules' tests). With --bench also wrk and php-fpm (the benchmark's load tool and legacy); with
# --tests also postgresql and npm (the tests' real Unleash server: scripts/unleash-install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v php >/dev/null || need_apt+=(php-cli)
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v openssl >/dev/null || need_apt+=(openssl)  # the TLS test makes its own certificate
if [ "${1:-}" = "--bench" ]; then
  command -v wrk >/dev/null || need_apt+=(wrk)
  ls /usr/sbin/php-fpm* >/dev/null 2>&1 || need_apt+=(php-fpm)
fi
if [ "${1:-}" = "--tests" ]; then
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
  command -v npm >/dev/null || need_apt+=(npm)
fi
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # The Debian packages start system services we do not use; the stack runs its own.
  $SUDO systemctl disable --now redis-server nginx prometheus 'php*-fpm' postgresql >/dev/null 2>&1 || true
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -x .venv/bin/uv ] || [ "$(.venv/bin/uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  .venv/bin/pip install -q "uv==$UV_VERSION" 2>&1 | grep -v '^WARNING: Location' || true
fi
# --inexact keeps uv itself in the venv; --frozen installs exactly what uv.lock pins.
if [ "${1:-}" = "--bench" ]; then
  .venv/bin/uv sync --frozen --inexact --quiet --group bench  # bench/language.py's candidates
else
  .venv/bin/uv sync --frozen --inexact --quiet
fi
