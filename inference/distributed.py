"""Many processes, one computation: JAX's multi-process runtime for the engines.

A multi-process run starts the same program once per process (one per host, or one per
GPU); :func:`initialize` connects the processes (``jax.distributed.initialize``), after
which ``jax.devices()`` lists the devices of *all* processes and a program jitted over a
:func:`global_mesh` runs on all of them, each process feeding and computing its own shards.
Every process runs the whole script; :func:`gather` hands every process the full result,
and only :func:`is_main_process` (process 0) should write files. Work that splits into
independent items (one posterior per data set) is shared out with :func:`share` and
collected with :func:`gather_shares`; what process 0 alone has read (a checkpoint) reaches
the others through :func:`broadcast_from_main`.

On CPU the processes talk through gloo (or MPI when ``jax_cpu_collectives_implementation``
is set to ``"mpi"`` before :func:`initialize`); on GPU through NCCL, as JAX does. Cluster
managers (SLURM, Open MPI, ...) are detected by JAX when :func:`initialize` is called
without arguments.

Example (two processes on one machine, one CPU device each)::

    # process 0                                     # process 1
    initialize("localhost:12345", 2, 0)             initialize("localhost:12345", 2, 1)
    idata = run_nuts(model, key=key, num_chains=4)  # the same call on both; both get all chains
    if is_main_process():
        idata.to_netcdf("posterior.nc")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def check_settings(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Raise ``ValueError`` naming the setting unless the three describe a launch: all None
    (cluster auto-detection) or a ``HOST:PORT`` coordinator, ``num_processes >= 1`` and
    ``0 <= process_id < num_processes``."""
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    if all(v is None for v in given.values()):
        return
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ValueError(f"a hand-made multi-process launch needs coordinator, num_processes and process_id; "
                         f"missing {', '.join(missing)} (or give none of them for cluster auto-detection)")
    host, sep, port = str(coordinator).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"coordinator = {coordinator!r} must be HOST:PORT with a port in [1, 65535], "
                         "e.g. 'node001:12345'")
    if int(num_processes) < 1:
        raise ValueError(f"num_processes = {num_processes} must be >= 1")
    if not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"process_id = {process_id} is outside the valid range [0, {int(num_processes) - 1}] "
                         f"for num_processes = {num_processes}")


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Connect this process to the others (call it before any JAX computation).

    Args:
        coordinator: ``HOST:PORT`` of process 0 (it listens there), reachable by all.
        num_processes: processes in the run.
        process_id: this process, in ``[0, num_processes)``.

    With all three None, JAX detects the cluster (SLURM, Open MPI, ...). CPU collectives use
    gloo unless ``jax_cpu_collectives_implementation`` is already ``"mpi"``.

    Raises:
        ValueError: for inconsistent settings (see :func:`check_settings`), or when JAX has
            already computed something in this process.
    """
    check_settings(coordinator, num_processes, process_id)
    if jax.config.jax_cpu_collectives_implementation != "mpi":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs = {} if coordinator is None else {"coordinator_address": str(coordinator),
                                             "num_processes": int(num_processes),
                                             "process_id": int(process_id)}
    try:
        jax.distributed.initialize(**kwargs)
    except ValueError as err:
        if coordinator is not None:
            raise
        raise ValueError(f"no cluster detected ({err}): outside SLURM or Open MPI give coordinator, "
                         "num_processes and process_id") from None
    except RuntimeError as err:
        raise ValueError(f"jax.distributed.initialize failed ({err}); call initialize() before any "
                         "JAX computation, and without arguments only inside a detected cluster "
                         "(SLURM, Open MPI)") from None


def process_count() -> int:
    """Processes of the run (1 without :func:`initialize`)."""
    return jax.process_count()


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes results."""
    return jax.process_index() == 0


def global_mesh(n_devices: int | None = None, axis: str = "chain") -> Mesh:
    """A one-dimensional mesh named ``axis`` over the first ``n_devices`` devices of all
    processes (``jax.devices()``, ordered by process; default: all of them)."""
    devices = jax.devices()
    n = len(devices) if n_devices is None else int(n_devices)
    if not 1 <= n <= len(devices):
        raise ValueError(f"n_devices = {n_devices} is outside the valid range [1, {len(devices)}]")
    return Mesh(np.asarray(devices[:n]), (axis,))


def shard_like(tree: Any, mesh: Mesh, spec: P) -> Any:
    """Place a pytree that every process holds in full (the same values everywhere) on
    ``mesh`` with ``spec``; each process provides only its own shards."""
    sharding = NamedSharding(mesh, spec)

    def place(a: Any) -> jax.Array:
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(place(jax.random.key_data(a)), impl=jax.random.key_impl(a))
        host = np.asarray(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(place, tree)


def gather(tree: Any) -> Any:
    """A pytree of (possibly process-spanning) arrays as numpy arrays, in full on every
    process (``multihost_utils.process_allgather``; a plain ``np.asarray`` with one process)."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def share(n_items: int, process: int | None = None, n_processes: int | None = None) -> range:
    """The items of ``range(n_items)`` that ``process`` (default: this one) handles: every
    ``n_processes``-th one, starting at its own index (``process::n_processes``)."""
    p = jax.process_index() if process is None else int(process)
    n_proc = jax.process_count() if n_processes is None else int(n_processes)
    if not 0 <= p < n_proc:
        raise ValueError(f"process = {process} is outside the valid range [0, {n_proc - 1}]")
    return range(p, int(n_items), n_proc)


def _to_bytes(a: np.ndarray, rows: int) -> np.ndarray:
    """``(k, *shape)`` -> ``(rows, bytes per row)`` uint8, zero-padded to ``rows`` rows."""
    a = np.ascontiguousarray(a)
    per_row = int(np.prod(a.shape[1:], dtype=int))
    out = np.zeros((rows, per_row * a.dtype.itemsize), np.uint8)
    out[:a.shape[0]] = a.reshape(a.shape[0], per_row).view(np.uint8)
    return out


def _from_bytes(b: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_to_bytes` for rows shaped and typed like ``like``'s."""
    return np.ascontiguousarray(b).view(like.dtype).reshape(b.shape[0], *like.shape[1:])


def reassemble(stacked: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """The rows of every process's share put back in item order.

    Args:
        stacked: per process ``p``, the rows of its items ``p::P`` one after the other
            (item ``i`` has ``sizes[i]`` rows), possibly followed by padding.
        sizes: rows per item, for all items.

    Returns:
        ``(sum(sizes), ...)``: item 0's rows, then item 1's, ...
    """
    n_proc = len(stacked)
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=int)])
    out = np.empty((int(offsets[-1]), *np.shape(stacked[0])[1:]), np.asarray(stacked[0]).dtype)
    for p in range(n_proc):
        mine = [np.arange(offsets[i], offsets[i + 1]) for i in range(p, len(sizes), n_proc)]
        rows = np.concatenate(mine) if mine else np.zeros(0, int)
        out[rows] = np.asarray(stacked[p])[:rows.size]
    return out


def gather_shares(local: Any, sizes: Sequence[int]) -> Any:
    """Every process's results for its :func:`share` of the items, in full on every process.

    Args:
        local: pytree of arrays ``(k, ...)``: this process's rows, those of its items
            ``share(len(sizes))`` one after the other (same trailing shapes and dtypes on
            every process).
        sizes: rows per item, for all items (the same list on every process).

    Returns:
        The pytree with arrays ``(sum(sizes), ...)`` in item order, bit for bit as computed
        (the rows travel as bytes through ``process_allgather``; without :func:`initialize`,
        ``local`` itself).
    """
    n_proc = jax.process_count()
    if n_proc == 1:
        return jax.tree.map(np.asarray, local)
    top = max(1, max(sum(sizes[p::n_proc]) for p in range(n_proc)))
    leaves, tree = jax.tree.flatten(jax.tree.map(np.asarray, local))
    got = multihost_utils.process_allgather([_to_bytes(a, top) for a in leaves], tiled=False)  # (P, top, B)
    out = [reassemble([_from_bytes(g[p], a) for p in range(n_proc)], sizes) for g, a in zip(got, leaves)]
    return jax.tree.unflatten(tree, out)


def broadcast_from_main(tree: Any) -> Any:
    """Process 0's values of a pytree of arrays, on every process, bit for bit (every process
    passes arrays of the same shapes and dtypes; the others' values are ignored), as new
    writable arrays. Without :func:`initialize`, the pytree itself as numpy arrays."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    leaves, treedef = jax.tree.flatten(jax.tree.map(np.asarray, tree))
    raw = [_to_bytes(a[None], 1) for a in leaves]  # one row of bytes each: psum of 0s and the bytes is exact
    got = multihost_utils.broadcast_one_to_all(raw)
    return jax.tree.unflatten(treedef, [_from_bytes(np.asarray(g), a[None])[0].copy() for g, a in zip(got, leaves)])
