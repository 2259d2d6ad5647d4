"""Gradient checking: compare backprop with two-sided differences, and see what a bug looks like.

    python examples/gradient_checking.py

For every parameter theta_k, the numerical derivative (J(theta + eps e_k) - J(theta - eps e_k)) / 2 eps
is compared with backprop's d theta_k, all at once:

    difference = ||approx - grad|| / (||approx|| + ||grad||)

Rule of thumb (computed in float64): below 1e-7 is right, ~1e-5 deserves a look, 1e-3 and
above is a bug. Gradient checking is slow (two forward passes per parameter), so use it
to debug on a few samples, never during training; lamina runs it with dropout off.
"""

import lamina as lm

# A few real samples: 8 bundled 8x8 digits, pixels scaled to [0, 1].
x, y = lm.datasets.load_digits()
x, y = x[:8] / 16.0, lm.utils.to_categorical(y[:8], 10)

# A small network with everything that takes part in backprop: two activations, softmax +
# cross-entropy, and an L2 penalty (its gradient 2 * lambda * W must be in backprop too).
model = lm.Sequential([
    lm.layers.Dense(16, activation="tanh", input_shape=(64,), name="hidden",
                    kernel_regularizer=lm.regularizers.L2(1e-3)),
    lm.layers.Dense(12, activation="relu", name="hidden_2"),
    lm.layers.Dense(10, activation="softmax", name="output"),
], seed=0)
model.compile(optimizer="adam", loss="categorical_crossentropy")
# Check at a point that is not the random start too: train a few steps first.
model.fit(x, y, batch_size=8, epochs=5, verbose=0)
print(f"checking all {model.count_params()} parameters on {len(x)} samples")

# 1) The real backprop passes. With the course's eps = 1e-7 the difference is a few 1e-8: that
#    is float64 round-off in J(theta +- eps), divided by a tiny 2 eps. A larger eps = 1e-5 shrinks
#    the round-off (and the truncation error, O(eps^2), stays negligible): about 1e-10.
report = lm.gradient_check(model, x, y)
print(f"backprop, eps=1e-7: difference = {report.difference:.2e} -> {'passed' if report.passed else 'FAILED'}")
report = lm.gradient_check(model, x, y, epsilon=1e-5)
print(f"backprop, eps=1e-5: difference = {report.difference:.2e} -> {'passed' if report.passed else 'FAILED'}")

# 2) A deliberately broken backprop: pretend our backward pass forgot a factor of 2 somewhere
#    in the first layer's dW. simulate_bug scales that layer's kernel gradient before comparing.
broken = lm.gradient_check(model, x, y, epsilon=1e-5, simulate_bug=("hidden", 0.5))
print(f"dW of 'hidden' x0.5:  difference = {broken.difference:.2e} -> {'passed' if broken.passed else 'FAILED'}")
print("the parameters with the largest gaps point at the broken layer:")
for gap in broken.worst:
    print(f"  {gap.name:22s} backprop {gap.analytic:+.6f}  numerical {gap.numerical:+.6f}")

# 3) A subtler bug, 1% off in the output layer's dW: still far above the threshold.
subtle = lm.gradient_check(model, x, y, epsilon=1e-5, simulate_bug=("output", 1.01))
print(f"dW of 'output' x1.01: difference = {subtle.difference:.2e} -> {'passed' if subtle.passed else 'FAILED'}")
assert report.passed and not broken.passed and not subtle.passed
