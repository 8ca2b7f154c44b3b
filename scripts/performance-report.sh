#!/usr/bin/env bash
# Runbook: ./scripts/performance-report.sh -> latency, error rates and lead submission rate from
# logs/application.log against the runbook's targets (default: the last 7 days).
if [ $# -eq 0 ]; then set -- --since 7d; fi
exec "$(dirname "$0")/../.venv/bin/chatctl" report performance "$@"
