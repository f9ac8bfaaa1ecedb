"""`--follow`: watch the registry's tags and switch to a stage's new version without a pause.

Every interval the server resolves its `models:/` URI again (reading the local Git tags, so
a `gitml pull` or `git fetch --tags` is what brings a promotion in). When the version changed,
the new one is loaded in a thread beside the old one, which keeps serving; then one
assignment makes the next model call use the new one. No request is dropped or refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gitml.serving.loading import ModelRef, resolve_ref

__all__ = ["follow", "poll_once"]

log = logging.getLogger("gitml.serving")


async def poll_once(state: Any) -> bool:
    """Resolve once and switch if the version moved; True when it switched."""
    current = state.current
    if current is None:
        return False
    ref: ModelRef = await asyncio.to_thread(resolve_ref, state.options.ref.uri)
    if ref.version == current.ref.version and ref.source == current.ref.source:
        return False
    loaded = await asyncio.to_thread(state.load, ref)
    state.switch(loaded)
    state.metrics.switches += 1
    log.warning(
        "gitml: switched %s from version %s to %s", ref.uri, current.ref.version, ref.version
    )
    return True


async def follow(state: Any) -> None:
    """Poll forever (cancelled with the server); failures keep the current model serving."""
    interval = max(0.2, float(state.options.follow_interval_s))
    while True:
        await asyncio.sleep(interval)
        try:
            await poll_once(state)
            state.follow_error = None
        except Exception as e:  # a stage emptied or a broken version: keep serving, say why
            message = f"--follow: {type(e).__name__}: {e}"
            if getattr(state, "follow_error", None) != message:
                log.warning(
                    "gitml: %s (still serving version %s)", message, state.current.ref.version
                )
            state.follow_error = message
