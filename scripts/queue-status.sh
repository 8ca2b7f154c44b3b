#!/usr/bin/env bash
# Runbook: ./scripts/queue-status.sh -> queued / processing / stuck / retry / failed leads, workers.
exec "$(dirname "$0")/../.venv/bin/chatctl" queue status "$@"
