"""Sequential: a plain stack of layers, each feeding the next (Keras's `Sequential`).

    forward:   x_0 = x,  x_i = layer_i.forward(x_{i-1}),  output = x_L
    backward:  g_L = dL/d(output),  g_{i-1} = layer_i.backward(g_i)      (the chain rule, last layer first)
"""
from ..layers.activations import ActivatedLayer, Activation, ActivationLayer
from ..layers.base import Layer
from .model import Model


class Sequential(Model):
    """A linear stack of layers: `Sequential([...])` or `model.add(layer)` one at a time."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "sequential")
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer. The first layer may give `input_shape=`; then every layer is built at once, so
        `summary()` works before any data is seen."""
        if not isinstance(layer, Layer):
            raise TypeError(f"add: expected a tinyseg layer, got {type(layer).__name__}")
        if not self.layers and layer._declared_input_shape is not None:
            layer.build(layer._declared_input_shape)
        elif self.layers and self.layers[-1].built and not layer.built:
            layer.build(self.layers[-1].output_shape)
        self.layers.append(layer)

    def call(self, x, training=False, logits=False):
        if not self.layers:
            raise RuntimeError("call: the model has no layers; add some with model.add(...)")
        for layer in self.layers[:-1]:
            x = layer.forward(x, training)
        last = self.layers[-1]
        if not logits:
            return last.forward(x, training)
        if isinstance(last, (ActivationLayer, Activation)):        # the loss applies this activation
            if not last.built:
                last.build(x.shape[1:])
            return x
        if isinstance(last, ActivatedLayer):
            return last.forward_linear(x, training)
        return last.forward(x, training)

    def backward(self, grad, logits=False, input_grad=True):
        """From dL/d(output) (or dL/d(logits)) back to dL/dx; input_grad=False skips dL/dx of the first layer,
        which training never uses (for a first Conv2D that saves a matmul and a col2im), and returns None."""
        n = len(self.layers)
        for i in range(n - 1, -1, -1):
            layer = self.layers[i]
            if i == n - 1 and logits:
                if isinstance(layer, (ActivationLayer, Activation)):      # the loss applied this activation
                    continue
                if isinstance(layer, ActivatedLayer):
                    grad = layer.backward_linear(grad, input_grad=input_grad or i > 0)
                    continue
            if i == 0 and not input_grad:
                layer.backward_params(grad)
                return None
            grad = layer.backward(grad)
        return grad

    def get_config(self):
        from ..saving import layer_to_config
        return {"name": self.name, "layers": [layer_to_config(layer) for layer in self.layers]}
