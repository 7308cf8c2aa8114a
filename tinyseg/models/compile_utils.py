"""What `compile` wires together: the loss with the model's output activation, and the metrics with the loss.

Fusing. A loss that applies softmax or sigmoid to scores (cross-entropy, Dice) and a model whose output ends
in that same activation are joined: training asks the graph for the logits (one step before the activation,
graph.output_activation) and the loss applies the activation itself, with the gradient (p - y)/N computed
from the logits (log-sum-exp) instead of through probabilities that can round to 0. A model that ends in no
activation outputs logits already; one that ends in another activation is refused.

Metrics follow the loss's ignore_index: a metric named by a string is asked for with it
(tinyseg.metrics.get(name, ignore_index)), a function with an `ignore_index` argument gets it bound. Then,
if the loss ignores a label, every metric is tried on a tiny batch whose targets hold that label: one that
cannot leave it out is refused at compile, not after a training step.
"""
import functools
import inspect

import numpy as np

from .. import metrics as metrics_module


def fuses(loss, final):
    """True if the loss applies the model's final activation itself (see the module docstring); raise if the
    two disagree. final: the name of the activation the model's output ends in ('linear' for none)."""
    if loss.from_logits is True and final != "linear":
        raise ValueError(f"compile: the loss has from_logits=True (raw scores), but the last layer ends in "
                         f"'{final}'; remove that activation or pass from_logits=False")
    if loss.from_logits is False and loss.activation is not None and final == "linear":
        raise ValueError(f"compile: the loss has from_logits=False (probabilities), but the last layer has no "
                         f"activation; end the model with activation='{loss.activation}' or pass "
                         "from_logits=True")
    if loss.activation is None or final == "linear":
        return False
    if final == loss.activation:
        return True
    raise ValueError(
        f"compile: loss '{loss.name}' applies {loss.activation} to the model's scores, but the "
        f"last layer ends in '{final}'. End the model with activation='{loss.activation}' "
        "(or with no activation, to output raw logits).")


def metric_list(metrics, argument="metrics"):
    """compile's metrics (or weighted_metrics) argument as a list (None: no metrics)."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"{argument} must be a list of metric names or functions, got {metrics!r}")
    return list(metrics)


def weighted_metric_for(m, loss, from_logits=False):
    """The callable for one entry of compile(weighted_metrics=[...]): as metric_for, and it must take the
    batch's sample weights, fn(y_true, y_pred, sample_weight=None) (Keras hands weighted metrics the weights
    that fit and evaluate were given; None without them)."""
    fn = metric_for(m, loss, from_logits)
    if not _takes_keyword(fn, "sample_weight"):
        raise ValueError(f"compile: weighted metric {metric_name(m, fn)!r} takes no sample_weight; pass it in "
                         "metrics=[...], or give weighted_metrics a function metric(y_true, y_pred, "
                         "sample_weight=None)")
    return fn


def weighted_metric_names(names, weighted):
    """Keras's names for weighted metrics: a name already among the unweighted metrics gets 'weighted_'."""
    return [("weighted_" + n) if n in names else n for n in weighted]


def metric_name(m, fn):
    """The name a metric's values have in the logs: the string it was named by, or the function's name."""
    return m if isinstance(m, str) else getattr(fn, "name", getattr(fn, "__name__", repr(fn)))


def _takes_keyword(fn, name):
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def metric_for(m, loss, from_logits=False):
    """The callable for one entry of compile(metrics=[...]), told the loss's ignore_index where it can be,
    and (metric names only) whether the model's outputs are logits."""
    ignore_index = getattr(loss, "ignore_index", None)
    if isinstance(m, str) and from_logits:
        return metrics_module.get(m, ignore_index=ignore_index, from_logits=True)
    if isinstance(m, str) and ignore_index is not None and _takes_keyword(metrics_module.get, "ignore_index"):
        return metrics_module.get(m, ignore_index=ignore_index)
    fn = metrics_module.get(m)
    if ignore_index is None or isinstance(m, str):
        return fn
    bound = getattr(fn, "ignore_index", None)
    if bound is not None:
        if bound != ignore_index:
            raise ValueError(f"compile: metric {metric_name(m, fn)!r} leaves out label {bound}, but the loss "
                             f"ignores label {ignore_index}; give both the same ignore_index")
        return fn
    if _takes_keyword(fn, "ignore_index"):
        wrapped = functools.partial(fn, ignore_index=ignore_index)
        wrapped.name, wrapped.ignore_index = metric_name(m, fn), ignore_index
        return wrapped
    return fn


def try_metrics(model, specs, fns, loss):
    """With a loss that ignores a label: run every metric on a tiny batch holding that label (module docstring)."""
    ignore_index = getattr(loss, "ignore_index", None)
    if ignore_index is None or not fns or model._graph is None or len(model.outputs) != 1:
        return
    k = model.output_shape[-1]
    shape = (2,) * len(model.output_shape)                 # 2 samples (of 2 x 2 pixels for images)
    labels = (np.arange(int(np.prod(shape))) % (2 if k == 1 else k)).reshape(shape)
    probs = labels[..., None].astype(model.dtype) if k == 1 else np.eye(k, dtype=model.dtype)[labels]
    labels.flat[-1] = ignore_index
    for spec, fn in zip(specs, fns):
        try:
            fn(labels, probs)
        except Exception as err:
            name = metric_name(spec, fn)
            raise ValueError(
                f"compile: metric {name!r} fails on targets that hold the loss's ignore_index={ignore_index} "
                f"({type(err).__name__}: {err}); use a metric that leaves that label out (a metric name, "
                "which compile asks for with the loss's ignore_index, or a function with an ignore_index "
                "argument)") from None
