"""The Keras-like model API shared by Sequential and UNet: compile, fit, evaluate, predict, summary, weights.

A subclass provides `layers` (every layer, in weight order) and two methods:

    call(x, training, logits)   the forward pass; with logits=True it stops before the output activation
    backward(grad, logits, input_grad)   the backward pass from dL/d(output) (or dL/d(logits)) to dL/dx
                                (input_grad=False: skip dL/dx of the first layer, which training never uses)

One training step is then, for every batch:

    z = call(x, training=True, logits=fused)      # fused: the loss applies the output softmax/sigmoid itself
    L = loss(y, z);  G = loss.backward()          # dL/dz
    backward(G, logits=fused, input_grad=False)   # fills layer.grads
    optimizer.apply_gradients(zip(grads, params))  # the only place weights change

Why fuse: softmax followed by cross-entropy has the gradient (p - y)/N, computed from logits with log-sum-exp;
running the two separately would divide by probabilities that can round to 0.
"""
import numpy as np

from .. import backend, losses, metrics as metrics_module, optimizers
from ..layers.activations import ActivatedLayer, Activation, ActivationLayer, softmax, sigmoid
from .progress import History, ProgressBar


def output_activation(layer):
    """The name of the activation a layer ends in ('linear' if none)."""
    if isinstance(layer, ActivationLayer):
        return layer.activation_name
    if isinstance(layer, (ActivatedLayer, Activation)):
        return layer.activation.activation_name
    return "linear"


def check_array(x, argument, expected_shape=None):
    """A float array without NaN whose shape after the batch axis is expected_shape."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{argument} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{argument} has dtype {x.dtype}; expected float32 images "
                        "(convert with x.astype('float32') / 255 for 8-bit images)")
    if expected_shape is not None and x.shape[1:] != tuple(expected_shape):
        hint = ""
        if x.ndim == len(expected_shape) + 1 and x.shape[1:-1] == tuple(expected_shape[:-1]):
            hint = f": the model was built for {expected_shape[-1]} channels, x has {x.shape[-1]}"
        raise ValueError(f"{argument} has shape {x.shape}, expected (batch,) + {tuple(expected_shape)}{hint}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{argument} contains NaN or inf values")


class Model:
    """Base class. Subclasses set `self.layers` and implement `call` and `backward`."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()
        self.layers = []
        self.loss = None
        self.optimizer = None
        self.metric_names = []
        self.fused = False
        self.stop_training = False

    # --- the two passes (subclasses) ---------------------------------------------------------------------
    def call(self, x, training=False, logits=False):
        raise NotImplementedError

    def backward(self, grad, logits=False, input_grad=True):
        raise NotImplementedError

    @property
    def input_shape(self):
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.layers else None

    @property
    def output_layer(self):
        return self.layers[-1]

    # --- compile -----------------------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss="categorical_crossentropy", metrics=None):
        """Choose the optimizer, the loss and the metrics, as Keras's `compile`.

        A loss that works on logits (cross-entropy, Dice) needs the model to end in its activation (softmax
        or sigmoid: it is then fused into the loss) or in none (the outputs are then taken as logits).
        """
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metric_names = list(metrics or [])
        self._metric_fns = [metrics_module.get(m) for m in self.metric_names]
        final = output_activation(self.output_layer)
        if self.loss.activation is None or final == "linear":
            self.fused = False
        elif final == self.loss.activation:
            self.fused = True
        else:
            raise ValueError(
                f"compile: loss '{self.loss.name}' applies {self.loss.activation} to the model's scores, but the "
                f"last layer ends in '{final}'. End the model with activation='{self.loss.activation}' "
                "(or with no activation, to output raw logits).")

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: call model.compile(optimizer=..., loss=...) first")

    # --- parameters --------------------------------------------------------------------------------------
    def trainable_pairs(self):
        """(gradient, parameter) for every trained parameter, in a fixed order."""
        return [(layer.grads[k], layer.params[k]) for layer in self.layers for k in layer.params]

    def get_weights(self):
        """Every layer's weights in Keras's order (conv kernel (KH, KW, C_in, C_out), bias (C_out,), ...)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            n = len(layer.get_weights())
            layer.set_weights(weights[i:i + n])
            i += n

    def count_params(self):
        return int(sum(layer.count_params() for layer in self.layers))

    def count_trainable_params(self):
        return int(sum(p.size for layer in self.layers for p in layer.params.values()))

    # --- one batch ---------------------------------------------------------------------------------------
    def _outputs(self, z):
        """Turn what call(..., logits=self.fused) returned into the model's outputs (probabilities)."""
        if not self.fused:
            return z
        return softmax(z) if self.loss.activation == "softmax" else sigmoid(z)

    def _metrics(self, y, z):
        """Metric values on the outputs; the output activation is applied only if a metric needs it."""
        if not self._metric_fns:
            return []
        out = self._outputs(z)
        return [float(fn(y, out)) for fn in self._metric_fns]

    def train_on_batch(self, x, y):
        """One step of gradient descent on (x, y); returns [loss, metrics...] for this batch."""
        self._require_compiled("train_on_batch")
        z = self.call(x, training=True, logits=self.fused)
        loss = self.loss.forward(y, z)
        self.backward(self.loss.backward(), logits=self.fused, input_grad=False)
        self.optimizer.apply_gradients(self.trainable_pairs())
        return [loss] + self._metrics(y, z)

    def test_on_batch(self, x, y):
        self._require_compiled("test_on_batch")
        z = self.call(x, training=False, logits=self.fused)
        return [self.loss.forward(y, z)] + self._metrics(y, z)

    # --- whole data sets ---------------------------------------------------------------------------------
    def _check_xy(self, x, y, argument="x"):
        check_array(x, argument, self.input_shape)
        if y is not None and len(y) != len(x):
            raise ValueError(f"{argument} has {len(x)} samples but its targets have {len(y)}")

    def fit(self, x, y, epochs=1, batch_size=32, validation_data=None, shuffle=True, verbose=1, augment=None,
            seed=None, callbacks=None):
        """Train for `epochs` passes over (x, y); returns a History.

        Batches are drawn in a new random order every epoch (seeded by `seed`, or the global generator) unless
        shuffle=False. An epoch's loss and metrics are the batch values averaged with batch-size weights (Keras
        does the same, so with equal batches it is the plain mean of the batch losses). `augment(x, y, rng)`,
        if given, transforms each training batch (e.g. paired flips of images and masks). Each object in
        `callbacks` may have `on_epoch_end(epoch, logs)`, called after every epoch (Keras's hook); setting
        `model.stop_training = True` there ends training.
        """
        self._require_compiled("fit")
        self._check_xy(x, y)
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            self._check_xy(validation_data[0], validation_data[1], "validation_data[0]")
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        rng = np.random.default_rng(seed) if seed is not None else backend.rng()
        history = History()
        n = len(x)
        steps = -(-n // batch_size)
        names = ["loss"] + self.metric_names
        self.stop_training = False
        for epoch in range(epochs):
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            order = rng.permutation(n) if shuffle else np.arange(n)
            bar = ProgressBar(steps, verbose)
            totals = np.zeros(len(names))
            seen = 0
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                if augment is not None:
                    xb, yb = augment(xb, yb, rng)
                values = self.train_on_batch(xb, yb)
                totals += np.asarray(values) * len(idx)
                seen += len(idx)
                bar.update(step + 1, dict(zip(names, totals / seen)))
            logs = dict(zip(names, totals / seen))
            if validation_data is not None:
                val = self.evaluate(*validation_data, batch_size=batch_size, verbose=0, return_dict=True)
                logs.update({"val_" + k: v for k, v in val.items()})
            bar.close(logs)
            history.append(epoch, logs)
            for callback in callbacks or []:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return history

    def evaluate(self, x, y, batch_size=32, verbose=1, return_dict=False):
        """Loss and metrics over (x, y), in inference mode: [loss, metric...] (a float if no metrics)."""
        self._require_compiled("evaluate")
        self._check_xy(x, y)
        names = ["loss"] + self.metric_names
        totals = np.zeros(len(names))
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            totals += np.asarray(self.test_on_batch(xb, yb)) * len(xb)
        values = totals / len(x)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in zip(names, values)))
        if return_dict:
            return dict(zip(names, values.tolist()))
        return float(values[0]) if len(values) == 1 else values.tolist()

    def predict(self, x, batch_size=32):
        """The model's outputs (after its final activation) for x, batch by batch, in inference mode."""
        self._check_xy(x, None)
        outs = [self.call(x[i:i + batch_size], training=False) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs, axis=0)

    # --- files -------------------------------------------------------------------------------------------
    def save(self, path):
        """Write architecture and weights to one .npz file (see tinyseg.saving); load with load_model."""
        from ..saving import save_model
        save_model(self, path)

    # --- description -------------------------------------------------------------------------------------
    def summary(self, print_fn=print):
        """Print a Keras-like table: layer (type), output shape, parameter count; and the totals."""
        rows = [(f"{layer.name} ({type(layer).__name__})", str((None,) + tuple(layer.output_shape or ())),
                 f"{layer.count_params():,}") for layer in self.layers]
        w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
        w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2
        width = w0 + w1 + 12
        total, trainable = self.count_params(), self.count_trainable_params()
        lines = [f'Model: "{self.name}"', "_" * width,
                 f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}Param #", "=" * width]
        for i, (a, b, c) in enumerate(rows):
            lines.append(f"{a:<{w0}}{b:<{w1}}{c}")
            lines.append("_" * width if i < len(rows) - 1 else "=" * width)
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", "_" * width]
        print_fn("\n".join(lines))
