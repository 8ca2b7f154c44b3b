"""The ceiling the new-engine row is compared with: Litestar answering a chat POST in-process with
a fixed reply (no Redis, no engine), under the same uvicorn settings as the gateway."""

from __future__ import annotations

from litestar import Litestar, Request, post

REPLY = (
    b'{"sessionId":"abcdefgh12345678abcdefgh","reply":"May I have your full name (first and '
    b'last)?","category":"personal_injury","step":"name","done":false,"collected":[]}'
)


@post("/api/chat", status_code=200)
async def chat(request: Request) -> bytes:  # type: ignore[type-arg]
    await request.body()
    return REPLY


app = Litestar([chat], openapi_config=None, logging_config=None)
