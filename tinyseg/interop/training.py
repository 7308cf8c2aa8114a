"""Training the same way in torch: losses, targets and optimizers converted, and runs compared.

    loss_fn = to_torch_loss(model.loss); target = targets_to_torch(model.loss, y)
    opt = to_torch_optimizer(model.optimizer, module.parameters())
    weight_differences(model, module), gradient_differences(model, module)
"""
import numpy as np

from .. import losses as tl
from .. import optimizers as topt
from .conventions import nhwc_to_nchw
from .tensors import import_torch_modules, relative_error, require_torch, to_numpy, to_tensor, torch_dtype
from .weights import torch_gradients, torch_state_dict


# =========================================================================================================
# Losses and optimizers
# =========================================================================================================
def to_torch_loss(loss, dtype="float32"):
    """The torch loss module computing what the tinyseg loss computes, on to_torch(model)'s logits and
    targets_to_torch(loss, y_true). dtype: of the class weights (the model's dtype)."""
    m = import_torch_modules()
    from torch import nn
    if isinstance(loss, tl.CategoricalCrossentropy):
        module = nn.CrossEntropyLoss()                       # probability targets (N, K, ...) allowed
    elif isinstance(loss, tl.SparseCategoricalCrossentropy):
        module = _torch_ce(loss)
    elif isinstance(loss, tl.BinaryCrossentropy):
        module = nn.BCEWithLogitsLoss()
    elif isinstance(loss, tl.MeanSquaredError):
        module = nn.MSELoss()
    elif isinstance(loss, tl.DiceLoss):
        module = m.TorchDiceLoss(loss.smooth, loss.ignore_index, loss.mode)
    elif isinstance(loss, tl.CEDiceLoss):
        module = m.TorchCEDiceLoss(_torch_ce(loss.ce), m.TorchDiceLoss(loss.dice.smooth, loss.dice.ignore_index),
                                   loss.ce_weight, loss.dice_weight)
    else:
        raise TypeError(f"no PyTorch equivalent for the loss {type(loss).__name__}")
    return module.to(torch_dtype(dtype))


def _torch_ce(loss):
    require_torch()
    from torch import nn
    weight = None if loss.class_weight is None else to_tensor(loss.class_weight)
    # PyTorch always ignores some index (-100 by default); tinyseg's None ignores nothing, and labels are >= 0
    ignore = -100 if loss.ignore_index is None else int(loss.ignore_index)
    return nn.CrossEntropyLoss(weight=weight, ignore_index=ignore)


def targets_to_torch(loss, y_true, dtype="float32"):
    """tinyseg targets for `loss` as the tensor its to_torch_loss module expects.

    one-hot / probability targets (N, [H, W,] K) -> (N, K, [H, W]) floats;  class labels (N, [H, W]) (a
    trailing axis of 1 dropped) -> int64;  binary masks (N, H, W) or (N, H, W, 1) -> (N, 1, H, W) floats;
    MSE targets: as y_pred, NCHW.
    """
    y = to_numpy(y_true)
    labels = isinstance(loss, (tl.SparseCategoricalCrossentropy, tl.CEDiceLoss, tl.DiceLoss))
    if labels and y.ndim in (2, 4) and y.shape[-1] == 1:
        y = y[..., 0]
    if isinstance(loss, tl.DiceLoss) and loss.mode == "binary":
        return to_tensor(y, dtype)                         # 0/1 (or soft) masks, compared with sigmoid(z)
    if labels:
        return to_tensor(y.astype(np.int64))
    if isinstance(loss, tl.BinaryCrossentropy) and y.ndim == 3:
        y = y[..., None]
    return to_tensor(nhwc_to_nchw(y), dtype)


def to_torch_optimizer(optimizer, params):
    """The torch.optim optimizer taking the same steps as the (fresh) tinyseg optimizer.

    SGD (momentum, Nesterov) -> torch.optim.SGD; Adam(epsilon_style='torch') -> torch.optim.Adam;
    AdamW(epsilon_style='torch') -> torch.optim.AdamW;
    RMSprop(epsilon_style='torch') -> torch.optim.RMSprop(alpha=rho, eps, momentum, centered). A Keras-style
    Adam or RMSprop has no fixed torch eps (see the optimizers module) and is refused.
    """
    torch = require_torch()
    _refuse_what_torch_cannot_hold(optimizer)
    name, arguments = _torch_optimizer_arguments(optimizer)
    return getattr(torch.optim, name)(params, lr=optimizer.learning_rate, **arguments)


# Why a Keras-style epsilon has no torch twin, by class (AdamW before Adam, which it extends)
_KERAS_EPSILON = {
    topt.AdamW: "create the AdamW with epsilon_style='torch' (Adam's epsilon)",
    topt.Adam: "a Keras-style Adam adds epsilon before the bias correction, which no fixed torch eps reproduces; "
               "create it with Adam(epsilon_style='torch') (or set torch's eps to "
               "adam_epsilon_keras_to_torch(eps, beta_2, t) before step t)",
    topt.RMSprop: "a Keras-style RMSprop adds epsilon inside the square root, sqrt(v + eps), and torch outside "
                  "it, sqrt(v) + eps: no fixed torch eps reproduces it; create it with "
                  "RMSprop(epsilon_style='torch')",
}


def _refuse_what_torch_cannot_hold(optimizer):
    """A torch optimizer holds no steps taken, no schedule (torch.optim.lr_scheduler steps it), no clipping
    (torch.nn.utils.clip_grad_norm_ / clip_grad_value_ before the step), no decoupled decay but AdamW's, and
    no Keras-style epsilon."""
    if optimizer.iterations:
        raise ValueError(f"to_torch_optimizer: the {optimizer.name} optimizer has already taken "
                         f"{optimizer.iterations} steps; its state is not converted, so convert a fresh one")
    if isinstance(optimizer._learning_rate, topt.schedules.LearningRateSchedule):
        raise ValueError("to_torch_optimizer: a learning-rate schedule is not converted; give torch the rate with "
                         "a torch.optim.lr_scheduler (see tinyseg/schedules.py for the matching ones)")
    clipping = {k: getattr(optimizer, k) for k in ("clipnorm", "clipvalue", "global_clipnorm")
                if getattr(optimizer, k) is not None}
    if clipping:
        raise ValueError(f"to_torch_optimizer: {clipping} is not converted; torch clips before the step, with "
                         "torch.nn.utils.clip_grad_norm_ or clip_grad_value_")
    for cls, reason in _KERAS_EPSILON.items():
        if isinstance(optimizer, cls) and optimizer.epsilon_style != "torch":
            raise ValueError(f"to_torch_optimizer: {reason}")
    if optimizer.weight_decay and not isinstance(optimizer, topt.AdamW):
        raise ValueError(f"to_torch_optimizer: {optimizer.name}'s weight_decay is decoupled (theta -= lr*wd*theta); "
                         "torch's weight_decay of SGD, Adam and RMSprop adds wd*theta to the gradient instead")


def _torch_optimizer_arguments(optimizer):
    """(the torch.optim class name, its arguments but params and lr) for the optimizer's settings."""
    o = optimizer
    if isinstance(o, topt.AdamW):
        return "AdamW", dict(betas=(o.beta_1, o.beta_2), eps=o.epsilon, weight_decay=o.weight_decay)
    if isinstance(o, topt.SGD):
        return "SGD", dict(momentum=o.momentum, nesterov=o.nesterov)
    if isinstance(o, topt.Adam):
        return "Adam", dict(betas=(o.beta_1, o.beta_2), eps=o.epsilon)
    if isinstance(o, topt.RMSprop):
        return "RMSprop", dict(alpha=o.rho, eps=o.epsilon, momentum=o.momentum, centered=o.centered)
    raise TypeError(f"no PyTorch optimizer for {type(o).__name__}")


# =========================================================================================================
# Comparing
# =========================================================================================================
def weight_differences(model, module):
    """{name: relative_error} between the model's weights and the module's state_dict, entry by entry."""
    mine = torch_state_dict(model)
    theirs = module.state_dict()
    return {name: relative_error(mine[name], theirs[name]) for name in mine
            if not name.endswith("num_batches_tracked")}


def gradient_differences(model, module):
    """{name: relative_error} between the model's last gradients and the module's param.grad."""
    mine = torch_gradients(model)
    return {name: relative_error(mine[name], p.grad) for name, p in module.named_parameters()}
