"""Saliency and Grad-CAM (tinyseg.explain): gradients against finite differences, Grad-CAM on a model whose
answer is known, the split of a graph at a layer, and the errors a learner meets first."""
import types

import numpy as np
import pytest

import tinyseg
from tinyseg import explain, gradcheck, layers
from tinyseg.kernels.upsampling import interpolation_matrix
from tinyseg.models import Sequential
from tinyseg.models.unet import UNet

TOL = 1e-6


def random_bn_statistics(model, seed=1):
    """Moving statistics away from (0, 1), so inference-mode batch norm is a real affine map."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.state["moving_mean"][...] = rng.normal(0, 0.3, layer.state["moving_mean"].shape)
            layer.state["moving_variance"][...] = rng.uniform(0.5, 2.0, layer.state["moving_variance"].shape)


def small_unet():
    tinyseg.set_random_seed(0)
    model = UNet((8, 8, 2), num_classes=3, depth=1, base_filters=4)
    random_bn_statistics(model)
    return model


def small_sequential():
    tinyseg.set_random_seed(1)
    return Sequential([tinyseg.Input((8, 8, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"),
                       layers.Conv2D(4, 3, padding="same", activation="tanh"),
                       layers.Conv2D(3, 1, activation="softmax")])


def small_functional():
    """A residual join (fan-out and add) and a head ending in a separate Softmax activation layer."""
    tinyseg.set_random_seed(2)
    inputs = tinyseg.Input((8, 8, 2))
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    r = layers.Conv2D(4, 3, padding="same", name="branch")(h)
    h = layers.Activation("relu", name="joined")(layers.add([h, r]))
    z = layers.Conv2D(3, 1, name="scores")(h)
    return tinyseg.Model(inputs, layers.Activation("softmax", name="probabilities")(z))


def small_sigmoid():
    tinyseg.set_random_seed(3)
    return Sequential([tinyseg.Input((8, 8, 2)), layers.Conv2D(3, 3, padding="same", activation="relu"),
                       layers.Conv2D(1, 1, activation="sigmoid")])


MODELS = {"unet": small_unet, "sequential": small_sequential, "functional": small_functional,
          "sigmoid": small_sigmoid}


def images(n=2, seed=0):
    return np.random.default_rng(seed).random((n, 8, 8, 2))


def check_input_gradient(model, x, **kwargs):
    """gradcheck.check_layer on x -> S (one score per image): backward(g) = g_n dS_n/dx_n, since the images
    of a batch are independent in inference mode."""
    def forward(inp):
        return explain.class_score(model, inp, **kwargs)

    def backward(g):
        return explain.input_gradient(model, x, **kwargs) * g[:, None, None, None]

    return gradcheck.check_layer(types.SimpleNamespace(name="saliency", params={}), x, forward=forward,
                                 backward=backward, max_entries=None)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("score", ["logit", "probability"])
@pytest.mark.parametrize("region", ["all", "box", "mask"])
def test_input_gradient_equals_central_differences(float64, kind, score, region):
    model = MODELS[kind]()
    x = images()
    c = 0 if kind == "sigmoid" else 1
    region = {"all": None, "box": (2, 6, 1, 5), "mask": np.random.default_rng(5).random((8, 8)) > 0.6}[region]
    report = check_input_gradient(model, x, class_index=c, region=region, score=score)
    assert report.ok and report.max_rel_error < TOL, str(report)


def test_saliency_is_the_largest_absolute_channel_gradient(float64):
    model, x = small_unet(), images()
    g = explain.input_gradient(model, x, 2, region=(0, 4, 0, 8))
    assert np.array_equal(explain.saliency(model, x, 2, region=(0, 4, 0, 8)), np.abs(g).max(axis=-1))
    assert np.allclose(explain.saliency(model, x, 2, region=(0, 4, 0, 8), reduce="mean"), np.abs(g).mean(axis=-1))


def test_images_of_a_batch_get_their_own_gradients(float64):
    model, x = small_unet(), images(3)
    together = explain.input_gradient(model, x, 1)
    for n in range(3):
        assert np.allclose(explain.input_gradient(model, x[n:n + 1], 1)[0], together[n], rtol=1e-12, atol=1e-15)


def test_a_mask_per_image(float64):
    model, x = small_unet(), images(2)
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :3], masks[1, 5:] = True, True
    s = explain.class_score(model, x, 1, region=masks)
    z = model.call(x, logits=True)[..., 1]
    assert np.allclose(s, [z[0, :3].sum(), z[1, 5:].sum()])
    report = check_input_gradient(model, x, class_index=1, region=masks, score="probability")
    assert report.max_rel_error < TOL, str(report)


# --- the gradient at a layer: the graph split in two ------------------------------------------------------
def check_layer_gradient(model, x, layer, class_index, score):
    """dS/dA from layer_gradient against central differences of S in A, through the head alone."""
    a, da = explain.layer_gradient(model, x, layer, class_index, score=score)
    body, head, _ = explain.split_at(model._graph, explain.layer_tensor(model, layer))
    values = body.forward([x])
    assert np.array_equal(values[0], a)
    probability = "sigmoid" if model.output_shape[-1] == 1 else "softmax"

    def forward(inp):
        z = head.forward([inp] + values[1:], logits=True)[0]
        return explain.score_and_seed(z, class_index, np.ones(z.shape[:3]), score, probability)[0]

    return gradcheck.check_layer(types.SimpleNamespace(name="layer", params={}), values[0].copy(),
                                 forward=forward, backward=lambda g: da * g[:, None, None, None],
                                 max_entries=300)


@pytest.mark.parametrize("score", ["logit", "probability"])
@pytest.mark.parametrize("where", ["first encoder relu", "skip", "bottleneck", "decoder"])
def test_layer_gradient_of_a_unet_equals_central_differences(float64, score, where):
    model, x = small_unet(), images()
    layer = {"first encoder relu": model.encoders[0][2], "skip": model.encoders[0][-1],
             "bottleneck": model.bottleneck[-1], "decoder": model.decoders[0][2]}[where]
    if where == "skip":
        # The skip feeds a max pooling: a window of ReLU zeros is a tie, where a finite difference measures a
        # one-sided slope. A large beta keeps this ReLU's outputs positive, away from ties.
        model.encoders[0][-2].params["beta"][...] = 5.0
    report = check_layer_gradient(model, x, layer, 2, score)
    assert report.ok and report.max_rel_error < TOL, str(report)


def test_the_split_of_a_unet_carries_the_skip_connection(float64):
    model = small_unet()
    body, head, cut = explain.split_at(model._graph, explain.layer_tensor(model, model.bottleneck[-1]))
    assert [t.name for t in cut] == [model.bottleneck[-1].name, model.encoders[0][-1].name]
    # body and head share no node, and together they are the whole graph
    assert not set(body.nodes) & set(head.nodes)
    assert set(body.nodes) | set(head.nodes) == set(model._graph.nodes)
    x = images()
    assert np.array_equal(head.forward(body.forward([x]))[0], model.call(x))


@pytest.mark.parametrize("kind", ["unet", "functional"])
def test_input_gradient_through_the_split_equals_the_models_own(float64, kind):
    model, x = MODELS[kind](), images()
    layer = model.bottleneck[0] if kind == "unet" else "stem"
    whole = explain.input_gradient(model, x, 1, score="probability")
    split = explain.gradients(model, x, 1, score="probability", layer=layer).input
    assert np.allclose(split, whole, rtol=1e-12, atol=1e-15)


def test_a_layer_shared_across_the_cut(float64):
    """One Conv2D called before and after the chosen layer: each call must backpropagate with its own cache."""
    tinyseg.set_random_seed(4)
    inputs = tinyseg.Input((8, 8, 2))
    shared = layers.Conv2D(2, 3, padding="same", name="shared")
    h = layers.Activation("tanh", name="cut_here")(shared(inputs))
    h = layers.Activation("tanh", name="after")(shared(h))
    model = tinyseg.Model(inputs, layers.Conv2D(3, 1, activation="softmax", name="head")(h))
    x = images()
    split = explain.gradients(model, x, 0, layer="cut_here").input
    assert np.allclose(split, explain.input_gradient(model, x, 0), rtol=1e-12, atol=1e-15)
    report = check_layer_gradient(model, x, "cut_here", 0, "logit")
    assert report.max_rel_error < TOL, str(report)


# --- Grad-CAM on a model built by hand ---------------------------------------------------------------------
def two_squares():
    """Two channels, each a square of ones in its own place: channel 0 top-left, channel 1 bottom-right."""
    x = np.zeros((1, 8, 8, 2))
    x[0, 1:4, 1:4, 0] = 1.0
    x[0, 5:8, 4:8, 1] = 1.0
    return x


def hand_built(pool=False):
    """features = relu(x) channel by channel (an identity 1x1 conv); logits z_0 = 0, z_1 = 3 A_0, z_2 = 2 A_1.

    So class 1 depends on feature 0 only and class 2 on feature 1 only: Grad-CAM must find their squares.
    With pool=True the features are max-pooled to 4x4 and upsampled back before the head.
    """
    inputs = tinyseg.Input((8, 8, 2))
    features = layers.Conv2D(2, 1, activation="relu", name="features")
    h = features(inputs)
    if pool:
        h = layers.UpSampling2D(2, name="up")(layers.MaxPooling2D(2, name="pooled")(h))
    head = layers.Conv2D(3, 1, activation="softmax", name="head")
    model = tinyseg.Model(inputs, head(h))
    features.set_weights([np.eye(2).reshape(1, 1, 2, 2), np.zeros(2)])
    kernel = np.zeros((1, 1, 2, 3))
    kernel[0, 0, 0, 1], kernel[0, 0, 1, 2] = 3.0, 2.0
    head.set_weights([kernel, np.zeros(3)])
    return model


@pytest.mark.parametrize("score", ["logit", "probability"])
def test_grad_cam_finds_the_channel_a_class_depends_on(float64, score):
    model, x = hand_built(), two_squares()
    for c, channel in ((1, 0), (2, 1)):
        cam = explain.grad_cam(model, x, "features", c, score=score)
        assert cam.shape == (1, 8, 8)
        assert np.allclose(cam[0], x[0, :, :, channel], atol=1e-12)        # 1 on its square, 0 elsewhere
    a, da = explain.layer_gradient(model, x, "features", 1)
    alpha = explain.grad_cam_map(a, da)[1]
    assert np.allclose(alpha, [[3.0, 0.0]])                  # mean of dS/dA_f: S = sum 3 A_0 over 64 pixels


def test_grad_cam_of_a_class_no_feature_raises_is_zero(float64):
    model, x = hand_built(), two_squares()
    assert np.array_equal(explain.grad_cam(model, x, "features", 0), np.zeros((1, 8, 8)))


def test_grad_cam_at_a_coarser_layer_is_upsampled_bilinearly(float64):
    model, x = hand_built(pool=True), two_squares()
    cam = explain.grad_cam(model, x, "pooled", 1)
    pooled = x[0, :, :, 0].reshape(4, 2, 4, 2).max(axis=(1, 3))
    expected = explain.resize_bilinear(pooled[None], (8, 8))
    assert np.allclose(cam, expected / expected.max(), atol=1e-12)
    assert cam.max() == pytest.approx(1.0) and cam.min() >= 0


def test_resize_bilinear_matches_upsampling2d_for_integer_factors():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 3, 5))
    for f in (2, 3, 4):
        a_h, a_w = interpolation_matrix(3, f), interpolation_matrix(5, f)
        assert np.allclose(explain.resize_bilinear(maps, (3 * f, 5 * f)),
                           np.einsum("ih,nhw,jw->nij", a_h, maps, a_w), atol=1e-15)
    assert np.allclose(explain.resize_bilinear(maps, (3, 5)), maps)
    assert np.allclose(explain.resize_bilinear(np.full((1, 3, 4), 0.7), (7, 10)), 0.7)     # rows sum to 1


def test_layer_output_is_the_layers_activations(float64):
    model, x = small_unet(), images()
    a = explain.layer_output(model, x, model.encoders[0][2])
    h = x
    for layer in model.encoders[0][:3]:
        h = layer.forward(h)
    assert np.allclose(a, h)


# --- errors ------------------------------------------------------------------------------------------------
def test_wrong_class_index(float64):
    model, x = small_unet(), images(1)
    for bad in (3, -1):
        with pytest.raises(ValueError, match=r"class_index .* 3 classes \(0 \.\. 2\)"):
            explain.saliency(model, x, bad)
    for bad in (1.0, True, "1"):
        with pytest.raises(TypeError, match="class_index must be an integer"):
            explain.grad_cam(model, x, model.bottleneck[-1], bad)


def test_empty_region(float64):
    model, x = small_unet(), images(2)
    with pytest.raises(ValueError, match="region is empty"):
        explain.saliency(model, x, 1, region=np.zeros((8, 8), bool))
    masks = np.ones((2, 8, 8), bool)
    masks[1] = False
    with pytest.raises(ValueError, match="region is empty .* for image 1"):
        explain.grad_cam(model, x, model.bottleneck[-1], 1, region=masks)
    for box in ((3, 3, 0, 8), (0, 9, 0, 8), (-1, 4, 0, 4), (0, 4, 5, 2)):
        with pytest.raises(ValueError, match="box"):
            explain.input_gradient(model, x, 1, region=box)
    with pytest.raises(TypeError, match="boolean"):
        explain.saliency(model, x, 1, region=np.ones((8, 8)))
    with pytest.raises(ValueError, match="shape"):
        explain.saliency(model, x, 1, region=np.ones((4, 4), bool))


def test_layer_not_in_the_model(float64):
    model, x = small_unet(), images(1)
    stranger = layers.Conv2D(4, 3)
    with pytest.raises(ValueError, match="is not in the model"):
        explain.grad_cam(model, x, stranger, 1)
    with pytest.raises(ValueError, match="layer 'no_such_layer' is not in the model"):
        explain.grad_cam(model, x, "no_such_layer", 1)
    with pytest.raises(TypeError, match="give a layer, its name or its output tensor"):
        explain.grad_cam(model, x, 3, 1)
    with pytest.raises(ValueError, match="output layer"):
        explain.grad_cam(model, x, model.head, 1)


def test_other_wrong_arguments(float64):
    model = small_unet()
    with pytest.raises(ValueError, match="for one image pass x\\[None\\]"):
        explain.saliency(model, images(1)[0], 1)
    with pytest.raises(TypeError, match="float NumPy array"):
        explain.saliency(model, (images(1) * 255).astype(np.uint8), 1)
    with pytest.raises(ValueError, match="score must be one of"):
        explain.saliency(model, images(1), 1, score="softmax")
    with pytest.raises(ValueError, match="reduce"):
        explain.saliency(model, images(1), 1, reduce="sum")
    relu_out = Sequential([tinyseg.Input((8, 8, 2)), layers.Conv2D(2, 1, activation="relu")])
    with pytest.raises(ValueError, match="score='probability' needs a model ending in softmax or sigmoid"):
        explain.saliency(relu_out, images(1), 1, score="probability")


def test_float32_models_work_too():
    tinyseg.set_random_seed(0)
    model = UNet((8, 8, 2), num_classes=3, depth=1, base_filters=4)
    x = images(1).astype(np.float32)
    assert explain.saliency(model, x, 1).dtype == np.float32
    cam = explain.grad_cam(model, x, model.bottleneck[-1], 1)
    assert cam.shape == (1, 8, 8) and 0 <= cam.min() and cam.max() <= 1
