"""Options and checks shared by every subcommand: ``--out``, ``--seed``, ``--no-progress``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def add_out(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--out DIR`` (the results folder, written atomically when the run succeeds) and
    ``--overwrite`` (replace the results of an earlier run there)."""
    p.add_argument("--out", required=required, metavar="DIR",
                   help="results folder: a new or empty folder, written atomically when the run succeeds "
                        "(a folder bayesqcd did not write is never replaced)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier bayesqcd run at --out")


def results_dir(args: argparse.Namespace, inputs: tuple[str, ...] = ()) -> Any:
    """``--out`` checked now, before any work (:class:`bayesqcd.report.ResultsDir`)."""
    from bayesqcd.report import ResultsDir

    return ResultsDir(args.out, overwrite=args.overwrite, inputs=inputs)


def add_seed(p: argparse.ArgumentParser, default: int = 0) -> None:
    """``--seed N``: the seed of every random draw of the run."""
    p.add_argument("--seed", type=int, default=default, help=f"random seed (default {default})")


def add_progress(p: argparse.ArgumentParser) -> None:
    """``--no-progress``: hide progress bars."""
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def add_common(p: argparse.ArgumentParser, *, seed: int = 0) -> None:
    """``--out``, ``--seed`` and ``--no-progress``."""
    add_out(p)
    add_seed(p, seed)
    add_progress(p)


def require_at_least(args: argparse.Namespace, minimum: int, *names: str) -> None:
    """Raise ``ValueError`` naming the option when an integer option is below ``minimum``
    (an option left at ``None`` is not checked)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} = {value} is outside the valid range "
                             f"[{minimum}, inf)")


def parse_list(text: str, name: str, conv: Callable[[str], T]) -> list[T]:
    """A comma-separated option value as a list (``ValueError`` naming ``--name`` if malformed)."""
    try:
        out = [conv(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--{name} must be a comma-separated list, got {text!r}") from None
    if not out:
        raise ValueError(f"--{name} is empty")
    return out


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as a plain dict (for ``summary.json``), without the callback."""
    return {k: v for k, v in vars(args).items() if k not in ("func", "debug")}


def add_distributed(p: argparse.ArgumentParser) -> None:
    """``--distributed`` and ``--coordinator``, ``--num-processes``, ``--process-id``: run as one
    process of a multi-process (multi-host) job (:mod:`bayesqcd.inference.distributed`)."""
    g = p.add_argument_group("several processes (hosts)", "every process runs the same command; "
                             "only process 0 checks and writes --out")
    g.add_argument("--distributed", action="store_true",
                   help="join a multi-process run detected from the cluster (SLURM, Open MPI)")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="hand-made launch: address of process 0")
    g.add_argument("--num-processes", type=int, metavar="N", help="hand-made launch: number of processes")
    g.add_argument("--process-id", type=int, metavar="I", help="hand-made launch: this process, 0 to N-1")


def start_distributed(args: argparse.Namespace) -> bool:
    """Join the other processes if the options of :func:`add_distributed` ask for it (call it
    before JAX computes anything); return whether this process writes the results (process 0,
    or a run of one process)."""
    launch = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed and all(v is None for v in launch):
        return True
    from bayesqcd.inference import distributed

    try:
        distributed.initialize(*launch)
    except ValueError as err:
        options = "--distributed" if all(v is None for v in launch) else "--coordinator/--num-processes/--process-id"
        raise ValueError(f"{options}: {err}") from None
    return distributed.is_main_process()
