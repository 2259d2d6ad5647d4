"""Weight initialization in a deep (10-layer) network: Xavier/He vs too small vs too large.

    python examples/initialization.py [--epochs 10]

Each layer computes a = g(W a_prev + b). With n inputs per unit, Var(W a_prev) ≈ n Var(W) Var(a_prev):
unless n Var(W) ≈ 1 (tanh: Xavier/Glorot, Var(W) = 1/n or 2/(n_in + n_out)) or 2 (ReLU, which
zeroes half its inputs: He, Var(W) = 2/n), the signal shrinks or grows geometrically with depth,
and so does the gradient flowing back:

* too small (std 0.01): activations vanish layer by layer, the gradients of the first layers
  are ~1e-11, and the loss stays at ln(10) = 2.3 (guessing).
* too large (std 1.0): ReLU activations grow ~5x per layer and the first gradients overflow
  (NaN); tanh units saturate at +-1 and the backward pass turns chaotic: the first layer's
  gradient is hundreds of times the last one's, and SGD thrashes.
* right (Glorot for tanh, He for ReLU): activations keep their scale through all 10 layers and
  the first and last layers get gradients of the same size, so they all learn.

The columns: the spread of the activations at hidden layers 1, 5 and 10 before training; the
mean gradient norms of the first and last hidden kernels in epoch 1 (fit's
track_gradient_norms=True); the training loss; the dev accuracy.
"""

import argparse

import numpy as np

import lamina as lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()

x, y = lm.datasets.load_digits()
x = lm.data.Standardizer().fit_transform(x)  # inputs with variance 1, so only the weights matter
(x_train, y_train), (x_dev, y_dev), _ = lm.data.train_dev_test_split(x, y, ratios=(0.8, 0.2, 0.0), stratify=y, seed=0)
DEPTH, WIDTH = 10, 64

def build(activation, initializer):
    layers = [lm.layers.Dense(WIDTH, activation=activation, input_shape=(64,), kernel_initializer=initializer)]
    layers += [lm.layers.Dense(WIDTH, activation=activation, kernel_initializer=initializer) for _ in range(DEPTH - 1)]
    model = lm.Sequential(layers + [lm.layers.Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model

def set_normal(model, std):
    # lamina has no RandomNormal(stddev) initializer, so draw the bad weights with numpy.
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, std, w.shape) if w.ndim == 2 else np.zeros(w.shape) for w in model.get_weights()])

def activation_std(model, x):
    """Standard deviation of each hidden layer's output, by a numpy forward pass."""
    g = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
    stds, a = [], x
    for layer in model.layers[:-1]:
        a = g[layer.activation](a @ layer.kernel + layer.bias)
        stds.append(a.std())
    return stds

print(f"{DEPTH} hidden layers of {WIDTH} units, plain SGD (lr 0.01, batch 32), {args.epochs} epochs")
print(f"{'activation / init':36s} {'std of a[1]':>11} {'a[5]':>9} {'a[10]':>9} {'|dW1| ep.1':>11} {'|dW10|':>9} "
      f"{'loss ep.1':>9} {'ep.' + str(args.epochs):>9} {'dev acc':>8}")
for activation, good in (("tanh", "glorot_normal"), ("relu", "he_normal")):
    for label, std in ((good + " (right)", None), ("normal, std 0.01 (too small)", 0.01), ("normal, std 1.0 (too large)", 1.0)):
        model = build(activation, good)
        if std is not None:
            set_normal(model, std)
        stds = activation_std(model, x_train)
        with np.errstate(all="ignore"):
            h = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0,
                          track_gradient_norms=True).history
        first, last = model.layers[0].name, model.layers[DEPTH - 1].name
        _, accuracy = model.evaluate(x_dev, y_dev)
        print(f"{activation + ', ' + label:36s} {stds[0]:>11.2g} {stds[4]:>9.2g} {stds[DEPTH - 1]:>9.2g} "
              f"{h['gradient_norm/' + first][0]:>11.2g} {h['gradient_norm/' + last][0]:>9.2g} "
              f"{h['loss'][0]:>9.3g} {h['loss'][-1]:>9.3g} {accuracy:>8.3f}")
