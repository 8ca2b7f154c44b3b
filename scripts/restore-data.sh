#!/usr/bin/env bash
# Runbook: ./scripts/restore-data.sh: the same as restore-backup.sh (sessions and lead keys).
exec "$(dirname "$0")/restore-backup.sh" "$@"
