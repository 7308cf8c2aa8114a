"""The architecture builders run by Keras 3 (torch backend) and by tinyseg, as tests/parity/test_keras_program.py
runs its program: the same builder lines with `keras=keras` and with `keras=tinyseg`, Keras's weights copied into
tinyseg, then the same predictions (float32, 1e-5) and, after one SGD step from one batch, the same loss and the
same step of every weight array (float32: to 1e-3 of the step).

- fcn8s and deeplabv3plus are written against a Keras-like module, so the very same code builds both. Keras has
  no 'bilinear' initializer: its copy takes deconv_initializer='glorot_uniform', and the weights are copied.
- unet is tinyseg's UNet class; Keras builds `keras_unet` below, the UNet's graph written out in the functional
  API, layer for layer in UNet's order.
- segnet needs MaxUnpooling2D, which Keras does not have: tests/parity/test_architectures_torch.py compares it
  with PyTorch's max_unpool2d instead.
"""
import numpy as np
import pytest

from tests.helpers import assert_same_architecture, import_keras

keras = import_keras()          # Keras 3 on its torch backend, or the module is skipped

import tinyseg  # noqa: E402
from tests.models.test_architectures import SMALL  # noqa: E402
from tinyseg.models import ARCHITECTURES  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def keras_unet(input_shape, num_classes, depth, base_filters, bn_momentum=0.9):
    """tinyseg.models.UNet (upsampling='transpose', batch_norm=True) in Keras's functional API."""
    layers = keras.layers

    def block(x, filters):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=bn_momentum)(x)
            x = layers.Activation("relu")(x)
        return x

    filters = [base_filters * 2 ** i for i in range(depth + 1)]
    inputs = keras.Input(input_shape)
    x, skips = inputs, []
    for f in filters[:-1]:
        x = block(x, f)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = block(x, filters[-1])
    for f, skip in zip(reversed(filters[:-1]), reversed(skips)):
        x = layers.Concatenate()([layers.Conv2DTranspose(f, 2, strides=2, padding="same")(x), skip])
        x = block(x, f)
    return keras.Model(inputs, layers.Conv2D(num_classes, 1, activation="softmax")(x))


SIZES = {"fcn8s": (20, 28), "unet": (8, 12), "deeplabv3plus": (16, 32)}
K = 4


def build_both(name):
    keras.utils.set_random_seed(0)
    shape, knobs = SIZES[name] + (3,), SMALL[name]
    if name == "unet":
        k_model = keras_unet(shape, K, **knobs)
    else:
        k_knobs = dict(knobs, deconv_initializer="glorot_uniform") if name == "fcn8s" else knobs
        k_model = ARCHITECTURES[name](shape, K, keras=keras, **k_knobs)
    t_model = ARCHITECTURES[name](shape, K, **knobs)
    t_model.set_weights(k_model.get_weights())
    return k_model, t_model


def data(name, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((2,) + SIZES[name] + (3,), dtype=np.float32)
    y = tinyseg.utils.to_categorical(rng.integers(0, K, (2,) + SIZES[name]), K).astype("float32")
    return x, y


def scale_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-30))


@pytest.mark.parametrize("name", sorted(SIZES))
def test_same_layers_and_same_predictions(name):
    k_model, t_model = build_both(name)
    if name == "unet":              # UNet.layers leaves out the input placeholder, as it did before the graph
        k_types = [type(layer).__name__ for layer in k_model.layers if type(layer).__name__ != "InputLayer"]
        assert [type(layer).__name__ for layer in t_model.layers] == k_types
        assert [w.shape for w in t_model.get_weights()] == [tuple(w.shape) for w in k_model.get_weights()]
    else:
        assert_same_architecture(k_model, t_model)
    x, _ = data(name)
    assert scale_error(t_model.predict(x), keras.ops.convert_to_numpy(k_model.predict(x, verbose=0))) < 1e-5


@pytest.mark.parametrize("name", sorted(SIZES))
def test_one_sgd_step_gives_the_same_loss_and_weights(name):
    k_model, t_model = build_both(name)
    x, y = data(name, seed=1)
    start = t_model.get_weights()
    losses = []
    for framework, model in ((keras, k_model), (tinyseg, t_model)):
        model.compile(optimizer=framework.optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
        losses.append(float(np.ravel(model.train_on_batch(x, y))[0]))
    assert abs(losses[0] - losses[1]) <= 1e-5 * abs(losses[0]), losses
    # each array's step (w_after - w_before) against Keras's, relative to that step or, for arrays that hardly
    # move (FCN's zero-started skip scores), to 1e-3 of the largest step; float32 noise is ~1e-5 of a step
    t_steps = [t_w - w for t_w, w in zip(t_model.get_weights(), start)]
    k_steps = [np.asarray(k_w) - w for k_w, w in zip(k_model.get_weights(), start)]
    largest = max(np.max(np.abs(d)) for d in k_steps)
    assert largest > 1e-4                                                   # the step did move the weights
    for t_d, k_d in zip(t_steps, k_steps):
        assert np.max(np.abs(t_d - k_d)) <= 1e-3 * max(np.max(np.abs(k_d)), 1e-3 * largest)
    assert scale_error(t_model.predict(x), keras.ops.convert_to_numpy(k_model.predict(x, verbose=0))) < 1e-5
