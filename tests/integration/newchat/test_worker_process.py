"""Real `chatctl worker` processes: killed mid-submission (the lead is submitted exactly once),
stopped cleanly, and facing a partner that echoes leads back (no personal data logged)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from common import keys
from newchat import load_settings, provide_services
from tests.support.fake_leadprosper import FakeLeadProsper
from tests.support.leads import make_lead

CHATCTL = str(Path(sys.executable).with_name("chatctl"))


@pytest.fixture
def fake_leadprosper() -> Iterator[FakeLeadProsper]:
    fake = FakeLeadProsper()
    yield fake
    fake.stop()


@pytest.mark.slow
async def test_worker_killed_mid_submission_leads_to_exactly_one_accepted_submission(
    base_env: dict[str, str], redis: Redis, fake_leadprosper: FakeLeadProsper
) -> None:
    env = base_env | {"LEADPROSPER_API_URL": fake_leadprosper.url, "LEAD_VISIBILITY_TIMEOUT": "1"}
    async with httpx.AsyncClient() as http:
        engine = provide_services(load_settings(env), redis, http)
        lead_id = await engine.queue.enqueue(make_lead())

        fake_leadprosper.hold.set()
        worker = subprocess.Popen(
            [CHATCTL, "worker"],
            env=os.environ | env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert await asyncio.to_thread(fake_leadprosper.got_request.wait, 20)
            assert await redis.hexists(keys.LEAD_PROCESSING, lead_id)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        fake_leadprosper.hold.clear()
        fake_leadprosper.release.set()
        assert await redis.hexists(keys.LEAD_PROCESSING, lead_id)  # left behind, not lost

        await asyncio.sleep(1.2)  # past the visibility timeout
        summary = await engine.worker().run(burst=True)

    assert summary.requeued_stuck == 1
    assert list(fake_leadprosper.accepted) == [lead_id]
    assert await engine.queue.is_done(lead_id)
    assert await redis.hlen(keys.LEAD_PROCESSING) == 0
    assert await redis.llen(keys.LEAD_QUEUE) == 0


@pytest.mark.slow
async def test_worker_exits_cleanly_on_sigterm(base_env: dict[str, str], redis: Redis) -> None:
    worker = subprocess.Popen(
        [CHATCTL, "worker"],
        env=os.environ | base_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if await redis.keys(keys.WORKER_HEARTBEAT_PREFIX + "*"):
            break
        await asyncio.sleep(0.05)
    assert await redis.keys(keys.WORKER_HEARTBEAT_PREFIX + "*")  # it said it was alive
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    assert not await redis.keys(keys.WORKER_HEARTBEAT_PREFIX + "*")  # and no longer is


@pytest.mark.slow
async def test_a_partner_echoing_leads_puts_no_personal_data_in_any_log_line(
    base_env: dict[str, str], redis: Redis, fake_leadprosper: FakeLeadProsper, tmp_path: Path
) -> None:
    """LeadProsper's error messages echoed the lead: 1,912 log lines with names, phones and
    emails for 956 leads (issue 18). The worker runs as a process; its log file and its stdout
    are searched for every value of every lead, in every punctuation a phone number takes."""
    fake_leadprosper.echo = True
    log_file = tmp_path / "worker.log"
    env = base_env | {"LEADPROSPER_API_URL": fake_leadprosper.url, "LOG_FILE": str(log_file)}
    people = [
        (
            "Marisol",
            "Quintanilla",
            "marisol.q@example.org",
            "5558675309",
            "73301",
            "custody of Xiomara",
        ),
        (
            "Thaddeus",
            "Okonkwo",
            "t.okonkwo@example.net",
            "2125550147",
            "10027",
            "wage theft at Brightline",
        ),
        (
            "Ingrid",
            "Vasquez-Lund",
            "ingrid@example.com",
            "3105550199",
            "90405",
            "landlord kept deposit",
        ),
    ]
    async with httpx.AsyncClient() as http:
        engine = provide_services(load_settings(env), redis, http)
        for n, (first, last, email, phone, zip_code, description) in enumerate(people):
            lead = make_lead(n)
            lead = msgspec.structs.replace(
                lead,
                first_name=first,
                last_name=last,
                email=email,
                phone=phone,
                zip=zip_code,
                description=description,
            )
            await engine.queue.enqueue(lead)
    worker = await asyncio.to_thread(
        subprocess.run,
        [CHATCTL, "worker", "--burst"],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr
    assert len(fake_leadprosper.received) == 3  # every lead reached the partner and was echoed
    logged = log_file.read_text() + worker.stdout + worker.stderr
    assert "Lead submission" in logged
    for person in people:
        for value in person:
            assert value.lower() not in logged.lower(), value
        phone = person[3]
        for shape in (
            f"({phone[:3]}) {phone[3:6]}-{phone[6:]}",
            f"{phone[:3]}-{phone[3:6]}-{phone[6:]}",
        ):
            assert shape not in logged
