#!/usr/bin/env bash
# Runbook: ./scripts/health-check.sh -> gateway, Redis, legacy, OpenAI, LeadProsper, queue, worker.
# Exit status 0 only when everything is ok.
exec "$(dirname "$0")/../.venv/bin/chatctl" health "$@"
