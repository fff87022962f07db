"""The ``slatewise`` command line. Each command group lives in its own module."""

from __future__ import annotations

import logging

import click

from experiments.cli.catalog import catalog_group
from experiments.cli.experiments_cmds import compare_cmd, demo_cmd, simulate_cmd
from experiments.cli.learn import learn_cmd
from experiments.cli.logs import logs_group
from experiments.cli.ope import ope_group
from experiments.cli.ppo import train_ppo_cmd
from experiments.cli.serve import serve_cmd
from experiments.cli.world import world_group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="slatewise")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """slatewise: choose slates, learn from shoppers, prove a policy is better."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


main.add_command(catalog_group)
main.add_command(logs_group)
main.add_command(learn_cmd)
main.add_command(serve_cmd)
main.add_command(train_ppo_cmd)
main.add_command(simulate_cmd)
main.add_command(compare_cmd)
main.add_command(demo_cmd)
main.add_command(world_group)
main.add_command(ope_group)
