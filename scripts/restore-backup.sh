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
  # the newest by its authenticated time, not the file's modification time anyone can touch
  file="$(.venv/bin/chatctl backup newest backups)" || { echo "error: pass a file" >&2; exit 2; }
else
  shift
fi
.venv/bin/chatctl backup verify "$file"
exec .venv/bin/chatctl backup restore "$file" "$@"
