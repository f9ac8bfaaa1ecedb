"""Git remotes named by users and settings: the one validator, so none parses as an option.

A remote comes from the command line, `GITML_REMOTE` or `git config gitml.remote` (a
repository's config may come from a shared template or a compromised CI variable). Git
would read `--upload-pack=<cmd>` in the remote's place as an option and run the command;
`ext::` remotes run commands by design. So: no leading `-`, no control characters, no
command-running transports, and a bare name must be a valid Git remote name. gitml also
passes `--` before the remote wherever Git accepts it.
"""

from __future__ import annotations

import re

from gitml.exceptions import InvalidParameterValue

__all__ = ["check_remote"]

# What Git refuses in a ref name component (git check-ref-format): here for a remote name.
_BAD_NAME = re.compile(r"\.\.|@\{|[\x00-\x20\x7f~^:?*\[\\]|^\.|\.lock$|\.$|^@$|//")
_COMMAND_TRANSPORTS = ("ext::", "fd::")


def check_remote(value: object, source: str = "remote") -> str:
    """`value` when it is safe to hand to git as a remote (a name, URL or path), else
    InvalidParameterValue naming where it came from (`source`)."""
    if not isinstance(value, str) or not value:
        raise InvalidParameterValue(f"{source}: a remote name or URL is required")
    shown = value if len(value) <= 80 else value[:77] + "..."
    if value.startswith("-"):
        raise InvalidParameterValue(f"{source}: {shown!r} is not a remote (it would read as a git option)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) or len(value) > 4096:
        raise InvalidParameterValue(f"{source}: {shown!r} is not a remote (control characters)")
    if value.lower().startswith(_COMMAND_TRANSPORTS):
        raise InvalidParameterValue(f"{source}: {shown!r} uses a transport that runs commands")
    looks_like_name = not any(c in value for c in "/:") and not value.startswith(".")
    if looks_like_name and _BAD_NAME.search(value):
        raise InvalidParameterValue(f"{source}: {shown!r} is not a valid Git remote name")
    return value
