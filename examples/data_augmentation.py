"""Data augmentation as a regularizer: the same network on Fashion-MNIST with and without random
flips and shifts of its training images, and the overfitting gap (train minus validation
accuracy) it closes.

    python examples/data_augmentation.py [--quick] [--plot-dir DIR]

Each run trains a 784-512-256-10 ReLU network with Adam on the first 10,000 training images
(few enough for it to overfit) and validates on 10,000 others. The augmented run puts two layers
in front of it:

    lm.layers.Input(shape=(28, 28)),
    lm.layers.RandomFlip("horizontal"),          # a mirrored shirt is still a shirt
    lm.layers.RandomTranslation(0.1, 0.1),       # shifted by up to 10% of the height and width

They act only in fit, on each batch as it is drawn (a new flip and shift per image every
epoch), inside the C++ training loop; predict and evaluate see the images as they are. Vertical
flips are left out: an upside-down ankle boot is not a boot any more.

The gap is measured on the un-augmented training images (``evaluate`` at each epoch's end), so
both runs are scored alike. See README ("Data augmentation") for the measured curves and times.
"""

import argparse
import os
import time

import numpy as np

import lamina as lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="3,000 images and 6 epochs (for the tests)")
parser.add_argument("--plot-dir", help="save both runs' learning curves there as data_augmentation.png")
parser.add_argument("--epochs", type=int, default=40)
args = parser.parse_args()

(x_all, y_all), (x_test, y_test) = lm.datasets.load_fashion_mnist()
x_all = x_all.astype("float32") / 255  # (60000, 28, 28): the model takes the images as they are
x_test = x_test.astype("float32") / 255
n_train, epochs = (3000, 6) if args.quick else (10000, args.epochs)
x_train, y_train = x_all[:n_train], y_all[:n_train]
x_val, y_val = x_all[50000:], y_all[50000:]


class CleanTrainAccuracy(lm.callbacks.Callback):
    """Adds ``clean_accuracy``: accuracy on the training images without augmentation."""

    def on_epoch_end(self, epoch, logs=None):
        logs["clean_accuracy"] = self.model.evaluate(x_train, y_train, batch_size=1024, return_dict=True)["accuracy"]


def train(augment):
    front = [lm.layers.RandomFlip("horizontal"), lm.layers.RandomTranslation(0.1, 0.1)] if augment else []
    model = lm.Sequential([lm.layers.Input(shape=(28, 28)), *front, lm.layers.Flatten(),
                           lm.layers.Dense(512, activation="relu", kernel_initializer="he_uniform"),
                           lm.layers.Dense(256, activation="relu", kernel_initializer="he_uniform"),
                           lm.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    started = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=128, epochs=epochs, validation_data=(x_val, y_val),
                        callbacks=[CleanTrainAccuracy()], verbose=0)
    seconds = time.perf_counter() - started
    return model, history, seconds


runs = {}
for label, augment in (("plain", False), ("augmented", True)):
    model, history, seconds = train(augment)
    h = history.history
    gap = np.array(h["clean_accuracy"]) - np.array(h["val_accuracy"])
    last = slice(-max(1, epochs // 5), None)  # the last fifth of the epochs: the curves have settled
    runs[label] = dict(history=h, gap=gap)
    test_accuracy = model.evaluate(x_test, y_test, return_dict=True)["accuracy"]
    print(f"{label:9s}: {seconds:5.1f} s, final train (clean) {h['clean_accuracy'][-1]:.4f}, "
          f"val {h['val_accuracy'][-1]:.4f}, gap {gap[-1]:+.4f} (mean of the last epochs {gap[last].mean():+.4f}), "
          f"best val {max(h['val_accuracy']):.4f}, test {test_accuracy:.4f}")

last = slice(-max(1, epochs // 5), None)
plain_gap, augmented_gap = runs["plain"]["gap"][last].mean(), runs["augmented"]["gap"][last].mean()
print(f"overfitting gap (train - validation accuracy, last epochs): plain {plain_gap:+.4f}, "
      f"augmented {augmented_gap:+.4f}: {'shrinks' if augmented_gap < plain_gap else 'does not shrink'}")

if args.plot_dir:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
    else:
        os.makedirs(args.plot_dir, exist_ok=True)
        fig, (curves, gaps) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
        x_axis = np.arange(1, epochs + 1)
        for (label, run), color in zip(runs.items(), ("tab:red", "tab:blue")):
            curves.plot(x_axis, run["history"]["clean_accuracy"], color=color, label=f"{label}: train")
            curves.plot(x_axis, run["history"]["val_accuracy"], color=color, linestyle="--", label=f"{label}: validation")
            gaps.plot(x_axis, run["gap"], color=color, label=label)
        curves.set(xlabel="epoch", ylabel="accuracy", title="learning curves")
        gaps.set(xlabel="epoch", ylabel="train - validation accuracy", title="overfitting gap")
        curves.legend()
        gaps.legend()
        path = os.path.join(args.plot_dir, "data_augmentation.png")
        fig.savefig(path, dpi=100)
        print(f"saved {path}")
