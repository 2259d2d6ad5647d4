"""One neuron, one bias: the loss is a parabola in the bias, and gradient descent rolls to its bottom.

    python examples/ice_cream_regression.py [--plot-dir DIR]

The data below is MADE UP for teaching: a dozen days of ice-cream sales against the day's
temperature. The model is a single linear neuron, sales ≈ w · x + b, where x is the temperature
in degrees above 25 °C, so the bias b reads as "sales on a 25 °C day" (and the two parameters
are on similar scales, which keeps plain gradient descent quick; see normalizing_inputs.py).
"""

import argparse
import os

import numpy as np

import lamina as lm

# Made-up data: temperature (°C) and ice creams sold that day.
temperature = np.array([14, 16, 17, 19, 21, 22, 24, 26, 27, 29, 31, 33], dtype=np.float64)
sales = np.array([112, 126, 131, 150, 162, 175, 186, 201, 205, 222, 236, 250], dtype=np.float64)
x = (temperature - 25.0).reshape(-1, 1)  # degrees above 25 °C
y = sales.reshape(-1, 1)

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--plot-dir", help="save ice_cream_bias_sweep.png here (needs matplotlib)")
args = parser.parse_args()

model = lm.Sequential([lm.layers.Dense(1, input_shape=(1,))], seed=0, dtype="float64")
model.compile(optimizer=lm.optimizers.SGD(learning_rate=0.02), loss="mean_squared_error")

# 1) Fix the weight (at the least-squares slope, so the best bias is the best bias overall)
#    and sweep ONE parameter, the bias: MSE(b) = mean((w x + b - y)^2) is a parabola in b.
w_fixed = float(np.polyfit(x[:, 0], y[:, 0], 1)[0])
biases = np.round(np.arange(120.0, 260.05, 0.1), 1)  # a step of 0.1
mse = []
for b in biases:
    model.set_weights([np.array([[w_fixed]]), np.array([b])])
    mse.append(model.evaluate(x, y))
mse = np.array(mse)
b_sweep = biases[np.argmin(mse)]
print(f"weight fixed at w = {w_fixed:.3f} ice creams per °C")
for b in (120, 150, 180, 190, 200, 230, 260):
    print(f"  bias {b:5.1f}  ->  MSE {mse[np.argmin(np.abs(biases - b))]:9.2f}")
print(f"sweep minimum: bias = {b_sweep:.1f}, MSE = {mse.min():.2f}")

# 2) Now let gradient descent find it, from w = 0, b = 0. The batch is every row (batch GD),
#    so each step follows the exact gradient of that same MSE: b <- b - lr * dMSE/db.
model.set_weights([np.zeros((1, 1)), np.zeros(1)])
history = model.fit(x, y, batch_size=len(x), epochs=500, verbose=0, shuffle=False)
w_gd, b_gd = model.get_weights()
loss = history.history["loss"]
print(f"gradient descent: loss {loss[0]:.1f} (step 1) -> {loss[49]:.2f} (step 50) -> {loss[-1]:.2f} (step 500)")
print(f"gradient descent lands at w = {w_gd[0, 0]:.3f}, bias = {b_gd[0]:.2f}")
print(f"bias from gradient descent {b_gd[0]:.2f} vs sweep minimum {b_sweep:.1f}: "
      f"{'same' if abs(b_gd[0] - b_sweep) <= 0.1 else 'DIFFERENT'} (within the sweep's step of 0.1)")

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
        ax.plot(biases, mse, label=f"MSE with w fixed at {w_fixed:.2f}")
        ax.axvline(b_gd[0], color="C1", linestyle="--", label=f"gradient descent: b = {b_gd[0]:.1f}")
        ax.set_xlabel("bias b (sales on a 25 °C day)")
        ax.set_ylabel("mean squared error")
        ax.legend()
        path = os.path.join(args.plot_dir, "ice_cream_bias_sweep.png")
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"saved {path}")
