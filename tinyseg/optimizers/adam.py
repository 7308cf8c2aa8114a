"""Adam and AdamW, Keras's formulas and defaults:

    Adam:       m <- b1 m + (1 - b1) g;        v <- b2 v + (1 - b2) g^2
                lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
                theta <- theta - lr_t * m / (sqrt(v) + eps)
    AdamW:      theta <- theta - lr * wd * theta;   then Adam's three lines        (wd = 0.004 by default)

t is the step's number (1 for the first); theta, g, m and v share one shape (any).

Adam's epsilon: Keras adds eps to sqrt(v) *before* the bias correction of v (above); PyTorch adds it after,
theta <- theta - lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m/(1-b1^t), v_hat = v/(1-b2^t). The two
agree when eps_keras = eps_torch * sqrt(1 - b2^t), which changes with t; `Adam(epsilon_style='torch')`
uses PyTorch's placement so runs can be compared exactly.
"""
import numpy as np

from ..backend import fast
from ..kernels import inplace
from ..validation import one_of
from .base import Optimizer, positive_epsilon, unit_interval


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7), Keras's defaults and formula.

    Slots: 'm' (the running mean of g) and 'v' (of g^2; float64 for a float32 parameter once g^2 overflowed).
    Also weight_decay, clipnorm, clipvalue, global_clipnorm (base.py); AdamW is Adam with a default
    weight_decay.
    """

    name = "adam"
    slot_names = ("m", "v")
    square_slots = ("v",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, epsilon_style="keras",
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(learning_rate, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
        self.beta_1 = unit_interval(beta_1, "beta_1")
        self.beta_2 = unit_interval(beta_2, "beta_2")
        self.epsilon = positive_epsilon(epsilon)
        self.epsilon_style = one_of(epsilon_style, "epsilon_style", ("keras", "torch"))

    def update(self, i, g, theta, lr):
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        if fast() and self.epsilon_style == "keras" and self.plain_slots(i, g, theta, "m", "v"):
            # the lines below, in place in two reused work arrays: the same numbers, no temporaries
            lr_t = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)
            return inplace.adam(theta, g, self.slot(i, "m", theta), self.slot(i, "v", theta), b1, b2, lr_t,
                                self.epsilon, self.work)
        m = self.slot(i, "m", theta)
        v, g2 = self.square_slot(i, "v", g, theta)
        if v.dtype == m.dtype:
            m += (1 - b1) * (g - m)              # = b1 m + (1 - b1) g, without a temporary for b1 m
        else:                                    # widened: g - m may overflow too; |the update| does not
            m += ((1 - b1) * (g.astype(v.dtype) - m)).astype(m.dtype)
        v += (1 - b2) * (g2 - v)
        if self.epsilon_style == "keras":
            lr_t = lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t)    # Python floats: no upcast
            theta -= lr_t * m / (np.sqrt(v) + self.epsilon)
        else:
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            theta -= lr * m_hat / (np.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "epsilon_style": self.epsilon_style}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), Keras's `AdamW(learning_rate=0.001,
    weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`:

        theta <- theta - lr * wd * theta          first, with the weights before this step's update
        theta <- theta - lr_t * m / (sqrt(v) + eps)   then Adam's update (module docstring), g unchanged

    The decay is kept out of m and v: an L2 term in the gradient would be divided by sqrt(v) with the rest,
    so weights with large gradients would hardly be decayed; here every weight shrinks by the same factor
    1 - lr*wd per step, and then Adam moves it. With a schedule, lr is the step's scheduled rate in both
    lines (as in Keras and PyTorch).

    PyTorch's torch.optim.AdamW(lr, betas, eps, weight_decay) is the same algorithm in the same order
    (param.mul_(1 - lr * wd), then Adam's update) with epsilon after the bias correction: it equals
    AdamW(epsilon_style='torch'). Its defaults differ: weight_decay=0.01 and eps=1e-8 (Keras: 0.004, 1e-7).
    Slots as Adam's: 'm' and 'v', each of its parameter's shape; theta and g of any shape, the same.
    """

    name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 epsilon_style="keras", clipnorm=None, clipvalue=None, global_clipnorm=None):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number >= 0 (it is what AdamW adds to Adam), got None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, epsilon_style=epsilon_style,
                         weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)
