"""Normalizing inputs: the same network and optimizer on raw features vs standardized ones.

    python examples/normalizing_inputs.py [--epochs 50] [--plot-dir DIR]

The data is MADE UP: house prices (in 100 k€) from four features on wildly different scales:
floor area (40-250 m²), distance to the centre (0.2-30 km, given in metres), rooms (1-7) and
year built (1900-2020). With raw inputs, the loss surface is a long, thin valley: the weights
of the large features (metres, years) get huge gradients, so the learning rate must be tiny to
avoid blowing up, and then the weights of the small features barely move. Standardizing each
feature to mean 0 and variance 1 makes the valley round, and a normal learning rate works.

Fit the Standardizer on the TRAINING split only, then apply that same transform to dev/test
(and to every future input): statistics from dev/test would leak into training.
"""

import argparse
import os

import numpy as np

import lamina as lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=50)
parser.add_argument("--plot-dir", help="save normalizing_inputs.png here (needs matplotlib)")
args = parser.parse_args()

rng = np.random.default_rng(0)
n = 2000
area, distance = rng.uniform(40, 250, n), rng.uniform(200, 30000, n)
rooms, year = rng.integers(1, 8, n).astype(float), rng.integers(1900, 2021, n).astype(float)
price = 0.02 * area - 0.0001 * distance + 0.2 * rooms + 0.01 * (year - 1900) + rng.normal(0, 0.3, n)
x = np.column_stack([area, distance, rooms, year])
y = price.reshape(-1, 1)
(x_train, y_train), (x_dev, y_dev), _ = lm.data.train_dev_test_split(x, y, ratios=(0.7, 0.15, 0.15), seed=0)
for name, mean, std in zip(("area m²", "distance m", "rooms", "year built"), x_train.mean(axis=0), x_train.std(axis=0)):
    print(f"{name:>10}: mean {mean:8.1f}, standard deviation {std:7.1f}")

def train(learning_rate, standardize):
    model = lm.Sequential([lm.layers.Dense(32, activation="relu", input_shape=(4,)), lm.layers.Dense(1)], seed=0)
    if standardize:
        # Learns mean and standard deviation from x_train only; the model then applies it to
        # every input of fit/evaluate/predict (and saves it), so raw dev data goes in below.
        model.attach_standardizer(lm.data.Standardizer().fit(x_train))
    model.compile(optimizer=lm.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0,
                        callbacks=[lm.callbacks.TerminateOnNaN()] if not standardize else None)
    return history.history["loss"], model.evaluate(x_dev, y_dev)

baseline = float(np.mean((y_dev - y_train.mean()) ** 2))
print(f"predicting the mean price gives a dev MSE of {baseline:.3f}")
print(f"\n{'inputs':12s} {'learning rate':>13} {'loss ep. 1':>10} {'ep. 5':>9} {'ep. ' + str(args.epochs):>9} {'dev MSE':>9}")
curves = {}
def report(name, lr, loss, dev):
    verdict = ("diverged (NaN/inf)" if not np.isfinite(dev) else
               "no better than predicting the mean" if dev > 0.95 * baseline else
               "not converged" if dev > 0.5 else "converged")
    print(f"{name:12s} {lr:>13.0e} {loss[0]:>10.3g} {loss[min(4, len(loss) - 1)]:>9.3g} {loss[-1]:>9.3g} "
          f"{dev:>9.3g}  {verdict}")
    curves[f"{name}, lr={lr:.0e}"] = loss

# Raw inputs: the usual learning rate blows up, so search downwards for one that does not.
for lr in (1e-2, 1e-5, 1e-7, 1e-8):
    report("raw", lr, *train(lr, standardize=False))
# (At 1e-2 and 1e-5 the first steps overshoot so far that every ReLU dies: the network ends up
# predicting one constant. At 1e-7 and 1e-8 most ReLUs still die early and the rest crawl.)
# Standardized inputs: the same network, the same optimizer, a normal learning rate.
report("standardized", 1e-2, *train(1e-2, standardize=True))

if args.plot_dir:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
    else:
        os.makedirs(args.plot_dir, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, loss in curves.items():
            if np.isfinite(loss).all():
                ax.plot(range(1, len(loss) + 1), loss, label=name)
        ax.set(xlabel="epoch", ylabel="training MSE", yscale="log")
        ax.legend()
        path = os.path.join(args.plot_dir, "normalizing_inputs.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"saved {path}")
