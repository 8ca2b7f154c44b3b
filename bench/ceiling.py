"""The ceiling the new-engine row is compared with: Litestar answering a chat POST in-process with
a fixed reply (no Redis, no engine), under the same uvicorn settings as the gateway.

    python -m bench.ceiling PORT [httptools|gateway]

`gateway` serves it under the gateway's own protocol (`proxy.GatewayHttpProtocol`: header
limits and read timeouts, JSON pre-app answers); the two rows side by side are its cost."""

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


def main() -> None:
    import sys  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from proxy import GatewayHttpProtocol  # noqa: PLC0415

    port, protocol = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "httptools"
    uvicorn.run(
        app,
        port=port,
        http=GatewayHttpProtocol if protocol == "gateway" else "httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        limit_concurrency=2048,
    )


if __name__ == "__main__":
    main()
