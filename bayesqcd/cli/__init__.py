"""The ``bayesqcd`` command (layer: cli, the top; may import anything below it).

Each subcommand lives in a module of this package exposing ``register(subparsers)``: it adds
its parser and sets ``func`` (a callable taking the parsed arguments and returning an exit
code). ``func`` turns the arguments into a study's config and calls the study
(:mod:`bayesqcd.studies`); the modules keep their heavy imports inside ``func`` so that
``bayesqcd --help`` is fast. Options shared by every subcommand (``--out``, ``--seed``,
``--no-progress``) are added by :mod:`bayesqcd.cli.common`. Compiled programs are kept on
disk for the next run (:mod:`bayesqcd.compile_cache`; ``--no-compile-cache`` turns it off).

Errors in the user's input or files (``ValueError``, ``OSError``) print one line and exit
with 2; ``--debug`` (or ``BAYESQCD_DEBUG=1``) shows the full traceback of any error instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bayesqcd.compile_cache import cache_enabled_by_env, enable_compile_cache

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "bayesqcd.cli.ns_eos",
    "bayesqcd.cli.ns_regression",
    "bayesqcd.cli.compare",
    "bayesqcd.cli.tov",
    "bayesqcd.cli.diffusion",
    "bayesqcd.cli.spectral",
    "bayesqcd.cli.lattice",
    "bayesqcd.cli.topology",
)
"""Modules providing subcommands, in the order ``--help`` lists them (each must import)."""

DEBUG_ENV = "BAYESQCD_DEBUG"
"""Environment variable that, set to a non-empty value other than 0, acts as ``--debug``."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (a module that fails to import is an error)."""
    parser = argparse.ArgumentParser(
        prog="bayesqcd",
        description="Bayesian inverse problems in QCD physics: neutron stars, diffusion models, "
        "spectral functions, lattice fields, topology.",
    )
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (or set {DEBUG_ENV}=1)")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not keep compiled programs on disk for the next run (or set "
                        "BAYESQCD_COMPILE_CACHE=0); the cache folder is ~/.cache/bayesqcd/jax "
                        "(BAYESQCD_CACHE_DIR to move it)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bayesqcd`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not args.no_compile_cache and cache_enabled_by_env():
        # JAX never caches a program with host callbacks, and Equinox's runtime checks (e.g.
        # diffrax's check of dt0's sign) are host callbacks unless they return NaN instead of
        # raising; our solvers report failures as NaN already. EQX_ON_ERROR=raise keeps the
        # errors (and loses the cache for those programs).
        os.environ.setdefault("EQX_ON_ERROR", "nan")
        try:
            enable_compile_cache()
        except OSError as err:  # a read-only home: run without the cache
            print(f"bayesqcd: compilation cache off ({err})", file=sys.stderr)
    if _debug(args):
        return int(args.func(args) or 0)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:  # bad input, unreadable or unwritable files
        print(f"bayesqcd {args.command}: error: {err}\n(run with --debug for the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
