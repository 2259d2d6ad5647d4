"""The ``lamina`` command: train a dense network on a dataset and report test accuracy.

    lamina train                                   # the bundled 8x8 digits, offline, seconds
    lamina train --data fashion-mnist --hidden 512 --epochs 5 --batch-size 128
    lamina train --data fashion-mnist --hidden 512 256 --dropout 0.2 --l2 1e-5 \\
                 --validation-split 0.1 --early-stopping 3 --epochs 30
    mpiexec -n 2 lamina train --distributed        # data-parallel over MPI (pip install "lamina[mpi]")
    lamina info                                    # version, GEMM kernel, OpenMP, threads
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List, Optional, Tuple, cast

import numpy as np

import lamina as lm

# Per-dataset defaults: (hidden sizes, epochs, batch size).
_DEFAULTS = {"digits": ([128], 30, 32), "fashion-mnist": ([512], 5, 128), "mnist": ([512], 5, 128)}


def _load(name: str, path: Optional[str]) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray], int]:
    """((x_train, y_train), (x_test, y_test), n_classes) with features scaled for training."""
    if name == "digits":
        if path is not None:
            raise ValueError("--data-path is for fashion-mnist and mnist; digits ships with lamina")
        x, y = lm.datasets.load_digits()
        x = x / np.float32(16)  # pixel intensities 0..16 to [0, 1]
        (x_tr, y_tr), _, (x_te, y_te) = lm.data.train_dev_test_split(x, y, ratios=(0.8, 0.0, 0.2), stratify=y, seed=0)
        return (x_tr, y_tr), (x_te, y_te), 10
    loader = lm.datasets.load_fashion_mnist if name == "fashion-mnist" else lm.datasets.load_mnist
    if name == "mnist" and path is None:
        raise SystemExit("lamina: --data mnist needs --data-path (a folder with the four IDX .gz files)")
    (x_tr, y_tr), (x_te, y_te) = loader(path) if path else loader()
    # Pixels to [0, 1], each image flattened to 784 features, as in the Keras MNIST example.
    return ((x_tr.reshape(len(x_tr), -1) / np.float32(255), y_tr),
            (x_te.reshape(len(x_te), -1) / np.float32(255), y_te), 10)


def _positive_int(text: str) -> int:
    """argparse type for counts that must be at least 1 (argparse names the option on error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, received {value}")
    return value


def _check_save_path(path: str) -> None:
    """Refuses a --save path that cannot be written, before training rather than after it."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"--save {path!r} is a directory: give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"--save {path!r}: the folder {directory!r} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"--save {path!r}: the folder {directory!r} is not writable")


def _fit_or_interrupt(model: lm.Sequential, args: argparse.Namespace, **fit_args: object) -> bool:
    """Runs fit; on Ctrl-C prints one line, saves the model as of its last completed step when
    --save was given, and returns False (fit leaves the weights and optimizer state there)."""
    try:
        model.fit(**fit_args)  # type: ignore[arg-type]
        return True
    except KeyboardInterrupt:
        where = f"after {model.epochs_trained} complete epochs"
        if args.save:
            model.save(args.save)
            print(f"lamina: interrupted {where}; saved the weights of the last completed step to {args.save}",
                  file=sys.stderr)
        else:
            print(f"lamina: interrupted {where}; nothing saved (no --save)", file=sys.stderr)
        return False


def _train(args: argparse.Namespace) -> int:
    hidden, epochs, batch_size = _DEFAULTS[args.data]
    hidden = args.hidden or hidden
    epochs = args.epochs if args.epochs is not None else epochs
    batch_size = args.batch_size or batch_size
    if args.save:
        _check_save_path(args.save)
    # Every rank loads the whole data set (so a --standardize fit is the same everywhere) and
    # trains on its shard; rank 0 alone prints and saves.
    ctx = lm.distributed.init() if args.distributed else None
    root = ctx is None or ctx.is_root
    say = print if root else (lambda *a, **k: None)
    if args.threads:
        lm.set_num_threads(args.threads)
    (x_train, y_train), (x_test, y_test), n_classes = _load(args.data, args.data_path)
    if ctx is not None:
        say(f"lamina: distributed over {ctx.size} ranks, batch size {batch_size} per rank "
            f"(global batch {ctx.size * batch_size}); the learning rate is not scaled")
    say(f"lamina {lm.__version__} ({lm.build_info()['gemm_kernel']} kernel, {lm.get_num_threads()} threads): "
          f"{args.data}, {len(x_train):,} training and {len(x_test):,} test samples, {x_train.shape[1]} features")

    model = lm.Sequential(seed=args.seed)
    model.add(lm.layers.Input(shape=(x_train.shape[1],)))
    init = "he_uniform" if args.activation in ("relu", "leaky_relu", "elu", "gelu") else "glorot_uniform"
    for units in hidden:
        reg = lm.regularizers.L2(args.l2) if args.l2 else None
        model.add(lm.layers.Dense(units, activation=args.activation, kernel_initializer=init, kernel_regularizer=reg))
        if args.dropout:
            model.add(lm.layers.Dropout(args.dropout))
    model.add(lm.layers.Dense(n_classes, activation="softmax"))
    if args.standardize:
        model.attach_standardizer(lm.data.Standardizer().fit(x_train))
    optimizer = lm.optimizers.get(args.optimizer)
    if args.learning_rate is not None:
        optimizer.learning_rate = args.learning_rate
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks: List[lm.callbacks.Callback] = []
    if args.early_stopping:
        if not args.validation_split:
            raise SystemExit("lamina: --early-stopping needs --validation-split")
        callbacks.append(lm.callbacks.EarlyStopping(monitor=args.monitor, patience=args.early_stopping,
                                                    restore_best_weights=True))
    model.summary(print_fn=say)
    started = time.perf_counter()
    x_fit, y_fit = (x_train, y_train) if ctx is None else ctx.shard(x_train, y_train)
    if not _fit_or_interrupt(model, args, x=x_fit, y=y_fit, batch_size=batch_size, epochs=epochs,
                             verbose=args.verbose, validation_split=args.validation_split, callbacks=callbacks,
                             distributed=ctx):
        return 130
    seconds = time.perf_counter() - started
    loss, accuracy = cast(List[float], model.evaluate(x_test, y_test))  # the replicas are identical: the same numbers
    trained = len(x_train) * (1 - args.validation_split) * model.epochs_trained
    say(f"trained {model.epochs_trained} epochs in {seconds:.1f} s ({trained / seconds:,.0f} samples/s)")
    say(f"test loss {loss:.4f} - test accuracy {accuracy:.4f}")
    if args.save and root:
        model.save(args.save)
        say(f"saved the model to {args.save}")
    return 0


def _info(args: argparse.Namespace) -> int:
    for key, value in lm.build_info().items():
        print(f"{key}: {value}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description="Train dense neural networks fast on the CPU.")
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train a classifier and report its test accuracy (the default command)")
    train.add_argument("--data", choices=sorted(_DEFAULTS), default="digits",
                       help="dataset: digits (bundled, offline), fashion-mnist, mnist (default: digits)")
    train.add_argument("--data-path", help="folder holding the four IDX files of fashion-mnist or mnist "
                       "(then nothing is downloaded); not for digits")
    train.add_argument("--hidden", type=int, nargs="+", help="hidden layer sizes (default: 128 for digits, 512 otherwise)")
    train.add_argument("--activation", default="relu", choices=lm.activations.NAMES, help="hidden activation")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=_positive_int)
    train.add_argument("--optimizer", default="rmsprop", choices=lm.optimizers.NAMES)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--dropout", type=float, default=0.0, help="dropout rate after each hidden layer")
    train.add_argument("--l2", type=float, default=0.0, help="L2 penalty on each hidden kernel")
    train.add_argument("--validation-split", type=float, default=0.0)
    train.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE", help="stop when val_loss stalls this many epochs")
    train.add_argument("--monitor", default="val_loss", help="what early stopping watches (default: val_loss)")
    train.add_argument("--standardize", action="store_true", help="standardize features with the training set's statistics")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=_positive_int)
    train.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    train.add_argument("--distributed", action="store_true",
                       help="train data-parallel over MPI, launched as mpiexec -n N lamina train --distributed "
                            '(needs pip install "lamina[mpi]"); --batch-size is per rank')
    train.add_argument("--save", help="write the trained model to this file (checked before training; "
                       "Ctrl-C saves the last completed step)")
    train.set_defaults(func=_train)
    info = sub.add_parser("info", help="print how this build runs")
    info.set_defaults(func=_info)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["train"] + argv
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, OSError) as exc:
        print(f"lamina: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside fit (loading data, evaluating): nothing to save
        print("lamina: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
