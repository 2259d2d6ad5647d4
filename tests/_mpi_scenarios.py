"""Scenarios that tests/test_distributed.py runs under mpiexec: each rank trains and writes what it
got to OUT/<scenario>-rank<r>.npz (and .json), for the test to compare with one process.

    mpiexec -n 2 python tests/_mpi_scenarios.py OUT train     # the equivalence scenarios
    mpiexec -n 2 python tests/_mpi_scenarios.py OUT raise     # rank 1 raises in epoch 2
    mpiexec -n 2 python tests/_mpi_scenarios.py OUT kill      # rank 1 SIGKILLs itself in epoch 2
    mpiexec -n 2 python tests/_mpi_scenarios.py OUT run       # trains until stopped (Ctrl-C); OUT/started
    mpiexec -n 3 python tests/_mpi_scenarios.py OUT NAME      # one of SCENARIOS
"""

import json
import os
import signal
import sys

import numpy as np

import lamina as lm

BATCH = 4


def data(rows, seed, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 5))
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5) * (classes > 2)


def model(config, seed):
    layers = [lm.layers.Dense(7, activation="tanh", input_shape=(5,),
                              kernel_regularizer=lm.regularizers.L2(config.get("l2", 0.0)))]
    if config.get("dropout"):
        layers.append(lm.layers.Dropout(config["dropout"]))
    layers.append(lm.layers.Dense(3, activation="softmax"))
    m = lm.Sequential(layers, seed=seed, dtype=config.get("dtype", "float64"))
    m.compile(optimizer=lm.optimizers.get(config["optimizer"]), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


# name -> config; "rows": every rank's shard size (rank r trains rows[r] rows of the shared data)
SCENARIOS = {
    "adam_l2_validation": {"optimizer": {"name": "adam", "learning_rate": 0.01}, "l2": 1e-3,
                           "rows": [16, 16], "epochs": 3, "validation": True, "seeds_differ": True},
    "sgd_momentum_clipnorm_dropout": {"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                                                    "clipnorm": 0.05}, "dropout": 0.3, "rows": [12, 12], "epochs": 2},
    "rmsprop_uneven_zero_row_step": {"optimizer": {"name": "rmsprop", "learning_rate": 0.01},
                                     "l2": 1e-3, "rows": [10, 6], "epochs": 2, "dropout": 0.2},
    "adam_float32": {"optimizer": {"name": "adam", "learning_rate": 0.01}, "dtype": "float32",
                     "rows": [16, 16], "epochs": 2},
    "adam_shuffled": {"optimizer": {"name": "adam", "learning_rate": 0.01}, "rows": [13, 11],
                      "epochs": 2, "shuffle": True, "seeds_differ": True},
}


def shards(config, size):
    """The shared data and each rank's (start, stop) in it: rank r's rows follow rank r-1's."""
    rows = config["rows"][:size] + [config["rows"][-1]] * (size - len(config["rows"]))
    x, y = data(sum(rows), seed=1)
    bounds = np.concatenate([[0], np.cumsum(rows)])
    return x, y, [(int(bounds[r]), int(bounds[r + 1])) for r in range(size)]


def train(ctx, out, names):
    for name in names:
        config = SCENARIOS[name]
        x, y, where = shards(config, ctx.size)
        start, stop = where[ctx.rank]
        m = model(config, seed=10 + ctx.rank if config.get("seeds_differ") else 10)
        if ctx.rank == 1:  # state the broadcast must overwrite: other weights, optimizer state, counters
            m.train_on_batch(*data(3, seed=99))
        val = None
        if config.get("validation"):
            xv, yv = data(8 * ctx.size, seed=2)
            val = ctx.shard(xv, yv)
        h = m.fit(x[start:stop], y[start:stop], batch_size=BATCH, epochs=config["epochs"], verbose=0,
                  shuffle=config.get("shuffle", False), validation_data=val, distributed=ctx)
        np.savez(f"{out}/{name}-rank{ctx.rank}.npz", params=m.get_state()["params"])
        with open(f"{out}/{name}-rank{ctx.rank}.json", "w") as f:
            json.dump(h.history, f)


def stopping(ctx, out):
    """EarlyStopping and ReduceLROnPlateau on the global loss act alike on every rank (stop in the
    same epoch, the same learning rates); files from rank 0 only."""
    x, y = data(16, seed=3 + ctx.rank)
    m = model(SCENARIOS["adam_float32"], seed=10)
    stop = lm.callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=1)
    files = [lm.callbacks.ModelCheckpoint(f"{out}/checkpoint-rank{ctx.rank}.lamina"),
             lm.callbacks.CSVLogger(f"{out}/log-rank{ctx.rank}.csv")]
    plateau = lm.callbacks.ReduceLROnPlateau(monitor="loss", min_delta=10.0, patience=1, factor=0.5)
    h = m.fit(x, y, batch_size=BATCH, epochs=10, verbose=0, callbacks=[stop, plateau, *files], distributed=ctx)
    with open(f"{out}/stopping-rank{ctx.rank}.json", "w") as f:
        json.dump({"epochs": len(h.epoch), "stopped_epoch": stop.stopped_epoch, "loss": h.history["loss"],
                   "learning_rate": float(m.optimizer.learning_rate)}, f)


def mismatch(ctx, out):
    """A setup that differs across ranks raises the same error everywhere, before any step."""
    x, y = data(8, seed=4)
    m = model(SCENARIOS["adam_float32"], seed=10)
    messages = []
    bad_x = x.copy()
    bad_x[3, 1] = np.nan if ctx.rank == 1 else bad_x[3, 1]  # refused by rank 1's argument checks only
    for args in ({"x": x, "batch_size": BATCH + ctx.rank}, {"x": bad_x, "batch_size": BATCH}):
        try:
            m.fit(y=y, epochs=1, verbose=0, distributed=ctx, **args)
            messages.append(None)
        except ValueError as error:
            messages.append(str(error))
    with open(f"{out}/mismatch-rank{ctx.rank}.json", "w") as f:
        json.dump({"messages": messages, "iterations": int(m._net.iterations)}, f)


def setup(ctx, out):
    """What init chose and reports, and init's check of its argument."""
    try:
        lm.distributed.init("not a communicator")
        refused = None
    except TypeError as error:
        refused = str(error)
    with open(f"{out}/setup-rank{ctx.rank}.json", "w") as f:
        json.dump({"build_info": lm.build_info()["distributed"], "threads": lm.get_num_threads(),
                   "refused": refused}, f)


class Fail(lm.callbacks.Callback):
    def __init__(self, rank, how, out):
        super().__init__()
        self.rank, self.how, self.out = rank, how, out

    def on_train_begin(self, logs=None):
        if self.rank == 0:
            open(f"{self.out}/started", "w").close()

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1 and self.rank == 1 and self.how != "run":
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("a failure on rank 1 in epoch 2")


def fail(ctx, how, out):
    x, y = data(4000, seed=5)
    m = model(SCENARIOS["adam_float32"], seed=10)
    m.fit(x, y, batch_size=BATCH, epochs=1000, verbose=0, callbacks=[Fail(ctx.rank, how, out)], distributed=ctx)


if __name__ == "__main__":
    out, what = sys.argv[1], sys.argv[2]
    ctx = lm.distributed.init()
    if what == "train":
        train(ctx, out, list(SCENARIOS))
        stopping(ctx, out)
        mismatch(ctx, out)
        setup(ctx, out)
    elif what in SCENARIOS:
        train(ctx, out, [what])
    else:
        fail(ctx, what, out)
