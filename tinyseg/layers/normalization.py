"""BatchNormalization: normalise each channel with statistics taken over the batch.

Channels-last. For vectors x (N, C) the statistics of channel c are taken over N; for images x (N, H, W, C)
over N, H and W together: one mean and one variance per channel, never per pixel. Write M for the number of
values averaged per channel (N, or N*H*W) and "mean" for the average over those M values.

Forward, training (batch statistics):

    mu      = mean(x)                         (C,)
    var     = mean((x - mu)^2)                (C,)   the biased variance: divide by M, not M - 1
    sigma   = sqrt(var + epsilon)
    xhat    = (x - mu) / sigma                       same shape as x
    y       = gamma * xhat + beta

    moving_mean     = momentum * moving_mean     + (1 - momentum) * mu
    moving_variance = momentum * moving_variance + (1 - momentum) * var

Forward, inference: the same affine map with the moving statistics in place of mu and var; nothing is
updated. A frozen layer (trainable=False) always runs so, in fit too, as Keras's does: fine-tuning the layers
after a frozen encoder leaves its statistics as they were learned (and the normalisation with them).

Backward, with g = dL/dy:

    dL/dbeta  = sum(g)               dL/dgamma = sum(g * xhat)          (sums over the M values, per channel)

    training:   dL/dx = (gamma / sigma) * (g - mean(g) - xhat * mean(g * xhat))
    inference:  dL/dx = (gamma / sigma) * g                 (mu, sigma are constants: the moving statistics)

Where the training formula comes from. mu and var depend on every x_i, so x_i reaches xhat_j for all j:

    d xhat_j / d x_i = (delta_ij - 1/M) / sigma  -  xhat_i * xhat_j / (M * sigma)

(the first term through x_j - mu, the second through var: d var / d x_i = 2 (x_i - mu) / M). With
dL/dxhat_j = gamma * g_j, summing over j:

    dL/dx_i = (gamma / sigma) * (g_i - (1/M) sum_j g_j - xhat_i (1/M) sum_j g_j xhat_j)

which is the compact form above. The two subtracted means take out of g its component along the constant
direction (shifting a channel of x changes nothing after normalisation, so sum(dL/dx) = 0 exactly) and
along xhat (scaling it changes almost nothing: sum(dL/dx * xhat) = (gamma/sigma) * sum(g * xhat) *
epsilon / (var + epsilon), which would be zero only with epsilon = 0).

In the code, x is seen as (M, C), one row per value of a channel, so every "mean" is a mean over axis 0; the
sums are taken in float64 whatever the dtype. Each pass over the data is a NumPy line, after one guarded
line (`if fast(): ...`) that hands it to kernels/normalization.py instead: the same formula in one parallel
pass, without the temporary arrays (TINYSEG_BACKEND=numpy skips it; tinyseg/backend.py).
"""
import numbers

import numpy as np

from .. import initializers
from ..backend import NonFiniteError, fast
from ..kernels import normalization as kernels
from .base import Layer


class BatchNormalization(Layer):
    """Keras's `BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True)`.

    Shapes: x (N, C) or (N, H, W, C) -> y of the same shape; gamma, beta, moving_mean, moving_variance (C,).
    Formulas and gradients: see the module docstring. Normalises over the last (channel) axis only; `axis`
    is accepted for Keras compatibility and must name that axis (-1, or its index counting the batch axis).

    Weights, organised so an optimizer can never train the moving statistics:

        layer.params = {'gamma', 'beta'}                     trained: have grads, the optimizer updates them
        layer.state  = {'moving_mean', 'moving_variance'}    not trained: only forward(training=True) updates them
        layer.get_weights() -> [gamma, beta, moving_mean, moving_variance]    (Keras's order; set_weights too)

    `center=False` drops beta and `scale=False` drops gamma, from params and from get_weights, as in Keras.
    count_params() counts all four arrays, as Keras's model.summary() "Total params" does;
    count_trainable_params() counts params only (gamma, beta), count_non_trainable_params() the state
    (and all four once the layer is frozen: trainable=False, which also makes it run in inference mode).

    PyTorch's `nn.BatchNorm2d` differs in momentum (its p = 1 - m), in the running variance (unbiased) and
    in epsilon (1e-5): tinyseg/interop/conventions.py has the table and the converters.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise ValueError(f"{self.name}: axis must be an integer, got {axis!r}")
        if not _is_real(momentum) or not 0 <= momentum <= 1:
            raise ValueError(f"{self.name}: momentum must be a number in [0, 1] (the weight of the old moving "
                             f"average; Keras's default is 0.99), got {momentum!r}")
        if not _is_real(epsilon) or not epsilon > 0:
            raise ValueError(f"{self.name}: epsilon must be a positive number, got {epsilon!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.state = {}                 # moving_mean, moving_variance: weights, but not trained

    # --- building ---------------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        rank = len(input_shape) + 1                   # counting the batch axis, as Keras's axis does
        if rank < 2:
            raise ValueError(f"{self.name}: expects (batch, C) or (batch, H, W, C), got input shape (batch,) + "
                             f"{tuple(input_shape)}")
        if self.axis not in (-1, rank - 1):
            raise ValueError(f"{self.name}: only the last (channel) axis can be normalised: axis must be -1 "
                             f"or {rank - 1} for inputs of rank {rank}, got axis={self.axis}")
        return tuple(input_shape)

    def build(self, input_shape):
        out = super().build(input_shape)
        channels = (self.input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", channels, self.gamma_initializer)
        if self.center:
            self.add_weight("beta", channels, self.beta_initializer)
        self.add_weight("moving_mean", channels, self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", channels, self.moving_variance_initializer, trainable=False)
        return out

    # --- running ----------------------------------------------------------------------------------------
    def forward(self, x, training=False):
        self.check_input(x)
        x2 = x.reshape(-1, x.shape[-1])                              # (M, C): one row per value of a channel
        training = training and self.trainable                       # frozen: inference mode, even in fit
        if training:
            if fast():      # the same statistics, in one parallel pass over x
                mu, var = kernels.channel_mean_var(x2)
            else:
                mu = x2.mean(axis=0, dtype=np.float64)               # mean(x)              (C,) float64
                var = ((x2 - mu) ** 2).mean(axis=0)                  # mean((x - mu)^2)     (C,) float64
            self.update_moving_statistics(mu, var)
        else:
            mu, var = self.state["moving_mean"], self.state["moving_variance"]
        inv_sigma = 1 / np.sqrt(var + self.epsilon)                  # 1 / sigma            (C,)
        gamma, beta = self._gamma_beta()
        self.save_for_backward(x=x, mu=mu, inv_sigma=inv_sigma, training=bool(training))
        if fast():      # the same y in one pass: no xhat array is made (the backward recomputes it from x)
            return kernels.channel_affine(x2, mu, gamma * inv_sigma, beta).reshape(x.shape)
        xhat = (x2 - mu) * inv_sigma                                 # (M, C)
        y = gamma * xhat + beta
        return y.astype(x.dtype).reshape(x.shape)

    def update_moving_statistics(self, mu, var):
        """moving = momentum * moving + (1 - momentum) * batch statistic, for the mean and the variance; all
        or nothing: a statistic that is not finite raises NonFiniteError and changes neither."""
        m = self.momentum
        with np.errstate(over="ignore", invalid="ignore"):
            new_mean = (m * self.state["moving_mean"] + (1 - m) * mu).astype(self.dtype)
            new_var = (m * self.state["moving_variance"] + (1 - m) * var).astype(self.dtype)
        if not (np.all(np.isfinite(new_mean)) and np.all(np.isfinite(new_var))):
            # checked before they are stored: a NaN here would stay in the averages for ever
            raise NonFiniteError(
                f"{self.name}: the batch's mean or variance is NaN or beyond {self.dtype}'s range (largest "
                f"|mean| {np.max(np.abs(mu)):.3g}, variance {np.max(var):.3g}); the moving statistics were "
                "left as they were. Scale the inputs (e.g. images / 255) or lower the learning rate.",
                parameter=f"layer '{self.name}', moving statistics")
        # In place, so anyone holding these arrays (an optimizer, a saved reference) sees the update.
        self.state["moving_mean"][...] = new_mean
        self.state["moving_variance"][...] = new_var

    def backward(self, grad):
        saved = self.saved_for_backward()
        self.check_grad(grad)
        x, mu, inv_sigma = saved.x, saved.mu, saved.inv_sigma
        if grad.shape != x.shape:
            raise ValueError(f"{self.name}: grad has shape {grad.shape}, but the last forward saw {x.shape}")
        gamma, _ = self._gamma_beta()
        gain = gamma * inv_sigma                                     # gamma / sigma, (C,)
        if not saved.training and not self.trainable:               # frozen: dL/dx alone, no parameter sums
            return grad * gain.astype(grad.dtype)
        x2, g2 = x.reshape(-1, x.shape[-1]), grad.reshape(-1, x.shape[-1])      # (M, C)
        if fast():      # the same two sums, in one parallel pass over g and x
            sum_g, sum_gx = kernels.channel_grad_sums(g2, x2, mu, inv_sigma)
        else:
            xhat = (x2 - mu) * inv_sigma                             # (M, C) float64
            sum_g = g2.sum(axis=0, dtype=np.float64)                 # sum(g)               (C,) float64
            sum_gx = (g2 * xhat).sum(axis=0)                         # sum(g * xhat)        (C,) float64
        if self.center:
            self.grads["beta"] = sum_g.astype(self.dtype)            # dL/dbeta = sum(g)
        if self.scale:
            self.grads["gamma"] = sum_gx.astype(self.dtype)          # dL/dgamma = sum(g * xhat)
        if not saved.training:
            return grad * gain.astype(grad.dtype)                    # mu and sigma were constants
        # Training: x reaches L through xhat directly, through mu and through var, one term each:
        m_values = x2.shape[0]                                       # M
        mean_g = sum_g / m_values                                    # the term through mu
        mean_gx = sum_gx / m_values                                  # the term through var (times xhat)
        if fast():      # the same dL/dx, in one pass over g and x
            return kernels.batchnorm_input_grad(g2, x2, mu, inv_sigma, gain, mean_g, mean_gx).reshape(grad.shape)
        dx = gain * (g2 - mean_g - xhat * mean_gx)                   # (M, C)
        return dx.astype(grad.dtype).reshape(grad.shape)

    def _gamma_beta(self):
        """gamma and beta as float64 (C,) vectors; 1 and 0 where scale / center is off."""
        c = self.input_shape[-1]
        gamma = self.params["gamma"].astype(np.float64) if self.scale else np.ones(c)
        beta = self.params["beta"].astype(np.float64) if self.center else np.zeros(c)
        return gamma, beta

    # --- weights: trained params first, then the moving statistics, as Keras orders them ---------------
    def weight_names(self):
        """['gamma', 'beta', 'moving_mean', 'moving_variance'] (without gamma/beta if scale/center is off)."""
        return list(self.params) + list(self.state)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
