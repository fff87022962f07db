"""The ``slatewise`` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging

import click

from experiments.cli.logs import logs_group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="slatewise")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """slatewise: choose slates, learn from shoppers, prove a policy is better."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


main.add_command(logs_group)
