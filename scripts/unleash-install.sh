#!/usr/bin/env bash
# Installs the tests' Unleash server (unleash-server 8.x and the Node 22 it needs, both from npm,
# pinned by tests/support/unleash/package-lock.json) outside the clone, once per lock file:
# ${CHAT_TEST_CACHE:-~/.cache/chat-migration}/unleash-<sha of the lock>/. Prints that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=tests/support/unleash
lock_sha=$(sha256sum "$source_dir/package-lock.json" | cut -c1-16)
target="${CHAT_TEST_CACHE:-$HOME/.cache/chat-migration}/unleash-$lock_sha"
if [ ! -f "$target/.installed" ]; then
  rm -rf "$target.partial"
  mkdir -p "$target.partial"
  cp "$source_dir/package.json" "$source_dir/package-lock.json" "$source_dir/server.js" "$target.partial/"
  echo "bootstrap: installing the tests' Unleash server into $target (npm ci)" >&2
  (cd "$target.partial" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$target.partial/.installed"
  rm -rf "$target"
  mv "$target.partial" "$target"
fi
cp "$source_dir/server.js" "$target/server.js"  # the script may change without the lock
echo "$target"
