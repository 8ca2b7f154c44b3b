#!/usr/bin/env bash
# Runbook: ./scripts/restore-backup.sh [FILE] [--replace] [--dry-run]
# Verifies, then restores a backup made by `chatctl backup create` (the newest in backups/ when no
# FILE is given). Refuses to overwrite live keys unless --replace; never flushes Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
file="${1:-}"
if [ -z "$file" ] || [ "${file#--}" != "$file" ]; then
  file="$(ls -1t backups/*.backup 2>/dev/null | head -n1 || true)"
  [ -n "$file" ] || { echo "error: no backups/*.backup found; pass a file" >&2; exit 2; }
else
  shift
fi
.venv/bin/chatctl backup verify "$file"
exec .venv/bin/chatctl backup restore "$file" "$@"
