"""Bias and variance, diagnosed from training vs dev error, then variance cured by regularization.

    python examples/bias_variance.py [--quick] [--plot-dir DIR]

Made-up 1-D regression: y = sin(x) + noise with standard deviation 0.3, so even the perfect model
has an MSE of 0.3^2 = 0.09 (the Bayes error). We have only 30 training points and 500 dev points.

* high bias (underfitting): training error well above the Bayes error. A bigger network or
  longer training helps; more data does not.
* high variance (overfitting): dev error well above the training error. More data or
  regularization helps (L2 shrinks the weights, Dropout forces redundancy, EarlyStopping
  keeps the weights of the epoch with the best dev loss); a bigger network does not.
"""

import argparse
import os

import numpy as np

import lamina as lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="fewer epochs (for the tests)")
parser.add_argument("--plot-dir", help="save bias_variance.png here (needs matplotlib)")
args = parser.parse_args()
epochs = 2000 if args.quick else 4000
BAYES = 0.09

rng = np.random.default_rng(1)
def make(n):
    x = rng.uniform(-3, 3, (n, 1))
    return x, np.sin(x) + rng.normal(0, 0.3, (n, 1))
x_train, y_train = make(30)
x_dev, y_dev = make(500)
x_more, y_more = make(300)  # what "get more data" would give us

def big(l2=0.0, dropout=0.0):
    """Two hidden layers of 128 ReLUs: ~17,000 weights for 30 points, plenty to memorize the noise."""
    reg = lm.regularizers.L2(l2) if l2 else None
    drop = lambda: [lm.layers.Dropout(dropout)] if dropout else []
    return ([lm.layers.Dense(128, activation="relu", input_shape=(1,), kernel_regularizer=reg)] + drop()
            + [lm.layers.Dense(128, activation="relu", kernel_regularizer=reg)] + drop() + [lm.layers.Dense(1)])

early = lm.callbacks.EarlyStopping(monitor="val_loss", patience=50, restore_best_weights=True)
experiments = [  # name, layers, training data, fit() extras
    ("one linear neuron", [lm.layers.Dense(1, input_shape=(1,))], (x_train, y_train), {}),
    ("2x128 ReLU", big(), (x_train, y_train), {}),
    ("2x128 + L2(0.1)", big(l2=0.1), (x_train, y_train), {}),
    ("2x128 + Dropout(0.1)", big(dropout=0.1), (x_train, y_train), {}),
    ("2x128 + EarlyStopping", big(), (x_train, y_train), {"validation_data": (x_dev, y_dev), "callbacks": [early]}),
    ("2x128, 10x the data", big(), (np.vstack([x_train, x_more]), np.vstack([y_train, y_more])), {}),
]
print(f"Bayes error (noise variance) = {BAYES}; MSE after up to {epochs} epochs of full-batch Adam")
print(f"{'model':24s} {'epochs':>6} {'train':>6} {'dev':>6} {'train-Bayes':>11} {'dev-train':>9}   diagnosis")
curves = {}
for name, layers, (x, y), extra in experiments:
    model = lm.Sequential(layers, seed=0)
    model.compile(optimizer=lm.optimizers.Adam(learning_rate=0.01), loss="mse")
    model.fit(x, y, batch_size=len(x), epochs=epochs, verbose=0, **extra)
    # Note: evaluate() includes any L2 penalty in the loss, so compare the plain MSE instead.
    train = float(np.mean((model.predict(x) - y) ** 2))
    dev = float(np.mean((model.predict(x_dev) - y_dev) ** 2))
    # "High" is a judgment call; here: a gap larger than the Bayes error (the noise) itself.
    # train - Bayes is the avoidable bias (negative: the model is fitting the noise);
    # dev - train is the variance.
    problems = [p for p, gap in (("high bias", train - BAYES), ("high variance", dev - train)) if gap > BAYES]
    print(f"{name:24s} {model.epochs_trained:>6} {train:6.3f} {dev:6.3f} {train - BAYES:11.3f} {dev - train:9.3f}   "
          f"{' + '.join(problems) or 'ok'}")
    curves[name] = model.predict(np.linspace(-3, 3, 300).reshape(-1, 1))

# Typically: the linear neuron has high bias (train 0.21 vs Bayes 0.09); the big network fits the
# noise (train 0.015 < 0.09) and has high variance (dev 0.16). L2 and early stopping bring dev
# down to ~0.11, dropout helps least on this tiny regression, and 10x the data works too.

if args.plot_dir:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
    else:
        os.makedirs(args.plot_dir, exist_ok=True)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.scatter(x_train, y_train, color="black", zorder=3, label="30 training points")
        grid = np.linspace(-3, 3, 300)
        for name in list(curves)[:5]:
            ax.plot(grid, curves[name], label=name)
        ax.legend(fontsize=8)
        path = os.path.join(args.plot_dir, "bias_variance.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"saved {path}")
