# %% [markdown]
# # Tutorial 12: gradient descent you can watch
#
# Training a network is walking downhill on a loss J(theta) over millions of weights theta, one step
# theta <- theta - alpha * grad J(theta) at a time. Millions of dimensions cannot be drawn, but two can, and
# the behaviour that matters already shows in two: a valley much steeper across than along, where the
# learning rate alpha is too small, right, or too large, and where momentum, RMSprop and Adam each take a
# different path. This tutorial draws those paths on the contours of a quadratic bowl. The steps are
# taken by tinyseg's own optimizers (`tinyseg.optimizers`), on a parameter with two entries: the very update
# rules that train the U-Nets of the other tutorials.
#
#     python tutorials/12_gradient_descent.py            # a few seconds
#     python tutorials/12_gradient_descent.py --quick    # the same (the tutorial is quick already)
#
# It writes learning_rates.png and optimizers_2d.png. The file is in percent format: `# %%` starts a code
# cell and `# %% [markdown]` a text cell (Jupyter with jupytext, VS Code).

# %%
import argparse
import os

import numpy as np
from matplotlib.figure import Figure

from tinyseg import optimizers

parser = argparse.ArgumentParser(description="Tutorial 12: gradient descent on an ill-conditioned quadratic")
parser.add_argument("--quick", "--tiny", action="store_true",
                    help="accepted for the tests; the tutorial is quick already")
parser.add_argument("--out", default=os.path.join("tutorial-output", "12_gradient_descent"))
args, _ = parser.parse_known_args()         # known args only: a notebook's kernel passes flags of its own
os.makedirs(args.out, exist_ok=True)

# %% [markdown]
# ## The bowl
#
# The loss is a quadratic in theta = (theta_1, theta_2), with its minimum at 0:
#
#     J(theta) = (1/2) theta^T A theta          grad J(theta) = A theta
#
# A is symmetric with eigenvalues lambda_max = 20 and lambda_min = 1, its eigenvectors turned 30 degrees
# from the axes: along one direction the bowl is 20 times steeper than along the other (its *condition
# number* lambda_max / lambda_min = 20). Near any minimum a network's loss looks like such a bowl, with A
# its matrix of second derivatives (the Hessian), only with millions of eigenvalues spread over many
# orders of magnitude.

# %%
turn = np.deg2rad(30)
R = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
A = R @ np.diag([20.0, 1.0]) @ R.T
lam_min, lam_max = np.linalg.eigvalsh(A)          # ascending
THETA_0 = np.array([-4.0, 2.5])
STEPS = 50


def J(theta):
    """The loss (1/2) theta^T A theta, for one theta (2,) or many (..., 2)."""
    return 0.5 * np.einsum("...i,ij,...j->...", theta, A, theta)


def descend(optimizer, steps=STEPS):
    """The path theta_0, theta_1, ... (steps + 1, 2) that `optimizer` takes from THETA_0: at every step it is
    handed the gradient A theta and updates theta in place, exactly as a layer's weights are updated in fit."""
    theta = THETA_0.copy()
    path = [theta.copy()]
    for _ in range(steps):
        optimizer.apply_gradients([(A @ theta, theta)])
        path.append(theta.copy())
    return np.array(path)


print(f"A =\n{np.round(A, 3)}\neigenvalues lambda_min = {lam_min:.3f}, lambda_max = {lam_max:.3f}; "
      f"condition number {lam_max / lam_min:.1f}; J(theta_0) = {J(THETA_0):.2f}")

# %% [markdown]
# ## How large may a step be?
#
# Write theta in A's eigenvectors, theta = sum_i c_i u_i. Then A theta = sum_i lambda_i c_i u_i, and one step
# of gradient descent multiplies each coordinate by its own factor:
#
#     c_i <- c_i - alpha lambda_i c_i = (1 - alpha lambda_i) c_i
#
# After t steps c_i has been multiplied by (1 - alpha lambda_i)^t. It shrinks only if |1 - alpha lambda_i| < 1,
# that is 0 < alpha < 2 / lambda_i, for every i, so the steepest direction sets the limit:
#
#     alpha < alpha_crit = 2 / lambda_max
#
# Above it the steep coordinate flips sign and grows at every step: the path zig-zags out of the valley. Far
# below it the steep coordinate is fine but the flat one shrinks by only 1 - alpha lambda_min per step. The
# best constant rate balances the two, 1 - alpha lambda_min = -(1 - alpha lambda_max):
#
#     alpha* = 2 / (lambda_max + lambda_min)
#     both factors then have the size (lambda_max - lambda_min) / (lambda_max + lambda_min)
#
# which is 19/21 ~ 0.9 per step here, and tends to 1 (no progress) as the condition number grows. The three
# rates drawn below: alpha* / 6 (too small), alpha* (right) and 1.05 alpha_crit (too large).

# %%
alpha_crit = 2 / lam_max
alpha_best = 2 / (lam_max + lam_min)
rates = {"too small": alpha_best / 6, "right": alpha_best, "too large": 1.05 * alpha_crit}
gd_paths = {name: descend(optimizers.SGD(alpha)) for name, alpha in rates.items()}
print(f"alpha_crit = 2 / lambda_max = {alpha_crit:.4f};  alpha* = 2 / (lambda_max + lambda_min) = {alpha_best:.4f}")
for name, alpha in rates.items():
    factors = np.abs(1 - alpha * np.array([lam_min, lam_max]))
    print(f"alpha = {alpha:.4f} ({name:9s}): per-step factors |1 - alpha lambda| = {factors[0]:.3f} (flat), "
          f"{factors[1]:.3f} (steep); J after {STEPS} steps {J(gd_paths[name][-1]):.3g}")

# on either side of alpha_crit: the loss after STEPS steps, measured
edge = {f: J(descend(optimizers.SGD(f * alpha_crit))[-1]) for f in (0.98, 1.02)}
print(f"just below alpha_crit (0.98 alpha_crit) J goes {J(THETA_0):.3g} -> {edge[0.98]:.3g}; "
      f"just above (1.02 alpha_crit) -> {edge[1.02]:.3g}")

# %%
LIMITS = (-5.5, 5.5, -4.5, 4.5)


def contours(ax):
    """J's contours (levels spaced as squares, so they sit evenly along the flat direction) and the minimum."""
    t1, t2 = np.meshgrid(np.linspace(*LIMITS[:2], 300), np.linspace(*LIMITS[2:], 300))
    levels = J(THETA_0) * np.linspace(0.05, 1.6, 12) ** 2
    ax.contour(t1, t2, J(np.stack([t1, t2], axis=-1)), levels=levels, colors="0.6", linewidths=0.8)
    ax.plot(0, 0, "k*", markersize=12)
    ax.set_xlim(*LIMITS[:2])
    ax.set_ylim(*LIMITS[2:])
    ax.set_aspect("equal")
    ax.set_xlabel("theta_1")


def draw_path(ax, path, colour, label):
    ax.plot(path[:, 0], path[:, 1], "o-", color=colour, markersize=3, lw=1.2, label=label)
    ax.plot(*path[0], "s", color="k", markersize=6)


rate_colours = {"too small": "C0", "right": "C2", "too large": "C3"}
learning_rates_fig = Figure(figsize=(16, 4.4), layout="constrained")
axes = learning_rates_fig.subplots(1, 4, gridspec_kw=dict(width_ratios=[1, 1, 1, 1.15]))
for ax, (name, path) in zip(axes, gd_paths.items()):
    contours(ax)
    draw_path(ax, path, rate_colours[name], name)
    ax.set_title(f"alpha = {rates[name]:.4f} ({name})\nJ after {STEPS} steps: {J(path[-1]):.3g}", fontsize=10)
axes[0].set_ylabel("theta_2")
ax = axes[3]                               # the per-step factor of each direction against alpha
alphas = np.linspace(0, 1.2 * alpha_crit, 400)
for lam, style in ((lam_min, "-"), (lam_max, "--")):
    ax.plot(alphas, np.abs(1 - alphas * lam), style, color="k", label=f"|1 - alpha lambda|, lambda = {lam:g}")
ax.axhline(1, color="grey", lw=0.8)
ax.axvline(alpha_crit, color="C3", lw=1, ls=":")
ax.annotate(f"alpha_crit = 2/lambda_max\n= {alpha_crit:.3f}", (alpha_crit, 1.25), fontsize=8, ha="right",
            xytext=(-4, 0), textcoords="offset points", color="C3")
for name, alpha in rates.items():
    ax.plot([alpha, alpha], [0, max(np.abs(1 - alpha * np.array([lam_min, lam_max])))], color=rate_colours[name],
            lw=3, alpha=0.7, label=f"{name}: {alpha:.4f}")
ax.set_ylim(0, 2.0)
ax.set_xlabel("learning rate alpha")
ax.set_title("the slower direction decides how fast\n(below 1: converges)", fontsize=10)
ax.legend(fontsize=7, loc="upper left")
ax.grid(alpha=0.3)
learning_rates_fig.suptitle("gradient descent theta <- theta - alpha A theta on J = theta^T A theta / 2 "
                            f"(eigenvalues {lam_min:g} and {lam_max:g}), {STEPS} steps from the black square",
                            fontsize=11)
learning_rates_fig.savefig(os.path.join(args.out, "learning_rates.png"), dpi=90)

# %% [markdown]
# What the three panels show. Too small: every step is safe but the path creeps along the valley floor and is
# still far from the minimum after 50 steps. Right: both directions shrink by the same factor per step; the
# steep coordinate's factor 1 - alpha lambda_max is negative, so it flips sign at every step, which is the
# zig-zag across the valley. Too large: the steep coordinate grows by |1 - alpha lambda_max| > 1 per step and
# the path leaves the picture. The right panel is the whole story in one curve per direction: the learning rate
# that the steep direction allows is one the flat direction finds slow. That is the problem that the following
# optimizers attack, each in its own way.
#
# ## Momentum, RMSprop and Adam on the same bowl
#
# The same formulas as in tutorial 10 (tinyseg/optimizers/), run here by tinyseg's optimizer objects:
#
# - **Momentum** (mu = 0.9): `v <- mu v - alpha g;  theta <- theta + v`. Along the flat direction g keeps its
#   sign, so the steps add up (up to 1 / (1 - mu) = 10 times alpha g); across the valley g flips sign and the
#   steps cancel. Given the *too small* alpha of the first panel, it should run down the valley.
# - **RMSprop**: `s <- rho s + (1 - rho) g^2;  theta <- theta - alpha g / sqrt(s + eps)`. Each coordinate's step
#   is divided by the root of its own running mean of g^2, so each moves by about alpha per step whatever
#   its steepness. Its coordinates are theta_1 and theta_2, not the valley's directions, so that helps only
#   in part when the valley is turned.
# - **Adam**: momentum's running mean of g (m) divided by RMSprop's root of the running mean of g^2 (v),
#   both corrected for starting at 0.
#
# The adaptive methods take steps of about alpha in theta's own units, so their alpha is not comparable with
# SGD's: 0.2 for RMSprop and 0.5 for Adam (about a tenth of the distance to cover), chosen by a few tries as
# one does in practice.

# %%
RUNS = {
    "gradient descent (alpha too small)": lambda: optimizers.SGD(rates["too small"]),
    "momentum 0.9 (the same alpha)": lambda: optimizers.SGD(rates["too small"], momentum=0.9),
    "RMSprop (alpha 0.2)": lambda: optimizers.RMSprop(0.2),
    "Adam (alpha 0.5)": lambda: optimizers.Adam(0.5),
}
paths = {name: descend(make()) for name, make in RUNS.items()}
losses = {name: J(path) for name, path in paths.items()}
for name, curve in losses.items():
    below = np.flatnonzero(curve < 1e-2 * curve[0])
    reached = f"step {below[0]}" if below.size else f"not within {STEPS} steps"
    rises = int((np.diff(curve[-21:]) > 0).sum())
    print(f"{name:36s} J after 10 steps {curve[10]:.3g}, after {STEPS} {curve[-1]:.3g}; below 1% of J(theta_0) "
          f"at {reached}; J rose at {rises} of the last 20 steps")
plain, heavy = losses["gradient descent (alpha too small)"][-1], losses["momentum 0.9 (the same alpha)"][-1]
print(f"with the same alpha, momentum ends at J = {heavy:.3g}, {plain / heavy:.0f} times lower than plain "
      "gradient descent")

# %%
optimizers_fig = Figure(figsize=(16, 8), layout="constrained")
grid = optimizers_fig.add_gridspec(2, 4)
run_colours = dict(zip(RUNS, ["C0", "C1", "C4", "C5"]))
path_axes = [optimizers_fig.add_subplot(grid[k // 2, k % 2]) for k in range(4)]
for ax, (name, path) in zip(path_axes, paths.items()):
    contours(ax)
    draw_path(ax, path, run_colours[name], name)
    ax.set_title(f"{name}\nJ after {STEPS} steps: {losses[name][-1]:.3g}", fontsize=10)
for ax in path_axes[::2]:
    ax.set_ylabel("theta_2")
loss_ax = optimizers_fig.add_subplot(grid[:, 2:])
for name, curve in losses.items():
    loss_ax.plot(np.arange(STEPS + 1), curve, "-", color=run_colours[name], lw=2, label=name)
loss_ax.plot(np.arange(STEPS + 1), J(gd_paths["right"]), ":", color=rate_colours["right"], lw=2,
             label=f"gradient descent, alpha* = {alpha_best:.4f} (for reference)")
loss_ax.set_yscale("log")
loss_ax.set_xlabel("step t")
loss_ax.set_ylabel("J(theta_t)")
loss_ax.set_title("the loss along each path", fontsize=10)
loss_ax.grid(alpha=0.3, which="both")
loss_ax.legend(fontsize=9)
optimizers_fig.suptitle("tinyseg.optimizers on the same bowl, from the same start (black square)", fontsize=12)
optimizers_fig.savefig(os.path.join(args.out, "optimizers_2d.png"), dpi=90)
print(f"wrote learning_rates.png and optimizers_2d.png to {args.out}/")

# %% [markdown]
# What to look for. Momentum with the too-small alpha overshoots at first (the velocity must build up, and
# then die down again) and curls around the minimum, but it covers the valley that plain gradient descent
# with the same alpha creeps along: its loss ends far lower (printed above). Its loss curve goes up and down
# as it swings past the minimum. RMSprop and Adam divide each coordinate's step by that coordinate's own
# gradient size, so their first steps have about the same length in theta_1 and theta_2 and point along
# neither the gradient nor the valley; then they follow the valley floor. Near the minimum the gradient is
# tiny, but so is the root of its running square, so the steps need not shrink: with a constant alpha an
# adaptive method may keep circling the minimum (the "J rose" counts above say which paths still went
# uphill near the end). A learning-rate schedule that decays alpha (tutorial 10) is what settles them.
#
# On a real network all of this happens at once in millions of directions, with gradients estimated from a
# batch (so noisy), which is why the adaptive methods, that need no alpha tuned to the steepest direction,
# are the usual first choice, and why a well-tuned momentum SGD with a schedule often still wins in the end.
