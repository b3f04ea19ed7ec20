"""`rnnlab` entry point. Errors a user can cause print one line and exit 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from rnnlab.cli.demo import demo
from rnnlab.cli.diagnose import diagnose_command
from rnnlab.cli.export import export
from rnnlab.cli.ls import ls
from rnnlab.cli.report import report
from rnnlab.cli.run import run
from rnnlab.cli.sample import sample
from rnnlab.cli.show import show
from rnnlab.cli.sweep import sweep
from rnnlab.cli.train import train
from rnnlab.engine.memory import keep_freed_memory


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a ValueError (bad config, input or checkpoint) into `error: …` and exit code 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ValueError as err:
            click.echo(
                f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", err=True
            )
            sys.exit(2)

    return wrapper


class Commands(click.Group):
    """A group whose command list gives each command's first sentence whole: click would
    cut it to fit the terminal's width, mid-sentence; here a long one wraps instead."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=sys.maxsize)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnlab")
def cli() -> None:
    """rnnlab: watch gradients vanish and explode through time, and fix them."""


for command in (demo, train, sample, diagnose_command, run, sweep, ls, show, export, report):
    command.callback = user_errors(command.callback)  # type: ignore[arg-type]
    cli.add_command(command)


def main() -> None:
    keep_freed_memory()  # this process is ours: reuse step buffers instead of page-faulting
    cli()
