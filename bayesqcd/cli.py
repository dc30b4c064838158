"""The ``bayesqcd`` command.

Each subcommand lives in a module that exposes ``register(subparsers)``: it adds its
parser and sets ``func`` (a callable taking the parsed arguments and returning an exit
code). Modules keep their heavy imports inside ``func`` so that ``bayesqcd --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "bayesqcd.ns_cli",
    "bayesqcd.regression_cli",
    "bayesqcd.tov_cli",
    "bayesqcd.diffusion.cli",
    "bayesqcd.spectral_cli",
    "bayesqcd.lattice.cli",
    "bayesqcd.topology_cli",
)
"""Modules providing subcommands, in the order ``--help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="bayesqcd",
        description="Bayesian inverse problems in QCD physics: neutron stars, diffusion models, "
        "spectral functions, lattice fields, topology.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # subcommand not part of this build yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesqcd`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"bayesqcd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
