"""Synchronous data-parallel training over MPI, through mpi4py (``pip install "lamina[mpi]"``).

Every rank holds a replica of the model and its own shard of the data. Each training step, every
rank computes the gradient of its local batch, the gradient hook sums the ranks' gradients with
one MPI allreduce (weighted so the result is the exact mean over the global batch, with the
regularization term counted once), and every rank applies the same update, so the replicas stay
identical bit for bit::

    import lamina as lm
    ctx = lm.distributed.init()            # MPI.COMM_WORLD, or init(comm) for any mpi4py communicator
    x_local, y_local = ctx.shard(x, y)     # this rank's rows (or pass your own shard)
    model.fit(x_local, y_local, batch_size=64, epochs=5, distributed=ctx)
    if ctx.is_root:
        model.save("model.lamina")

launched as ``mpiexec -n 4 python -m mpi4py train.py``.

Semantics:

- ``batch_size`` is per rank; one step's global batch is the union of the ranks' local batches
  (up to ``size * batch_size`` rows). The learning rate is never scaled for you: the usual
  recipe for a larger global batch is linear scaling (``lr * size``) with a few epochs of
  warm-up (``callbacks.LearningRateScheduler``), and it is yours to apply.
- With ``shuffle=False``, R ranks give the weights of one process training on batches that are
  the concatenation of the ranks' local batch j, up to summation order (1e-12 relative in
  float64). With ``shuffle=True`` each rank shuffles its shard from (seed, epoch, rank), rank 0
  exactly as a single process would.
- At the start of ``fit`` the weights, optimizer state, step counters and the shuffle seed are
  broadcast from rank 0, after a fingerprint of the setup (layers, dtype, loss, optimizer,
  metrics, batch size, epochs, shuffle, ...) is compared across ranks: a mismatch raises the
  same ValueError on every rank instead of hanging.
- Uneven shards: every rank takes the same number of steps; a rank whose shard ran out takes
  zero-row steps that still join the reduction.
- Training and validation metrics are global (per-chunk statistics summed across ranks), so
  EarlyStopping and ReduceLROnPlateau decide alike everywhere. The progress display, CSVLogger
  and ModelCheckpoint act on rank 0 only (the display counts rank 0's samples: per-rank speed).
- Dropout: rank r draws the masks of rows ``[r * batch_size, ...)`` of the global batch, so with
  the same seed on every rank and full batches the masks are a single process's.
- An exception on any rank prints its traceback and ends the whole job through ``comm.Abort``:
  no rank is left waiting in a collective.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from lamina import _core

_INSTALL_HINT = 'distributed training needs mpi4py and an MPI library: pip install "lamina[mpi]"'
# Mixes the rank into the shuffle seed; rank 0 keeps the model's seed (a single process's shuffle).
_RANK_SEED_STRIDE = 0x9E3779B97F4A7C15

# Time for the launcher to forward a failing rank's traceback before Abort ends the job.
_ABORT_GRACE_SECONDS = 0.5

_active: Optional["Context"] = None  # the last init()'s context, reported by lm.build_info()


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"{_INSTALL_HINT} ({error})") from None
    return MPI


class Context:
    """One process's place in a distributed job: ``rank`` of ``size``, over ``comm`` (an mpi4py
    communicator). Pass it to ``fit(..., distributed=ctx)``."""

    def __init__(self, comm: Any, local_size: int, threads: int) -> None:
        self.comm = comm
        self.rank = int(comm.Get_rank())
        self.size = int(comm.Get_size())
        self.local_size = local_size  # ranks on this host
        self.threads = threads
        # Seconds this rank spent in the gradient allreduce over every distributed fit, waiting
        # for the slowest rank included (bench/distributed.py reports its share of an epoch).
        self.allreduce_seconds = 0.0

    @property
    def is_root(self) -> bool:
        """True on rank 0, the rank that shows progress and writes files."""
        return self.rank == 0

    def shard(self, x: Any, y: Any = None) -> Any:
        """This rank's contiguous block of rows of ``x`` (and ``y``): rows
        ``[rank * n // size, (rank + 1) * n // size)``, so shard sizes differ by at most one."""
        n = len(x)
        if y is not None and len(y) != n:
            raise ValueError(f"x and y must have the same number of rows, received {n} and {len(y)}")
        start, stop = self.rank * n // self.size, (self.rank + 1) * n // self.size
        return x[start:stop] if y is None else (x[start:stop], y[start:stop])

    def __repr__(self) -> str:
        return f"Context(rank={self.rank}, size={self.size}, local_size={self.local_size}, threads={self.threads})"


def init(comm: Any = None) -> Context:
    """Joins the MPI job (``MPI.COMM_WORLD``, or ``comm``: any mpi4py intracommunicator) and
    returns this rank's ``Context``.

    Unless ``OMP_NUM_THREADS`` says otherwise, each rank then uses (cores on its host) / (ranks
    on its host) threads, at least one, so ranks sharing a machine do not oversubscribe it;
    ``lm.build_info()["distributed"]`` reports the choice; ``lm.set_num_threads`` after ``init``
    overrides it. (Open MPI binds each rank to one core by default; launch with ``--bind-to none``
    for ranks to use several threads.)
    """
    MPI = _mpi()
    if comm is None:
        comm = MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"comm must be an mpi4py intracommunicator (such as MPI.COMM_WORLD), received {comm!r}")
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    local_size = int(local.Get_size())
    local.Free()
    if "OMP_NUM_THREADS" not in os.environ:
        _core.set_num_threads(max(1, (os.cpu_count() or 1) // local_size))
    global _active
    _active = Context(comm, local_size, int(_core.get_num_threads()))
    return _active


def launcher() -> str:
    """The ``mpiexec`` to start a job with: the mpich wheel's (``lamina[mpi]``) if installed,
    else the first on PATH. Raises FileNotFoundError when there is none."""
    import shutil
    from importlib import metadata

    try:
        for entry in metadata.files("mpich") or []:
            if entry.name == "mpiexec" and entry.parent.name == "bin":
                path = str(entry.locate())
                if os.path.exists(path):
                    return os.path.normpath(path)
    except metadata.PackageNotFoundError:
        pass
    found = shutil.which("mpiexec")
    if found is None:
        raise FileNotFoundError(f"no mpiexec found; {_INSTALL_HINT}")
    return found


def info() -> Optional[Dict[str, int]]:
    """What ``build_info()`` says about distributed training: None before ``init``."""
    if _active is None:
        return None
    return {"rank": _active.rank, "size": _active.size, "local_size": _active.local_size,
            "threads_per_rank": _active.threads}


# ---------------------------------------------------------------------------- fit's machinery

class GlobalStats:
    """A ``BatchStats`` summed over every rank: the fields metrics read."""

    def __init__(self, values: np.ndarray, classes: int, batches: int, gradient_norms: List[float]) -> None:
        loss_sum, samples, squared_error, absolute_error, elements = (float(v) for v in values[:5])
        self.loss_sum, self.squared_error, self.absolute_error = loss_sum, squared_error, absolute_error
        self.samples, self.elements = int(samples), int(elements)
        self.classes = classes
        self.confusion = values[5:].astype(np.int64).reshape(classes, classes)
        self.batches = batches
        self.gradient_norms = gradient_norms


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


@contextlib.contextmanager
def checked_together(ctx: Context) -> Iterator[None]:
    """Runs fit's argument checks on every rank, then tells every rank whether any refused its
    arguments (one allgather): the refusing rank raises its own error, the others a ValueError
    naming it, so no rank goes on into a collective the refusing one will never join."""
    try:
        yield
    except Exception as error:
        ctx.comm.allgather(f"{type(error).__name__}: {error}")
        raise
    for rank, message in enumerate(ctx.comm.allgather(None)):
        if message is not None:
            raise ValueError(f"distributed fit: rank {rank} refused its fit arguments ({message}); every rank stops")


class Run:
    """One distributed ``fit``: the collectives every rank makes in the same order."""

    def __init__(self, ctx: Context, model: Any, net: Any, n_rows: int, batch_size: int) -> None:
        self.ctx, self.comm, self.model, self.net = ctx, ctx.comm, model, net
        self.n_rows, self.batch_size = n_rows, batch_size
        self.MPI = _mpi()
        self._step = 0
        self.seed = model.seed
        self.weights = np.zeros(0)
        self.steps = 0

    def fingerprint(self, fit_args: Dict[str, Any]) -> Dict[str, Any]:
        """What must agree across ranks for their collectives to match, as comparable text."""
        m = self.model
        std = m.standardizer
        return {
            "layers": json.dumps(m.get_config()["layers"], sort_keys=True, default=str),
            "trainable": json.dumps([bool(getattr(l, "trainable", True)) for l in m.layers]),
            "dtype": m.dtype_policy.name,
            "compile": json.dumps(m.compile_config(), sort_keys=True, default=str),
            "parameters": str(self.net.param_count),
            "standardizer": "none" if std is None else _digest(np.concatenate([std.mean_, std.scale_])),
            **{name: json.dumps(value, default=str) for name, value in sorted(fit_args.items())},
        }

    def agree_on_setup(self, fit_args: Dict[str, Any]) -> None:
        """Compares the fingerprints (one allgather) and learns every rank's shard size; on a
        mismatch every rank raises the same ValueError, before any other collective."""
        mine = self.fingerprint(fit_args)
        everyone = self.comm.allgather((mine, self.n_rows))
        for rank, (theirs, _) in enumerate(everyone):
            for key in mine:
                base = everyone[0][0].get(key)
                if theirs.get(key) != base:
                    raise ValueError(f"distributed fit: rank {rank} disagrees with rank 0 on {key}: rank 0 has "
                                     f"{base}, rank {rank} has {theirs.get(key)}; every rank must build and compile "
                                     f"the same model and call fit with the same arguments")
        rows = np.array([n for _, n in everyone], dtype=np.int64)
        b = self.batch_size
        self.steps = int(max(-(-rows // b)))
        # Step j's local rows per rank, and this rank's share n_r / N of the global batch: the
        # weighted sum of the ranks' mean gradients (each with the penalty gradient once) is the
        # global mean plus the penalty gradient once, since the shares add up to one.
        j = np.arange(self.steps, dtype=np.int64)[:, None]
        local = np.clip(rows[None, :] - j * b, 0, b)
        self.weights = local[:, self.ctx.rank] / local.sum(axis=1)

    def broadcast_state(self) -> None:
        """Rank 0's weights, optimizer state, counters and shuffle seed on every rank."""
        net, m = self.net, self.model
        self.comm.Bcast(net.parameters(), root=0)
        slots = net.optimizer_slots()
        for slot in slots:
            self.comm.Bcast(slot, root=0)
        net.set_optimizer_slots(slots)
        counters = self.comm.bcast((int(net.iterations), int(net.steps), int(m.epochs_trained),
                                    float(net.learning_rate), int(m.seed)), root=0)
        net.iterations, net.steps, m.epochs_trained, lr, self.seed = counters
        if lr != net.learning_rate:
            net.learning_rate = lr

    def order(self, epoch: int) -> np.ndarray:
        """This rank's shuffle of its shard for an epoch, from (rank 0's seed, epoch, rank)."""
        mixed = (self.seed + self.ctx.rank * _RANK_SEED_STRIDE) % 2**64
        return _core.shuffled_order(self.n_rows, mixed, epoch)

    def begin_epoch(self) -> None:
        self._step = 0

    def hook(self, user_hook: Any) -> Any:
        """The gradient hook: this rank's share of the step, then the sum over ranks, in place;
        then the user's own hook (if any) on the global gradient."""
        comm, SUM, IN_PLACE, ctx = self.comm, self.MPI.SUM, self.MPI.IN_PLACE, self.ctx

        def allreduce(grad: np.ndarray, step: int) -> None:
            share = self.weights[self._step]
            self._step += 1
            if share != 1.0:  # share 0: a zero-row step, whose gradient holds the penalty only
                _core.scale_in_place(grad, float(share))
            started = time.perf_counter()
            comm.Allreduce(IN_PLACE, grad, op=SUM)
            ctx.allreduce_seconds += time.perf_counter() - started
            if user_hook is not None:
                user_hook(grad, step)

        return allreduce

    def reduce(self, stats: Any) -> GlobalStats:
        """``stats`` summed over the ranks (one allreduce of a few numbers)."""
        k = int(stats.classes)
        values = np.concatenate([[stats.loss_sum, stats.samples, stats.squared_error, stats.absolute_error,
                                  stats.elements], np.asarray(stats.confusion, dtype=np.float64).ravel()])
        self.comm.Allreduce(self.MPI.IN_PLACE, values, op=self.MPI.SUM)
        return GlobalStats(values, k, int(stats.batches), list(stats.gradient_norms))

    def agree(self, stop: bool, chunk: int) -> Tuple[bool, int]:
        """After a chunk: stop if any rank stops; the next chunk's size is rank 0's (each rank
        sizes chunks from its own clock, and their boundaries must match)."""
        votes = np.array([1 if stop else 0, chunk if self.ctx.is_root else 0], dtype=np.int64)
        self.comm.Allreduce(self.MPI.IN_PLACE, votes, op=self.MPI.SUM)
        return bool(votes[0]), int(votes[1])

    @contextlib.contextmanager
    def abort_on_error(self) -> Iterator[None]:
        """Any exception (Ctrl-C included) on this rank ends the whole job: the other ranks may
        be waiting in a collective this rank will never join."""
        try:
            yield
        except BaseException:
            if self.ctx.size == 1:
                raise
            sys.stderr.write(f"lamina.distributed: rank {self.ctx.rank} of {self.ctx.size} failed; aborting the "
                             f"job:\n{traceback.format_exc()}")
            sys.stderr.flush()
            # The launcher forwards a rank's output through a pipe; Abort kills the ranks at once
            # and could drop the message still in it (seen about once in 20 with MPICH).
            time.sleep(_ABORT_GRACE_SECONDS)
            self.comm.Abort(1)
            raise
