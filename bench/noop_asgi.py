"""The practical ceiling of the serving benchmark: an ASGI app that reads the body and answers
a fixed prediction, on the scoring server's stack (uvicorn, uvloop, httptools), no model.

Usage: python bench/noop_asgi.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app"]

_BODY = b'{"predictions": [0]}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request to its end, answer the same small JSON."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning", lifespan="off")  # fmt: skip
