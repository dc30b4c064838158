"""Train an autoencoder on line drawings without labels and measure the topology its codes keep.

Protocol (labels are used only to score, and to fit the supervised linear probe):

1. draw a training, a held-out test and a validation set with
   :func:`bayesqcd.topology.sample_drawings`;
2. normalise every image without labels, the same for every method below
   (:func:`bayesqcd.topology.frames.prepare_images`, beside the other normalisations of that
   module): by default only its position (``shift_to_centroid``: the ink centroid to the
   centre), leaving size, stretch, shear, rotation and deformation to the model; or shape,
   position and size as well (``affine_normalise``: the ink's second moments made isotropic by an
   area-preserving linear map, which undoes stretch and shear, then the ink centroid to the centre
   and the farthest ink at a fixed radius; also the last two alone, ``centroid_normalise``, the
   bounding box, ``normalise_images``, or the principal axes, ``orient_images``); then stroke
   width (``stroke_normalise``: a Gaussian blur divided by its maximum);
3. train :class:`bayesqcd.nn.autoencoder.ConvAutoencoder` on the training images with the
   reconstruction loss, through :func:`bayesqcd.nn.train`; by default its code is invariant
   under turns of the image (orbit averaging over ``rotations`` turns, a pose angle for the
   decoder), and a penalty on changes of the code under random zooms and stretches of the
   drawing (``random_zoom_stretch``, :func:`bayesqcd.nn.autoencoder.invariance_penalty`)
   leaves size and aspect to three pose numbers that only the decoder reads;
4. represent every image by (a) its code, (b) its pixels, (c) its projection on the top
   ``latent`` principal components of the training pixels (and on the top 2), (d) the pixels of
   the drawing as generated, before the normalisation, and their top ``latent`` principal
   components, (e) five simple pixel statistics of the drawing as generated, (f) the radial ink
   profile of the normalised drawing (``radial_profile``);
5. for each representation (:mod:`.scoring`, scikit-learn): fit k-means and a Gaussian mixture
   with as many clusters as classes on the training features (whitened, full covariances; for
   raw pixels standardised, diagonal ones; restarts chosen by inertia / likelihood), assign the
   held-out images, and score the assignment with the Hungarian-matched accuracy and the NMI; fit
   a logistic-regression probe on the training features and report its held-out accuracy.

:func:`run_experiment` does all of it and returns the numbers with the model and the arrays;
:func:`run` also writes the results folder.
"""

from __future__ import annotations

import dataclasses
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

from bayesqcd.nn import train
from bayesqcd.nn.autoencoder import (ConvAutoencoder, encode_batch, invariance_penalty,
                                     reconstruction_loss)
from bayesqcd.report import ResultsDir, atomic_results_dir, results_dir, versions, write_json
from bayesqcd.studies.topology.config import SCHEDULES, Config
from bayesqcd.studies.topology.figures import plot_latent, plot_reconstructions
from bayesqcd.studies.topology.scoring import (evaluate_features, score_representations,
                                               single_statistic_probes)
from bayesqcd.topology import prepare_images, random_zoom_stretch, sample_drawings, stroke_normalise


def fit_autoencoder(k_init: PRNGKeyArray, k_train: PRNGKeyArray, x_train: Float[Array, "N H W"],
                    x_val: Float[Array, "M H W"], *, latent: int = 8,
                    channels: tuple[int, ...] = (16, 32, 32), hidden: int = 128, rotations: int = 16,
                    pose_dims: int = 0, invariance: float = 0.0, stroke_sigma: float | None = None,
                    steps: int = 1000, batch_size: int = 64, lr: float = 2e-3,
                    schedule: str = "cosine", checkpoint: str | os.PathLike[str] | None = None,
                    settings: dict[str, Any] | None = None, progress: bool = True):
    """Train a :class:`ConvAutoencoder` (``rotations`` > 0: with a rotation-invariant code) on
    ``x_train`` (Adam, minibatches with replacement, four steps per compiled call: convolutions
    run faster outside a loop on CPU); returns ``(model, TrainResult)``. ``schedule``: ``"constant"``
    learning rate ``lr``, or ``"cosine"`` decay from ``lr`` to ``lr / 20`` over the ``steps``.

    ``stroke_sigma``: :func:`stroke_normalise` every batch with this blur [px] (``x_train`` and
    ``x_val`` are then the drawings before it); ``None``: the images are used as given.
    ``invariance`` > 0: add ``invariance`` times the :func:`invariance_penalty` between the codes of
    the batch and of a :func:`random_zoom_stretch` of it (drawn before the stroke normalisation) to
    the reconstruction loss, so that the code does not follow the size and aspect of a drawing;
    the model's ``pose_dims`` pose numbers are left free to carry them to the decoder.
    ``settings``: JSON-ready description of the run, stored with the ``checkpoint``; resuming a
    checkpoint made with other settings is refused (:func:`bayesqcd.nn.train`).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if invariance < 0:
        raise ValueError(f"invariance must be >= 0, got {invariance}")
    rate = lr if schedule == "constant" else optax.cosine_decay_schedule(lr, max(steps, 1), 0.05)
    model = ConvAutoencoder(k_init, size=x_train.shape[-1], latent=latent, channels=channels,
                            hidden=hidden, rotations=rotations, pose_dims=pose_dims,
                            dtype=x_train.dtype)
    strokes = (lambda x: x) if stroke_sigma is None else partial(stroke_normalise, sigma=stroke_sigma)
    n = x_train.shape[0]

    def loss(m: ConvAutoencoder, batch: Array, key: PRNGKeyArray) -> Array:
        x = strokes(batch)
        value = reconstruction_loss(m, x)
        if invariance > 0:
            moved = strokes(jax.vmap(random_zoom_stretch)(jax.random.split(key, batch.shape[0]), batch))
            value = value + invariance * invariance_penalty(jax.vmap(m.encode)(x),
                                                            jax.vmap(m.encode)(moved))
        return value

    x_val = strokes(x_val)
    result = train(model, loss, lambda k: x_train[jax.random.randint(k, (batch_size,), 0, n)],
                   optax.adam(rate), steps, k_train, val_loss=lambda m: reconstruction_loss(m, x_val),
                   # windows of a multiple of the 4 steps per call: one compiled chunk length
                   eval_every=max(1, min(200, steps)), checkpoint=checkpoint, progress=progress,
                   desc="autoencoder", steps_per_call=4, settings=settings)
    return result.model, result


def settings_of(config: Config, checkpoint: bool = True) -> dict[str, Any]:
    """Every field of ``config`` as JSON-ready values (the drawing settings as a dict; without
    the checkpoint path when ``checkpoint`` is False)."""
    out = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    drawing = config.drawing
    out["drawing"] = {f.name: getattr(drawing, f.name) for f in dataclasses.fields(drawing)}
    out["channels"] = list(config.channels)
    if checkpoint:
        out["checkpoint"] = None if config.checkpoint is None else str(config.checkpoint)
    else:
        del out["checkpoint"]
    return out


def run_experiment(config: Config, *, progress: bool = True) -> dict[str, Any]:
    """The whole protocol of the module docstring, with the settings of ``config``.

    Returns a dict with ``summary`` (JSON-ready numbers), ``model``, ``history``, and the arrays
    ``codes_test``, ``labels_test``, ``images_test`` (normalised), ``codes_train``,
    ``labels_train``.
    """
    c, cfg = config, config.drawing
    n_train, n_test = c.n_train, c.n_test
    k_data, k_init, k_train, k_eval = jax.random.split(jax.random.PRNGKey(c.seed), 4)
    # one compiled call for the three sets: training, held-out test, validation
    drawings = sample_drawings(k_data, n_train + n_test + c.n_val, cfg)
    framed = prepare_images(drawings.images, c.frame, c.extent, None)
    x = framed if c.stroke_sigma is None else stroke_normalise(framed, c.stroke_sigma)
    x_tr, x_te, x_va = x[:n_train], x[n_train:n_train + n_test], x[n_train + n_test:]
    y_tr = np.asarray(drawings.labels[:n_train])
    y_te = np.asarray(drawings.labels[n_train:n_train + n_test])

    if c.invariance > 0:  # the random zooms come before the stroke normalisation, batch by batch
        train_x, val_x, sigma = framed[:n_train], framed[n_train + n_test:], c.stroke_sigma
    else:
        train_x, val_x, sigma = x_tr, x_va, None
    net = dict(latent=c.latent, channels=c.channels, hidden=c.hidden, rotations=c.rotations,
               pose_dims=c.pose_dims)
    model, result = fit_autoencoder(k_init, k_train, train_x, val_x, stroke_sigma=sigma,
                                    invariance=c.invariance, steps=c.steps,
                                    batch_size=c.batch_size, lr=c.lr, schedule=c.schedule,
                                    checkpoint=c.checkpoint, settings=settings_of(c, checkpoint=False),
                                    progress=progress, **net)
    z_tr, z_te = encode_batch(model, x_tr), encode_batch(model, x_te)
    raw_tr, raw_te = drawings.images[:n_train], drawings.images[n_train:n_train + n_test]
    scores = score_representations(k_eval, z_tr, z_te, x_tr, x_te, y_tr, y_te, cfg.n_classes,
                                   raw_tr, raw_te)
    # the same clustering of the codes scored on the validation set: the number to choose settings by
    y_va = np.asarray(drawings.labels[n_train + n_test:])
    validation = evaluate_features(k_eval, z_tr, y_tr, encode_batch(model, x_va), y_va, cfg.n_classes)
    history = result.history
    summary = {
        "n_classes": cfg.n_classes,
        "chance_accuracy": float(np.max(np.bincount(y_te, minlength=cfg.n_classes)) / n_test),
        "n_train": n_train, "n_test": n_test, "n_val": c.n_val, "latent": c.latent,
        "rotations": c.rotations, "pose_dims": c.pose_dims, "invariance": c.invariance,
        "frame": c.frame, "extent": c.extent, "stroke_sigma": c.stroke_sigma,
        "steps": result.steps,
        "checkpoint": c.checkpoint, "resumed_from_step": result.resumed_step,
        "final_train_loss": history["train_loss"][-1] if history["train_loss"] else None,
        "final_val_loss": history["val_loss"][-1] if history["val_loss"] else None,
        "initial_val_loss": float(eqx.filter_jit(reconstruction_loss)(ConvAutoencoder(
            k_init, size=cfg.size, dtype=x_tr.dtype, **net), x_va)),
        "scores": scores,
        "validation_scores_codes": validation,
        "single_statistic_probe_accuracy": single_statistic_probes(raw_tr, y_tr, raw_te, y_te),
        "config": {f: getattr(cfg, f) for f in cfg.__dataclass_fields__},
    }
    return {"summary": summary, "model": model, "history": history, "codes_test": z_te,
            "labels_test": y_te, "images_test": x_te, "codes_train": z_tr, "labels_train": y_tr}


def run(config: Config, out: str | os.PathLike[str] | ResultsDir | None = None, *,
        progress: bool = True) -> dict[str, Any]:
    """Run the study and, when ``out`` is given, write its results folder (atomically)::

        out/summary.json        matched accuracy, NMI, probe accuracy: codes vs pixels / PCA /
                                statistics (held-out set), the codes' scores on the validation set
        out/history.json        training and validation loss
        out/latent.png          held-out codes on their first two principal components, by class
        out/codes_test.npz      those codes (``codes``) and the true classes (``labels``)
        out/reconstructions.png held-out drawings, their reconstructions, the canonical frame

    ``out`` is checked first (:func:`bayesqcd.report.results_dir`: a new or empty folder, or a
    :class:`~bayesqcd.report.ResultsDir` made with ``overwrite``), before any work.

    Returns the summary (also with ``seed``, ``settings``: every field of ``config``,
    ``wall_time_s``: the experiment without the writing, and ``versions``). Runs in JAX's
    current precision (float32 by default; the study does not switch it).
    """
    if not isinstance(config, Config):
        raise TypeError("config must be a bayesqcd.studies.topology.Config, got "
                        f"{type(config).__name__}")
    out = results_dir(out)  # a bad results folder fails here, before any work
    start = time.time()
    result = run_experiment(config, progress=progress)
    summary = result["summary"]
    summary["seed"] = config.seed
    summary["settings"] = settings_of(config)
    summary["wall_time_s"] = time.time() - start
    summary["versions"] = versions()
    if out is not None:
        with atomic_results_dir(out) as tmp:
            _write(Path(tmp), result)
    return summary


def _write(tmp: Path, result: dict[str, Any]) -> None:
    summary = result["summary"]
    write_json(tmp / "summary.json", summary)
    write_json(tmp / "history.json", result["history"])
    np.savez(tmp / "codes_test.npz", codes=np.asarray(result["codes_test"]),
             labels=np.asarray(result["labels_test"]))
    c = summary["scores"]["codes"]
    plot_latent(result["codes_test"], result["labels_test"], tmp / "latent.png",
                title=f"held-out codes\nmatched accuracy: GMM {c['gmm_accuracy']:.2f}, "
                      f"k-means {c['kmeans_accuracy']:.2f}")
    plot_reconstructions(result["model"], result["images_test"], result["labels_test"],
                         tmp / "reconstructions.png")
