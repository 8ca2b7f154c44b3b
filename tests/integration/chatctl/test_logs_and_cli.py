"""Logs carry the runbook's phrases and no personal data; chatctl commands work end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from typer.testing import CliRunner

import chatctl
from common import keys
from tests.conftest import LEADPROSPER_URL
from tests.integration.conftest import say
from tests.support.processes import free_port

CHATCTL = str(Path(sys.executable).with_name("chatctl"))


async def test_log_lines_have_runbook_phrases_and_no_personal_data(
    client: AsyncTestClient,
    base_env: dict[str, str],
    outside: respx.MockRouter,  # type: ignore[type-arg]
) -> None:
    refusal = "no buyer for Zelda Quixote, (555) 201-7788, zelda.q@example.com"  # echoed back
    outside.post(LEADPROSPER_URL).respond(200, json={"status": "ERROR", "message": refusal})
    await say(client, "Tuve un accidente de carro en Houston")
    await say(client, "I'm Zelda Quixote, 555-201-7788, zelda.q@example.com, 90210")
    await say(client, "sí")
    await client.post("/api/cron/process-leads", headers={"x-cron-secret": "test-cron-secret"})
    text = Path(base_env["LOG_FILE"]).read_text()
    for phrase in ("Category detection", "Lead submission", "Performance:", '"level":"ERROR"'):
        assert phrase in text
    for secret in (
        "Zelda",
        "Quixote",
        "555-201-7788",
        "5552017788",
        "zelda.q@",
        "Houston",
        "accidente",
        "test-cron-secret",
        "lp-key",
    ):
        assert secret not in text
    for line in text.splitlines():
        json.loads(line)  # every line is one JSON object


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHATCTL, *args],
        env=os.environ | env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_detect_prints_one_json_object_per_input_line(base_env: dict[str, str]) -> None:
    result = run(["detect"], base_env, "I got a DUI\n\nmi esposo me quiere deportar\nhello\n")
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["category"] for line in lines] == ["dui", "immigration", "general"]
    assert all(line["method"] == "offline" and 0 <= line["confidence"] <= 1 for line in lines)


async def test_queue_commands(base_env: dict[str, str], redis: Redis) -> None:
    await redis.hset(
        keys.LEAD_FAILED,
        "abc",
        json.dumps(
            {
                "failed_at": 1.0,
                "error": "x",
                "lead": {
                    "id": "abc",
                    "idempotency_key": "k",
                    "first_name": "A",
                    "last_name": "B",
                    "email": "a@b.co",
                    "phone": "5552017788",
                    "zip": "90210",
                    "category": "dui",
                },
            }
        ),
    )
    status = run(["queue", "status", "--json"], base_env)
    assert status.returncode == 0
    assert json.loads(status.stdout)["failed"] == 1
    dry = run(["queue", "retry-failed", "--dry-run"], base_env)
    assert dry.returncode == 0
    assert await redis.hlen(keys.LEAD_FAILED) == 1  # dry run changed nothing
    assert run(["queue", "retry-failed"], base_env).returncode == 0
    assert (await redis.hlen(keys.LEAD_FAILED), await redis.llen(keys.LEAD_QUEUE)) == (0, 1)
    lead = json.dumps({"id": "stuck", "idempotency_key": "k2", "first_name": "A", "last_name": "B",
                       "email": "a@b.co", "phone": "5552017788", "zip": "90210", "category": "dui"})  # fmt: skip
    await redis.hset(
        keys.LEAD_PROCESSING, "stuck", f'{{"claimed_at":1.0,"worker":"gone","lead":{lead}}}'
    )
    await redis.hset(
        keys.LEAD_PROCESSING, "fresh", f'{{"claimed_at":{time.time()},"worker":"w","lead":{lead}}}'
    )
    dry = run(["queue", "requeue-stuck", "--dry-run"], base_env)
    assert dry.returncode == 0
    assert "1 lead(s)" in dry.stdout
    assert await redis.hlen(keys.LEAD_PROCESSING) == 2  # the dry run moved nothing
    moved = run(["queue", "requeue-stuck"], base_env)
    assert moved.returncode == 0
    assert "re-queued 1 stuck lead(s)" in moved.stdout
    assert await redis.hkeys(keys.LEAD_PROCESSING) == [b"fresh"]  # a live claim stays
    assert await redis.llen(keys.LEAD_QUEUE) == 2


def test_health_exit_codes(base_env: dict[str, str]) -> None:
    degraded = run(["health", "--json"], base_env)  # no worker heartbeat
    assert degraded.returncode == 1
    assert "worker" in json.loads(degraded.stdout)["failing"]
    down = run(["health"], base_env | {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert down.returncode == 1
    assert "Redis unreachable" in down.stderr + down.stdout


def test_bad_settings_are_a_clear_usage_error(base_env: dict[str, str]) -> None:
    result = CliRunner().invoke(chatctl.app, ["queue", "status"], env=base_env | {"PORT": "many"})
    assert result.exit_code == 2
    assert "PORT" in result.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in (
        ["serve"],
        ["worker"],
        ["detect"],
        ["health"],
        ["stack"],
        ["queue", "status"],
        ["queue", "retry-failed"],
        ["queue", "requeue-stuck"],
        ["flags", "show"],
        ["flags", "set"],
        ["flags", "unset"],
        ["flags", "history"],
        ["flags", "token"],
    ):
        result = runner.invoke(chatctl.app, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage" in result.output
