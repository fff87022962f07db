"""The ``slatewise`` command line. Each command group lives in its own module.

Commands are imported only when they run (or when their own ``--help`` is
asked for), so ``slatewise --help`` and ``--version`` start without numpy's
heavier neighbours (pandas, torch, stable-baselines3, Ray, matplotlib).

To add a command, add one line to :data:`COMMANDS`: its name, the
``module:attribute`` of its ``click`` command, and the one-line help shown by
``slatewise --help`` (the first line of the command's docstring; a test checks
they agree).
"""

from __future__ import annotations

import importlib
import logging

import click

COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("experiments.cli.catalog:catalog_group",
                "A shop's items: import them from the shop's own file, describe a catalog file."),
    "compare": ("experiments.cli.experiments_cmds:compare_cmd",
                "Off-policy estimates of each policy on a logged sample, beside the world's truth."),
    "demo": ("experiments.cli.experiments_cmds:demo_cmd",
             "The embedded default: simulation, logging, off-policy evaluation and a report."),
    "learn": ("experiments.cli.learn:learn_cmd",
              "Learn a policy from LOG_FILE alone, prove it on held-out sessions, and save it."),
    "logs": ("experiments.cli.logs:logs_group", "Read, check and convert decision logs."),
    "ope": ("experiments.cli.ope:ope_group",
            "Off-policy evaluation: `slatewise ope LOG.parquet --policy SPEC`, or `ope obd-benchmark DIR`."),
    "serve": ("experiments.cli.serve:serve_cmd", "Serve slates over HTTP under gunicorn (Ctrl-C stops it)."),
    "simulate": ("experiments.cli.experiments_cmds:simulate_cmd",
                 "Each policy x seed learns online in the configured world; metrics, report, summary."),
    "train-ppo": ("experiments.cli.ppo:train_ppo_cmd",
                  "Train PPO on the session environment; evaluate it against bandits on held-out seeds."),
    "world": ("experiments.cli.world:world_group",
              "The ground-truth shop: generate logs with exact propensities, calibrate to real logs."),
}
"""Command name -> (``module:attribute`` of the click command, one-line help)."""


def load_command(name: str) -> click.Command:
    """Import and return the registered command ``name``."""
    target, _help = COMMANDS[name]
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"COMMANDS[{name!r}] = {target!r} is not a click command.")
    return command


class LazyGroup(click.Group):
    """A group whose registered commands are imported on first use, listed from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Registered and directly added command names, sorted."""
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, imported now if it is registered lazily."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in COMMANDS:
            return None
        command = load_command(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help`` from the registry's help lines, importing nothing."""
        limit = formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                rows.append((name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="slatewise")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """slatewise: choose slates, learn from shoppers, prove a policy is better."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
