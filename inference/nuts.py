"""NumPyro NUTS for any NumPyro model, returning :class:`arviz.InferenceData`.

The sampler runs NumPyro's NUTS kernel in chunks of iterations, one compiled program for
every chunk, so that it can

* show progress (iterations, divergences, effective sample size) whatever the chain layout;
* stop when the effective sample size the user asks for is reached (``ess_target``) instead
  of after a fixed number of draws;
* report compilation, warm-up and sampling time separately.

Its three programs (the initial values, a chunk of iterations, and the post-processing of the
draws into constrained and deterministic sites) are traced one after the other and compiled side
by side in background threads from the start (with the persistent compilation cache of
:mod:`bayesqcd.compile_cache`, later runs load them).

Chains are laid out on the available devices automatically (:func:`chain_layout`): one
device runs all chains vectorized (``vmap``); ``D > 1`` devices run ``C / D`` vectorized
chains each (``jax.shard_map`` over a one-dimensional mesh, no communication between
devices), and a chain alone on its device runs without ``vmap`` (NUTS's tree loops and the
model's own loops are then traced and run unbatched: on the main job, 2 chains on 2 devices,
the start-up took 15 s instead of 24 s with the compilation cache warm). On CPU, several host
devices are made with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (set before JAX
starts); the same code spreads chains over several GPUs. Chain ``c`` always uses the ``c``-th
key split from ``key``, so the draws do not depend on the layout.

After :func:`bayesqcd.inference.distributed.initialize`, the devices are those of all
processes (hosts): every process makes the same call, computes the initial values of all
chains and hands its devices their shards; the statistics of every chunk are gathered on
every process, so each returns the same InferenceData (write it from process 0 only).
The chains must then fill every device (``num_chains`` a multiple of ``jax.device_count()``).
With one process nothing of this happens.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import arviz as az
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike
from numpyro.infer import NUTS, init_to_median
from numpyro.infer.hmc_util import build_adaptation_schedule, welford_covariance
from tqdm.auto import tqdm

from .distributed import gather, global_mesh, shard_like
from .results import add_posterior_predictive, check_diagnostics, idata_from_samples, postprocess_program, set_attrs

CHUNK: int = 25
"""Default iterations per compiled chunk (the progress bar moves once per chunk)."""
RHAT_STOP: float = 1.01
"""R-hat below which an ``ess_target`` run may stop (Vehtari et al. 2021)."""
POSTPROCESS_BATCH: int = 256
"""Draws per call of the compiled post-processing (constrained and deterministic sites)."""


def _in_background(fn: Callable[[], Any]) -> Future:
    """Run ``fn()`` in a daemon thread (an XLA compilation releases the GIL, so it runs beside
    Python and other compilations; a daemon thread does not hold up the exit after an error)."""
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to whoever waits for the result
            future.set_exception(exc)

    threading.Thread(target=work, daemon=True, name="bayesqcd-compile").start()
    return future


def chain_layout(num_chains: int, n_devices: int | None = None) -> int:
    """Number of devices :func:`run_nuts` spreads ``num_chains`` chains over.

    All chains on one device when there is one device (or one chain); one chain per device
    for ``C <= D`` chains; otherwise ``C / D`` chains per device. ``D`` defaults to the devices
    of all processes (``jax.device_count()``); with several processes every device is used.

    Raises:
        ValueError: when ``num_chains < 1``, or it exceeds the device count and is not a
            multiple of it, or (several processes) it is not a multiple of the device count.
    """
    d = jax.device_count() if n_devices is None else n_devices
    if num_chains < 1:
        raise ValueError(f"num_chains = {num_chains} must be >= 1")
    if n_devices is None and jax.process_count() > 1:
        if num_chains % d:
            raise ValueError(f"num_chains = {num_chains} must be a multiple of the {d} devices of the "
                             f"{jax.process_count()} processes (every process runs chains)")
        return d
    if d == 1 or num_chains == 1:
        return 1
    if num_chains <= d:
        return num_chains
    if num_chains % d:
        raise ValueError(
            f"num_chains = {num_chains} cannot be split evenly over {d} devices; "
            f"use a multiple of {d} (or at most {d} chains)"
        )
    return d


def _chunk_program(kernel: NUTS, static: Any, length: int, n_dev: int, per_device: int) -> Callable:
    """``(state, dynamic model arguments) -> (state, per-iteration statistics)`` for ``length``
    iterations of ``kernel`` (initialized for one chain), jitted and (with ``n_dev > 1``) sharded
    over the chain axis. ``per_device`` chains share a device: several are vectorized (``vmap``);
    a lone chain on a device of its own runs unbatched (its shard's chain axis of length 1 is
    dropped), which is traced and compiled without the batching of NUTS's and the model's while
    loops; ``per_device = 0``: one chain in all, with no chain axis."""
    step = jax.vmap(kernel.sample, in_axes=(0, None, None)) if per_device > 1 else kernel.sample
    squeeze = per_device == 1

    def chunk(state: Any, dynamic: Any) -> tuple[Any, dict[str, Any]]:
        args, kwargs = eqx.combine(dynamic, static)
        if squeeze:
            state = jax.tree.map(lambda a: a[0], state)

        def body(s: Any, _: Any) -> tuple[Any, dict[str, Any]]:
            s = step(s, args, kwargs)
            return s, {
                "z": s.z,
                "potential_energy": s.potential_energy,
                "energy": s.energy,
                "diverging": s.diverging,
                "num_steps": s.num_steps,
                "accept_prob": s.accept_prob,
                "step_size": s.adapt_state.step_size,
            }

        state, stats = jax.lax.scan(body, state, None, length=length)
        if squeeze:
            state, stats = jax.tree.map(lambda a: a[None], state), jax.tree.map(lambda a: a[:, None], stats)
        return state, stats

    if n_dev > 1:
        chunk = jax.shard_map(chunk, mesh=global_mesh(n_dev), in_specs=(P("chain"), P()),
                              out_specs=(P("chain"), P(None, "chain")), check_vma=False)
    return jax.jit(chunk)


def _curvature_mass(kernel: NUTS, state: Any, dynamic: Any, static: Any, forward_mode: bool,
                    vectorized: bool, dense: bool, step: float = 1e-3) -> Any:
    """``state`` with the warm-up's inverse mass matrix set to 1 / the diagonal of the potential's
    Hessian at the chains' starts (central differences of the gradient with ``step`` in the
    unconstrained space; median over chains; 1 where the curvature is not positive or finite).
    The potential is NumPyro's own (``kernel._potential_fn_gen``, set by ``kernel.init``), and
    the mass matrix is diagonal also with ``dense``."""

    def inverse_mass(z: Any, dyn: Any) -> jax.Array:
        args, kwargs = eqx.combine(dyn, static)
        potential = kernel._potential_fn_gen(*args, **kwargs)
        one = jax.tree.map(lambda a: a[0], z) if vectorized else z
        _, unravel = ravel_pytree(one)
        grad = (jax.jacfwd if forward_mode else jax.grad)(lambda flat: potential(unravel(flat)))

        def curvature(flat: jax.Array) -> jax.Array:
            shifts = step * jnp.eye(flat.size, dtype=flat.dtype)
            up, down = jax.vmap(lambda d: grad(flat + d))(shifts), jax.vmap(lambda d: grad(flat - d))(shifts)
            return jnp.diagonal(up - down) / (2 * step)

        flats = jax.vmap(lambda c: ravel_pytree(c)[0])(z) if vectorized else ravel_pytree(z)[0][None]
        h = jax.lax.map(curvature, flats)
        h = jnp.nanmedian(jnp.where(jnp.isfinite(h) & (h > 0), h, jnp.nan), axis=0)
        return jnp.where(jnp.isfinite(h), 1.0 / h, 1.0)

    inv = jax.jit(inverse_mass)(state.z, dynamic)
    as_matrix = jnp.diag if dense else (lambda d: d)
    return _with_mass(state, as_matrix(inv), as_matrix(1.0 / jnp.sqrt(inv)), as_matrix(jnp.sqrt(inv)))


def _with_mass(state: Any, inverse: Any, sqrt: Any, sqrt_inv: Any, place: Callable[[Any], Any] = lambda a: a) -> Any:
    """``state`` with the warm-up's inverse mass matrix ``inverse`` (and NumPyro's square roots
    of it: ``sqrt`` of the mass matrix, ``sqrt_inv`` of its inverse), the same for every chain,
    each broadcast to the state's own shape (with or without a chain axis) and passed through
    ``place`` (to put it on the chains' devices). The single mass-matrix block of NumPyro's
    state holds all sites in sorted order, as ``ravel_pytree`` flattens them."""
    adapt = state.adapt_state
    (block,) = adapt.inverse_mass_matrix  # one block: all sites, sorted by name

    def like(old: jax.Array, new: Any) -> Any:
        return place(jnp.broadcast_to(jnp.asarray(new, old.dtype), old.shape))

    adapt = adapt._replace(
        inverse_mass_matrix={block: like(adapt.inverse_mass_matrix[block], inverse)},
        mass_matrix_sqrt={block: like(adapt.mass_matrix_sqrt[block], sqrt)},
        mass_matrix_sqrt_inv={block: like(adapt.mass_matrix_sqrt_inv[block], sqrt_inv)},
    )
    return state._replace(adapt_state=adapt)


def _pooled_mass(z: dict[str, np.ndarray], dense: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
    """NumPyro's regularized mass-matrix estimate (inverse, sqrt, sqrt of the inverse) from the
    warm-up draws ``z`` (unconstrained, ``(iteration, chain, ...)``) of all chains together,
    flattened as ``ravel_pytree`` orders the sites (by name). The same Welford statistics each
    chain accumulates over its own draws, over all of them (NumPyro's ``welford_covariance``)."""
    flat = np.concatenate([z[k].reshape(z[k].shape[0] * z[k].shape[1], -1) for k in sorted(z)], axis=1)
    mean = flat.mean(axis=0)
    dev = flat - mean
    m2 = dev.T @ dev if dense else np.sum(dev * dev, axis=0)
    final = welford_covariance(diagonal=not dense)[2]
    return final((jnp.asarray(mean), jnp.asarray(m2), jnp.asarray(flat.shape[0])), regularize=True)


def _pooled_step_size(state: Any, place: Callable[[Any], Any] = lambda a: a) -> Any:
    """``state`` with every chain's step size set to the geometric mean over chains and its
    dual-averaging state (NumPyro's ``(x_t, x_avg, g_avg, t, prox_center)``) to the mean over
    chains, passed through ``place``.

    Every update of dual averaging is affine in its state and in the acceptance statistic, with
    coefficients that depend on the iteration only; so chains that share a state and then each
    adapt on their own acceptance hold, on average, the state that dual averaging on the mean
    acceptance of all chains would reach. Pooling at the end of every chunk of the warm-up's last
    window therefore adapts one step size on the acceptance of all chains (each chain's
    acceptance measured at its own step size between chunks). The step size is ``exp(x_t)``
    during the window and ``exp(x_avg)`` after its last iteration, so its geometric mean is the
    pooled state's."""
    adapt = state.adapt_state
    step, ss = gather((adapt.step_size, adapt.ss_state))

    def over_chains(a: np.ndarray, value: np.ndarray) -> jax.Array:
        return place(jnp.asarray(np.broadcast_to(value, a.shape), a.dtype))

    step = over_chains(step, np.exp(np.log(step).mean(axis=0)))
    ss = tuple(over_chains(a, a.mean(axis=0)) for a in ss)
    return state._replace(adapt_state=adapt._replace(step_size=step, ss_state=ss))


def _min_ess_max_rhat(z: dict[str, np.ndarray], names: Sequence[str]) -> tuple[float, float]:
    """Min bulk ESS and max R-hat over ``names`` of draws ``(chain, draw, ...)`` (unconstrained:
    both are rank-based, so invariant under the monotone transforms to the constrained space)."""
    ds = az.convert_to_dataset({n: z[n] for n in names})
    ess = az.ess(ds, method="bulk")
    ess_min = float(min(np.nanmin(ess[n].values) for n in names))
    if next(iter(z.values())).shape[0] < 2:
        return ess_min, float("nan")
    rhat = az.rhat(ds)
    return ess_min, float(max(np.nanmax(rhat[n].values) for n in names))


def run_nuts(
    model: Callable[..., Any],
    *model_args: Any,
    key: ArrayLike,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 4,
    target_accept: float = 0.8,
    max_tree_depth: int | tuple[int, int] = 10,
    dense_mass: bool = False,
    forward_mode: bool = False,
    init_strategy: Callable | None = None,
    init_mass: str = "identity",
    pooled_mass: bool = False,
    pooled_step_size: bool = False,
    ess_target: float | None = None,
    chunk_size: int = CHUNK,
    progress: bool = True,
    check: bool = True,
    var_names: Sequence[str] | None = None,
    posterior_predictive: bool = False,
    **model_kwargs: Any,
) -> az.InferenceData:
    """Sample the posterior of a NumPyro ``model`` with NUTS.

    Args:
        model: a NumPyro model (a plain function with ``numpyro.sample`` sites).
        model_args, model_kwargs: passed to ``model``.
        key: a ``jax.random`` key.
        num_warmup: adaptation iterations per chain (step size and mass matrix).
        num_samples: kept draws per chain; with ``ess_target``, the most draws per chain.
        num_chains: independent chains (see the module docstring for the device layout).
        target_accept: NUTS target acceptance probability (raise it to remove divergences).
        max_tree_depth: maximal tree depth (at most ``2**max_tree_depth`` leapfrog steps), or
            ``(during warm-up, during sampling)``.
        dense_mass: adapt a dense mass matrix instead of a diagonal one.
        forward_mode: differentiate the potential in forward mode (``jax.jacfwd``); needed
            when the model differentiates an ODE solve in forward mode, and cheaper when
            the parameters are few.
        init_strategy: NumPyro init strategy (default: the prior median).
        init_mass: the inverse mass matrix the warm-up starts from: ``"identity"`` (NumPyro's
            default) or ``"hessian"``: 1 / the curvature of the potential along each
            coordinate at the chains' starts (central differences of the gradient, median
            over chains; 1 where it is not positive), so that the first warm-up window, which
            adapts the step size only, already sees the posterior's scales.
        pooled_mass: at the end of each of the warm-up's mass-matrix windows, every chain takes
            the mass matrix estimated from the draws of all chains in that window (NumPyro's
            regularized Welford estimate, over ``C`` times the draws) instead of its own; the
            step size then adapts to it as before. A chain whose own window saw only part of
            the posterior then no longer leaves the warm-up with a step size several times too
            small, if the mass matrix was the cause. Needs 2 or more chains; applies to
            windows that end with a chunk (all of them for warm-ups of a multiple of 25
            iterations and ``chunk_size = 25``; the number pooled is the attribute
            ``pooled_mass_windows``). Off by default: on the neutron-star job the chains'
            step sizes still differed 4x with the same mass matrix (README).
        pooled_step_size: adapt one step size for all chains in the warm-up's last window
            (where NumPyro adapts the step size alone): at the end of every chunk in that window
            the chains' dual-averaging states are replaced by their mean, which amounts to dual
            averaging on the mean acceptance of all chains, and the warm-up ends with one step
            size, the geometric mean of the chains' own, instead of step sizes that can differ
            2x between chains. Needs 2 or more chains and a warm-up that ends with a chunk (a
            multiple of ``chunk_size``); the number of chunk ends pooled is the attribute
            ``pooled_step_size_chunks``. Off by default: on the neutron-star job it changed the
            gradients to the ESS target by -3% over four seeds, more at two of them (README).
        ess_target: stop sampling once the minimum bulk effective sample size over
            ``var_names`` reaches this and R-hat <= 1.01 (checked after every chunk), or at
            ``num_samples``; ``None`` draws ``num_samples``.
        chunk_size: iterations per compiled chunk (progress and the ESS check move per chunk).
        progress: show a progress bar (iterations; divergences and ESS so far).
        check: warn with :class:`~bayesqcd.inference.results.DiagnosticsWarning` on
            divergences, R-hat > 1.01 or small ESS (over ``var_names``).
        var_names: sampled sites the ESS target and the checks look at (default: all).
        posterior_predictive: also draw the observed sites given each posterior draw
            (group ``posterior_predictive``).

    Returns:
        InferenceData with ``posterior`` (sampled and deterministic sites),
        ``sample_stats`` (``diverging``, ``lp``, ``n_steps``, ``tree_depth``, ``step_size``,
        ``acceptance_rate``, ``energy``), ``observed_data`` and ``log_likelihood`` (for
        observed sites); ``attrs`` hold the settings, ``wall_time_s`` (everything),
        ``init_time_s`` (tracing, the initial values' compilation and their evaluation),
        ``compile_time_s`` (the wait for the sampler's program after that), ``warmup_time_s``, ``sampling_time_s``,
        ``gradient_evaluations`` (leapfrog steps, warm-up included), ``stopped_by``
        (``"ess_target"`` or ``"num_samples"``), ``pooled_mass_windows``, ``pooled_step_size_chunks``,
        ``n_devices``, ``n_processes``, ``gather_time_s`` (collecting every chunk's statistics once computed: a
        device-to-host copy with one process; with several, the all-gather including its
        one-off compilation and the wait for the slowest process) and the diagnostics.

    Raises:
        ValueError: for iteration counts, ``target_accept``, ``ess_target`` or ``chunk_size``
            outside their ranges, or chains that cannot be split over the devices.
    """
    for name, value, low in (("num_warmup", num_warmup, 0), ("num_samples", num_samples, 1),
                             ("chunk_size", chunk_size, 1)):
        if int(value) < low:
            raise ValueError(f"{name} = {value} must be >= {low}")
    if not 0.0 < target_accept < 1.0:
        raise ValueError(f"target_accept = {target_accept} must lie in (0, 1)")
    if init_mass not in ("identity", "hessian"):
        raise ValueError(f"init_mass = {init_mass!r}: choose 'identity' or 'hessian'")
    if ess_target is not None and not ess_target > 0:
        raise ValueError(f"ess_target = {ess_target} must be > 0 (or None for a fixed number of draws)")
    num_warmup, num_samples, num_chains = int(num_warmup), int(num_samples), int(num_chains)
    n_dev = chain_layout(num_chains)
    progress = progress and jax.process_index() == 0  # one progress bar for all processes
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    start = time.perf_counter()
    say(f"NUTS: {num_chains} chain{'s' * (num_chains > 1)} on {n_dev} device{'s' * (n_dev > 1)}; "
        "finding initial values...")
    kernel = NUTS(
        model,
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        forward_mode_differentiation=forward_mode,
        init_strategy=init_strategy or init_to_median(num_samples=15),
    )
    # The kernel is initialized for one chain (so `kernel.sample` is unbatched); the chains'
    # initial values come from `lax.map` over their keys, and the chunk program vmaps only chains
    # that share a device. One chain: no chain axis at all (batched small LAPACK solves can stall
    # XLA's CPU thread pool).
    vectorized = num_chains > 1
    per_device = num_chains // n_dev if vectorized else 0
    keys = jax.random.split(key, num_chains) if vectorized else key
    dynamic, static = eqx.partition((model_args, model_kwargs), eqx.is_array)
    n_proc = jax.process_count()
    mesh = global_mesh(n_dev) if n_dev > 1 else None
    chain_sharding = NamedSharding(mesh, P("chain")) if mesh is not None else None

    def place(tree: Any) -> Any:
        """Chain-axis arrays (the same on every process) onto the chains' devices."""
        if n_proc > 1:
            return shard_like(tree, mesh, P("chain"))
        return jax.device_put(tree, chain_sharding) if mesh is not None else tree

    # with several processes every process holds the model's arrays and all initial values in
    # full, and hands over its shards
    run_dynamic = shard_like(dynamic, mesh, P()) if n_proc > 1 else dynamic
    length = min(int(chunk_size), num_warmup + num_samples)
    # Three compiled programs: the initial values, a chunk of the sampler and the draws'
    # post-processing (constrained and deterministic sites). Tracing them is Python, one after
    # the other; their compilations (cached on disk by the compilation cache) run side by side.
    def init(k: jax.Array, dyn: Any) -> Any:
        return kernel.init(k, num_warmup, None, *eqx.combine(dyn, static))

    lowered_init = jax.jit(lambda ks, dyn: jax.lax.map(lambda k: init(k, dyn), ks) if vectorized
                           else init(ks, dyn)).lower(keys, dynamic)
    init_job = _in_background(lowered_init.compile)
    state_avals = lowered_init.out_info
    if mesh is not None:
        state_avals = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=chain_sharding),
                                   state_avals)
    chunk_job = _in_background(
        _chunk_program(kernel, static, length, n_dev, per_device).lower(state_avals, run_dynamic).compile)
    draw = {k: jax.ShapeDtypeStruct(a.shape[int(vectorized):], a.dtype) for k, a in state_avals.z.items()}
    post_batch = min(POSTPROCESS_BATCH, num_chains * num_samples)
    postprocess = kernel.postprocess_fn(model_args, model_kwargs)
    post_job = _in_background(postprocess_program(postprocess, draw, post_batch).compile)
    state = init_job.result()(keys, dynamic)
    bad = np.flatnonzero(~np.isfinite(np.atleast_1d(np.asarray(state.potential_energy))))
    if bad.size:
        raise RuntimeError(f"Cannot find valid initial parameters for chain(s) {bad.tolist()}: the model's "
                           "log density or its gradient is not finite at the initial values; check the "
                           "model, the data and init_strategy")
    if init_mass == "hessian":
        state = _curvature_mass(kernel, state, dynamic, static, forward_mode, vectorized, dense_mass)
    state = place(state)
    dynamic = run_dynamic
    t_init = time.perf_counter() - start

    t0 = time.perf_counter()
    say(f"NUTS: compiling the sampler (initial values in {t_init:.0f} s)...")
    program = chunk_job.result()
    t_compile = time.perf_counter() - t0
    say(f"NUTS: compiled in {t_compile:.0f} s")

    total = num_warmup + num_samples
    chunks: list[dict[str, np.ndarray]] = []
    done, n_div, ess_min, rhat_max, stopped_by = 0, 0, float("nan"), float("nan"), "num_samples"
    t_warm, t_gather = 0.0, 0.0
    # NumPyro sets the mass matrix at the end of each middle window of its warm-up schedule; the
    # windows that end at a chunk's end are pooled over the chains
    schedule = build_adaptation_schedule(num_warmup) if num_warmup else []
    pool_at = {w.end + 1: w for w in schedule[1:-1]} if pooled_mass and vectorized else {}
    n_pooled = 0
    # the step size is pooled at the chunk ends in the warm-up's last window (its start included)
    pool_step_at = ({d for d in range(length, num_warmup + 1, length) if d >= schedule[-1].start}
                    if pooled_step_size and vectorized and schedule and num_warmup % length == 0 else set())
    n_step_pooled = 0
    names = None if var_names is None else list(var_names)
    bar = tqdm(total=total, desc="NUTS warm-up" if num_warmup else "NUTS", disable=not progress,
               unit="it", leave=True)
    t0 = time.perf_counter()
    while done < total:
        state, stats = program(state, dynamic)
        jax.block_until_ready(stats)  # time the gathering alone, not the chunk it waits for
        t1 = time.perf_counter()
        stats = gather(stats)
        t_gather += time.perf_counter() - t1
        if not vectorized:  # (T, ...) -> (T, 1, ...)
            stats = jax.tree.map(lambda a: a[:, None], stats)
        chunks.append(stats)
        before, done = done, done + length
        window = pool_at.get(done)
        if window is not None:  # every chain takes the mass matrix of all chains' draws in the window
            in_window = {k: np.concatenate([c["z"][k] for c in chunks])[window.start:window.end + 1]
                         for k in chunks[0]["z"]}
            state = _with_mass(state, *_pooled_mass(in_window, dense_mass), place=place)
            n_pooled += 1
        if done in pool_step_at:  # one step size for all chains in the warm-up's last window
            state = _pooled_step_size(state, place)
            n_step_pooled += 1
        if before < num_warmup <= done:
            t_warm = time.perf_counter() - t0
            bar.set_description("NUTS sampling")
        kept = done - num_warmup
        if kept > 0:
            n_div += int(stats["diverging"][max(num_warmup - before, 0):].sum())
            postfix = {"divergent": n_div}
            if ess_target is not None:
                z = {k: np.swapaxes(np.concatenate([c["z"][k] for c in chunks])[num_warmup:done], 0, 1)
                     for k in chunks[0]["z"]}
                ess_min, rhat_max = _min_ess_max_rhat(z, names or sorted(z))
                postfix["min_ess"] = f"{ess_min:.0f}/{ess_target:.0f}"
                if ess_min >= ess_target and not rhat_max > RHAT_STOP and kept >= min(num_samples, max(2 * length, 50)):
                    stopped_by = "ess_target"
            bar.set_postfix(postfix, refresh=False)
        bar.update(min(done, total) - before)
        if stopped_by == "ess_target":
            break
    bar.close()
    t_run = time.perf_counter() - t0
    n_kept = min(done, total) - num_warmup
    stats = {k: np.concatenate([c[k] for c in chunks]) for k in ("potential_energy", "energy", "diverging",
                                                                  "num_steps", "accept_prob", "step_size")}
    z_all = {k: np.concatenate([c["z"][k] for c in chunks]) for k in chunks[0]["z"]}
    n_grad = int(stats["num_steps"][: num_warmup + n_kept].sum())
    draws = slice(num_warmup, num_warmup + n_kept)
    z = {k: np.swapaxes(v[draws], 0, 1) for k, v in z_all.items()}  # (chain, draw, ...)
    stats = {k: np.swapaxes(v[draws], 0, 1) for k, v in stats.items()}
    sample_stats = {
        "diverging": stats["diverging"],
        "lp": -stats["potential_energy"],
        "energy": stats["energy"],
        "n_steps": stats["num_steps"],
        "tree_depth": np.ceil(np.log2(stats["num_steps"] + 1)).astype(int),
        "acceptance_rate": stats["accept_prob"],
        "step_size": stats["step_size"],
    }
    idata = idata_from_samples(model, postprocess, z, sample_stats, model_args, model_kwargs,
                               batch_size=post_batch, program=post_job.result())
    if posterior_predictive:
        add_posterior_predictive(idata, model, jax.random.fold_in(key, 1), model_args, model_kwargs)
    wall = time.perf_counter() - start
    set_attrs(idata, {
        "engine": "nuts",
        "num_chains": num_chains,
        "num_warmup": num_warmup,
        "num_samples": int(n_kept),
        "max_num_samples": num_samples,
        "ess_target": float(ess_target) if ess_target is not None else float("nan"),
        "stopped_by": stopped_by,
        "target_accept": float(target_accept),
        "wall_time_s": float(wall),
        "init_time_s": float(t_init),
        "compile_time_s": float(t_compile),
        "warmup_time_s": float(t_warm),
        "sampling_time_s": float(t_run - t_warm),
        "gradient_evaluations": n_grad,
        "n_devices": n_dev,
        "n_processes": n_proc,
        "gather_time_s": float(t_gather),
        "pooled_mass_windows": n_pooled,
        "pooled_step_size_chunks": n_step_pooled,
    })
    if var_names is None:
        var_names = sorted(z)
    if check:
        diag = check_diagnostics(idata, var_names)
        set_attrs(idata, {f"diag_{k}": v for k, v in diag.items()})
    return idata
