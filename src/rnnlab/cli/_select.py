"""The options that pick a store's runs (ls, export), read as
`select(store.runs(status=statuses), where)`."""

from __future__ import annotations

import click

from rnnlab.experiments.store import STATUSES

status_option = click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only runs with this status (repeatable).",
)
where_option = click.option(
    "--where",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only runs whose config field or final metric equals VALUE (repeatable).",
)
