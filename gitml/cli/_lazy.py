"""A click group whose subcommands are imported only when one runs or shows its own help.

`gitml --help` lists every command with its one-line help from a static table, so it imports
no command module (tests/cli/test_cli_speed.py checks the table against the commands).
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import click

__all__ = ["LazyCommand", "LazyGroup"]


class LazyCommand(NamedTuple):
    """Where a subcommand lives (`module:attribute`) and its one-line help, for listings."""

    target: str
    short_help: str


class LazyGroup(click.Group):
    """Subcommands named as {"name": LazyCommand("module:attribute", "help")}; a module is
    imported on first use, never to list the commands."""

    def __init__(
        self, *args: Any, lazy: dict[str, LazyCommand] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].target.partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the short help of lazy commands read from the table."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.lazy:
                # click's own shortening, applied to the table's text
                text = click.Command(name, help=self.lazy[name].short_help).get_short_help_str(
                    limit
                )
            else:
                cmd = super().get_command(ctx, name)
                if cmd is None or cmd.hidden:
                    continue
                text = cmd.get_short_help_str(limit)
            rows.append((name, text))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
