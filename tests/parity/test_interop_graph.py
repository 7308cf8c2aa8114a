"""to_torch for any graph model: the same outputs and gradients as tinyseg in float64 (1e-10), weights both
ways, and training the exported model under PyTorch's DistributedDataParallel (two CPU processes, gloo on
loopback), then carrying the result back into tinyseg."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch interop tests need torch: pip install -e '.[compare]'")

import tinyseg  # noqa: E402
from tests.helpers import PARITY_TOL, scramble_weights
from tinyseg import Input, Model  # noqa: E402
from tinyseg import interop as tp  # noqa: E402
from tinyseg.layers import (  # noqa: E402
    Activation,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    add,
    multiply,
)
from tinyseg.models.xception import xception_unet  # noqa: E402
from tinyseg.saving import load_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def graph_model():
    """Fan-out, add, multiply, concatenate, a shared convolution, and a classification branch through a
    Flatten into a Dense (whose rows PyTorch orders differently)."""
    x = Input((6, 6, 2))
    h = Activation("relu")(BatchNormalization()(Conv2D(4, 3, padding="same", use_bias=False)(x)))  # BN: no bias
    shared = Conv2D(4, 3, padding="same")
    a = add([shared(h), h])
    b = multiply([shared(a), Activation("sigmoid")(h)])
    seg = Conv2D(3, 1, activation="softmax")(Concatenate()([a, b]))
    cls = Dense(5, activation="softmax")(Dropout(0.0)(Flatten()(b)))
    pooled = Dense(2)(GlobalAveragePooling2D()(a))
    return Model(x, [seg, cls, pooled])


def compare(model, x, training, logits):
    rng = np.random.default_rng(5)
    module = tp.to_torch(model, logits=logits)
    module.train(training)
    ys = model.call(x, training=training, logits=logits)
    ys = ys if isinstance(ys, list) else [ys]
    gs = [rng.standard_normal(y.shape) for y in ys]
    dx = model.backward(gs if len(gs) > 1 else gs[0], logits=logits)
    xt = tp.to_tensor(tp.nhwc_to_nchw(x), requires_grad=True)
    outs = module(xt)
    outs = outs if isinstance(outs, list) else [outs]
    total = 0
    errors = {}
    for i, (y, g, out) in enumerate(zip(ys, gs, outs)):
        out_nhwc = tp.to_numpy(tp.nchw_to_nhwc(out)) if out.dim() == 4 else tp.to_numpy(out)
        errors[f"output {i}"] = tp.relative_error(out_nhwc, y)
        gt = tp.to_tensor(tp.nhwc_to_nchw(g) if g.ndim == 4 else g)
        total = total + (out * gt).sum()
    total.backward()
    errors["input"] = tp.relative_error(tp.to_numpy(tp.nchw_to_nhwc(xt.grad)), dx)
    grads = tp.torch_gradients(model)
    for name, p in module.named_parameters():
        a, b = tp.to_numpy(p.grad), tp.to_numpy(grads[name])
        # a bias just before a training-mode batch norm has gradient 0 in exact arithmetic (the normalisation
        # removes any shift): both sides then hold rounding noise, compared absolutely
        errors[name] = np.max(np.abs(a - b)) if max(np.abs(a).max(), np.abs(b).max()) < 1e-9 else \
            tp.relative_error(a, b)
    return errors


@pytest.mark.parametrize("training", [False, True])
def test_graph_model_outputs_and_gradients_match(float64, training):
    tinyseg.set_random_seed(0)
    model = graph_model()
    scramble_weights(model, np.random.default_rng(1), 0.3)
    x = np.random.default_rng(2).standard_normal((3, 6, 6, 2))
    errors = compare(model, x, training, logits=False)
    assert len(errors) > 10 and max(errors.values()) <= PARITY_TOL, errors


def test_xception_unet_matches_in_float64_with_logits(float64):
    tinyseg.set_random_seed(0)
    model = xception_unet((32, 32), 3, filters=(8, 16, 24, 32))
    scramble_weights(model, np.random.default_rng(3), 0.3)
    x = np.random.default_rng(4).standard_normal((2, 32, 32, 3))
    errors = compare(model, x, training=True, logits=True)
    assert max(errors.values()) <= PARITY_TOL, {k: v for k, v in errors.items() if v > PARITY_TOL}
    assert "layers.separable_conv2d.depthwise.weight" in dict(tp.to_torch(model).named_parameters()) or any(
        k.endswith("depthwise.weight") for k in errors)


def test_weights_go_both_ways(float64):
    tinyseg.set_random_seed(0)
    model = graph_model()
    module = tp.to_torch(model)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(1.5).add_(0.1)
    tp.load_torch_state_dict(model, module.state_dict())
    again = tp.torch_state_dict(model)
    for name, value in module.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert tp.relative_error(tp.to_numpy(value), tp.to_numpy(again[name])) <= PARITY_TOL, name


# --- DistributedDataParallel: the road for users who outgrow one machine ------------------------------------
def ddp_worker(rank, world, path, data_path, out_path, port):
    import os

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        module = tp.to_torch(load_model(path))         # logits out, as torch's losses take
        ddp = DistributedDataParallel(module)
        data = np.load(data_path)
        x, y = data["x"][rank::world], data["y"][rank::world]        # each process its own half of the batch
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(3):
            opt.zero_grad()
            loss = loss_fn(ddp(tp.to_tensor(tp.nhwc_to_nchw(x))), torch.tensor(y))
            loss.backward()                             # DDP averages the gradients of the two halves
            opt.step()
        if rank == 0:
            torch.save(module.state_dict(), out_path)
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's teardown: there PyTorch 2.13's gloo backend aborts one of the two
    # processes in about one run of fifteen ("terminate called without an active exception"), tinyseg or not
    # (a plain torch module trained the same way: 4 runs of 60). os._exit skips the teardown; the work above
    # is done and saved, and an error above still reaches mp.spawn, since this line is then never run.
    os._exit(0)


def _flattened_then(make):
    """A model whose flattened (4, 4, 2) image features go through make(features, inputs) -> output."""
    x = Input((4, 4, 2))
    flat = Flatten()(Conv2D(2, 1)(x))
    return Model(x, make(flat, x))


@pytest.mark.parametrize("make, match", [
    (lambda f, x: Dense(3)(tinyseg.layers.Reshape((32,))(f)), "a Reshape between a Flatten and the next Dense"),
    (lambda f, x: Dense(3)(Concatenate()([f, f])), "joins flattened image features"),
    (lambda f, x: Dense(3)(add([f, Dense(32)(Flatten()(x))])), "joins flattened image features"),
    (lambda f, x: Dense(3)(Flatten()(f)), "a Flatten of flattened features"),
    (lambda f, x: Dropout(0.0)(f), "ends with flattened image features"),
])
def test_flattened_features_in_an_order_torch_cannot_follow_are_refused(make, match):
    """PyTorch flattens (C, H, W) and tinyseg (H, W, C): only a Dense (or what keeps the order: dropout,
    activations, batch norm, merges of like-ordered features) may read them."""
    with pytest.raises(ValueError, match=match):
        tp.to_torch(_flattened_then(make))


def test_a_dense_shared_by_flattened_and_plain_features_is_refused():
    x = Input((4, 4, 2))
    dense = Dense(3)
    plain = tinyseg.layers.Reshape((32,))(x)          # tinyseg's order, no Flatten: torch's order is the same
    out = add([dense(Flatten()(x)), dense(plain)])
    with pytest.raises(ValueError, match="shared by calls whose features are ordered differently"):
        tp.to_torch(Model(x, out))


def test_flattened_features_through_dropout_activation_and_batch_norm_reach_the_dense(float64):
    rng = np.random.default_rng(3)
    model = _flattened_then(lambda f, x: Dense(3)(BatchNormalization()(Activation("relu")(Dropout(0.0)(f)))))
    scramble_weights(model, rng, 0.3)
    x = rng.standard_normal((2, 4, 4, 2))
    module = tp.to_torch(model).eval()
    got = module(torch.tensor(tp.nhwc_to_nchw(x)))
    assert tp.relative_error(model.call(x, logits=True), got) <= PARITY_TOL


def test_training_under_distributed_data_parallel_and_back(tmp_path):
    import socket

    import torch.multiprocessing as mp
    tinyseg.set_random_seed(0)
    x = Input((8, 8, 1))
    model = Model(x, Conv2D(2, 1, activation="softmax")(Activation("relu")(Conv2D(4, 3, padding="same")(x))))
    path = tmp_path / "model.npz"
    model.save(path)
    rng = np.random.default_rng(0)
    xs = rng.random((8, 8, 8, 1), dtype=np.float32)
    ys = (xs[..., 0] > 0.5).astype(np.int64)
    np.savez(tmp_path / "data.npz", x=xs, y=ys)
    with socket.socket() as s:                          # a free port on loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(ddp_worker, args=(2, str(path), str(tmp_path / "data.npz"), str(tmp_path / "ddp.pt"), port),
             nprocs=2, join=True)
    trained = load_model(path)
    tp.load_torch_state_dict(trained, torch.load(tmp_path / "ddp.pt"))

    # The same three steps on the whole batch in one process: DDP's averaged gradient is the full-batch one
    # (the two halves are equal in size and the loss is a mean).
    single = tp.to_torch(load_model(path))
    opt = torch.optim.SGD(single.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.CrossEntropyLoss()(single(tp.to_tensor(tp.nhwc_to_nchw(xs))), torch.tensor(ys))
        loss.backward()
        opt.step()
    expected = tp.to_numpy(tp.nchw_to_nhwc(torch.softmax(single(tp.to_tensor(tp.nhwc_to_nchw(xs))), 1)))
    assert np.max(np.abs(trained.predict(xs) - expected)) < 1e-5
    assert np.max(np.abs(trained.predict(xs) - model.predict(xs))) > 1e-3      # it did train
