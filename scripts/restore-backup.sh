#!/usr/bin/env bash
# Runbook: ./scripts/restore-backup.sh [FILE] [--replace sessions|pins|PATTERN]... [--dry-run] [--json]
# Verifies, then restores a backup made by `chatctl backup create` (the newest in backups/ when no
# FILE is given). Leads are merged and never lost; live sessions and pins are kept unless
# --replace names them. Prints the plan first; never flushes Redis. Needs the key the backup was
# made with (BACKUP_KEY, or SESSION_SECRET it is derived from).
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
