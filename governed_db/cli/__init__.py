"""``governed-db``: a thin shell over the library.

Each command lives in ``governed_db/cli/<name>.py`` and calls one library
function; they are imported only when used, so ``governed-db --help`` stays
fast. Exit codes: 0 success; 1 the operation found a problem (a refusal, a
broken audit chain); 2 bad usage or input.

No command shows a traceback: the group turns an exception a command did not
handle into one line on stderr — exit 2 for bad input (a configuration error,
a file that cannot be read, a value that cannot be parsed), exit 1 for
anything else. ``GOVERNED_DB_DEBUG=1`` shows the traceback instead. Usage errors (a bad
option value, a missing argument, an unknown option) are one line too, naming the
command's ``--help``, instead of click's usage block.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NoReturn

import click

from governed_db.errors import ConfigurationError, InvalidStatement

#: command name -> (module, attribute); a module that is not there yet is simply not listed
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("governed_db.cli.demo", "demo"),
    "check": ("governed_db.cli.check", "check"),
    "policy": ("governed_db.cli.policy", "policy"),
    "audit": ("governed_db.cli.audit", "audit"),
    "report": ("governed_db.cli.report", "report"),
    "approvals": ("governed_db.cli.approvals", "approvals"),
    "classify": ("governed_db.cli.classify", "classify"),
    "whoami": ("governed_db.cli.whoami", "whoami"),
    "mcp": ("governed_db.cli.mcp", "mcp"),
}

#: subcommands contributed to a group by another module: group -> [(name, module, attribute)]
SUBCOMMANDS: dict[str, list[tuple[str, str, str]]] = {
    "policy": [("replay", "governed_db.cli.replay", "replay")],
    "approvals": [("serve", "governed_db.cli.approvals_serve", "serve")],
}


#: exceptions that mean the input was bad (exit 2); everything else unhandled is exit 1
_BAD_INPUT = (ConfigurationError, InvalidStatement, OSError, UnicodeError, ValueError, LookupError, RecursionError)


def _one_line(exc: BaseException) -> str:
    return _one_line_text(str(exc)) or type(exc).__name__


def _fail(exc: Exception) -> NoReturn:
    if isinstance(exc, _BAD_INPUT):
        click.echo(f"error: {_one_line(exc)}", err=True)
        raise SystemExit(2)
    click.echo(f"error: unexpected {type(exc).__name__}: {_one_line(exc)} "
               "(set GOVERNED_DB_DEBUG=1 for the traceback, and please report it)", err=True)
    raise SystemExit(1)


def _one_line_usage(exc: click.UsageError) -> None:
    """Let a usage error (a bad option value, a missing argument) say itself in one line, like every other
    failure, instead of click's usage block; a group run without a command still prints its help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return

    def show(file: Any = None) -> None:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        click.echo(f"error: {_one_line_text(exc.format_message())}{where}", file=file, err=True)

    exc.show = show  # type: ignore[method-assign]


def _one_line_text(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 500 else text[:497] + "..."


class LazyGroup(click.Group):
    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            _one_line_usage(e)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            _one_line_usage(e)
            raise
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as e:
            if os.environ.get("GOVERNED_DB_DEBUG") or ctx.parent is not None:
                raise
            _fail(e)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self.get_command(ctx, name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        try:
            module = importlib.import_module(entry[0])
        except ModuleNotFoundError as e:
            if e.name == entry[0]:
                return None
            raise
        command: Any = getattr(module, entry[1])
        for name, mod, attr in SUBCOMMANDS.get(cmd_name, ()):
            if isinstance(command, click.Group) and name not in command.commands:
                try:
                    command.add_command(getattr(importlib.import_module(mod), attr), name)
                except ModuleNotFoundError as e:
                    if e.name != mod:
                        raise
        return command  # type: ignore[no-any-return]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="governed-db")
def main() -> None:
    """Identity, guardrails, masking and a tamper-evident record for database connections."""
