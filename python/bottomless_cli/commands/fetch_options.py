"""``--part-size`` and ``--parallel``: how ``restore`` and ``verify`` fetch
a snapshot. One streaming GET is the default (the faster choice on the
servers measured: README, restore table); ranged parts in parallel are for
a store where one connection carries a fraction of what a restore takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from bottomless.restore_pipeline import Tuning

F = TypeVar("F", bound=Callable[..., object])


def fetch_options(command: F) -> F:
    command = click.option(
        "--parallel",
        type=click.IntRange(1, 64),
        default=8,
        show_default=True,
        help="Objects fetched and decoded at once (batches; with --part-size, half as many snapshot parts).",
    )(command)
    return click.option(
        "--part-size",
        "part_mib",
        type=click.IntRange(0, 4096),
        default=0,
        show_default=True,
        help="Fetch the snapshot in ranged parts of this many MiB, in parallel; 0: one streaming GET.",
    )(command)


def tuning(part_mib: int, parallel: int) -> Tuning:
    return Tuning(workers=parallel, part_size=part_mib << 20)
