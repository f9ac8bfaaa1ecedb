"""One sticky comment per pull/merge request: found by a hidden marker, updated in place.

The rules, each closing a hole other tools have:
- every page of the thread is read (100 a page), so a long discussion hides nothing;
- only the token user's comments that start with the marker count as gitml's;
- an unchanged body costs one list call and no write;
- concurrent jobs end with exactly one comment: after creating, the job lists again, the
  lowest id is kept (and given this job's body), every other marked comment is deleted;
- a body over the platform's limit is cut, with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitml.ci.platforms import Comment, Thread

__all__ = ["MARKER", "CommentResult", "fit_body", "upsert_comment"]

MARKER = "<!-- gitml:ci-comment (updated in place by `gitml ci comment`; do not edit) -->"


@dataclass(frozen=True)
class CommentResult:
    """What `upsert_comment` did: "created", "updated" or "unchanged", the id kept, and more."""

    action: str
    comment_id: int
    truncated: bool
    deleted: tuple[int, ...] = ()


def fit_body(body: str, limit: int, platform: str) -> tuple[str, bool]:
    """The marker and `body`, cut to `limit` characters with a note when longer."""
    full = f"{MARKER}\n{body}"
    if len(full) <= limit:
        return full, False
    note = (
        f"\n\n> [!NOTE]\n> This report was cut to {platform}'s limit of {limit:,} characters; "
        "the whole report is in the job's log.\n"
    )
    room = limit - len(note)
    cut = full[:room]
    line_end = cut.rfind("\n")
    if line_end > room * 0.9:  # end on a whole line when one ends near the limit
        cut = cut[:line_end]
    return cut + note, True


def _ours(comments: list[Comment], thread: Thread, me: str | None = None) -> list[Comment]:
    marked = [c for c in comments if c.body.startswith(MARKER)]
    if not marked:
        return []
    if me is None:
        me = thread.me()  # asked only when a marked comment exists
    return sorted((c for c in marked if c.author == me), key=lambda c: c.id)


def _tidy(
    thread: Thread, keep: Comment, mine: list[Comment], body: str
) -> tuple[bool, tuple[int, ...]]:
    """Give `keep` the body (when it differs) and delete every other comment of ours."""
    wrote = False
    if keep.body != body:
        thread.update(keep.id, body)
        wrote = True
    extra = tuple(c.id for c in mine if c.id != keep.id)
    for cid in extra:
        thread.delete(cid)
    return wrote, extra


def upsert_comment(thread: Thread, body: str) -> CommentResult:
    """Create or update gitml's one comment on the thread with `body` (marker added here)."""
    text, truncated = fit_body(body, thread.limit, thread.name)
    mine = _ours(thread.list_comments(), thread)
    if mine:
        wrote, deleted = _tidy(thread, mine[0], mine, text)
        return CommentResult("updated" if wrote else "unchanged", mine[0].id, truncated, deleted)
    created = thread.create(text)
    # Another job may have created its comment meanwhile: list again, keep the lowest id.
    # The new comment's author is the token's user, whatever kind of token it is.
    mine = _ours(thread.list_comments(), thread, created.author)
    if not any(c.id == created.id for c in mine):
        mine = sorted([*mine, created], key=lambda c: c.id)
    keep = mine[0]
    if keep.id == created.id:
        _, deleted = _tidy(thread, created, mine, text)
        return CommentResult("created", created.id, truncated, deleted)
    _, deleted = _tidy(thread, keep, mine, text)
    return CommentResult("updated", keep.id, truncated, deleted)
