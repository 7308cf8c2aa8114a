"""What `compile` wires together: the loss with the model's output activation, and the metrics with the loss.

Fusing. A loss that applies softmax or sigmoid to scores (cross-entropy, Dice) and a model whose output ends
in that same activation are joined: training asks the graph for the logits (one step before the activation,
graph.output_activation) and the loss applies the activation itself, with the gradient (p - y)/N computed
from the logits (log-sum-exp) instead of through probabilities that can round to 0. A model that ends in no
activation outputs logits already; one that ends in another activation is refused.

Metrics are stateful (tinyseg/metrics/metric.py): each entry of compile(metrics=[...]) becomes an object
that fit and evaluate update batch by batch and read once (the IoU of the whole epoch, not a mean of batch
IoUs). A name becomes tinyseg.metrics.by_name(name, ignore_index) (the loss's ignore_index: those pixels
count in no metric), a Metric object (MeanIoU(3), ...) is used as it is, and a function metric(y_true, y_out)
is wrapped in a MeanMetricWrapper (its batch values averaged over the samples), with the loss's ignore_index
bound if it takes an `ignore_index` argument. Then, if the loss ignores a label, every metric is tried (on a
copy) on a tiny batch whose targets hold that label: one that cannot leave it out is refused at compile,
not after a training step.
"""
import copy
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
    if isinstance(metrics, (str, metrics_module.Metric)) or callable(metrics) or \
            not isinstance(metrics, (list, tuple)):
        raise TypeError(f"{argument} must be a list of metric names or functions, got {metrics!r}")
    return list(metrics)


def weighted_metric_for(m, loss, from_logits=False):
    """The stateful metric for one entry of compile(weighted_metrics=[...]): as metric_for; fit and evaluate
    hand it the batch's sample weights (update_state(y_true, y_pred, sample_weight)). A function metric then
    takes them itself: fn(y_true, y_pred, sample_weight=None)."""
    metric = metric_for(m, loss, from_logits)
    if isinstance(metric, metrics_module.MeanMetricWrapper):
        if not _takes_keyword(metric._fn, "sample_weight"):
            raise ValueError(f"compile: weighted metric {metric_name(m, metric)!r} takes no sample_weight; pass it "
                             "in metrics=[...], or give weighted_metrics a function metric(y_true, y_pred, "
                             "sample_weight=None)")
        metric.weights_to_fn = True
    return metric


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
    """The stateful metric for one entry of compile(metrics=[...]) (module docstring), told the loss's
    ignore_index where it can be, and (metric names only) whether the model's outputs are logits."""
    if isinstance(m, metrics_module.Metric):
        values = copy.deepcopy(m).result()
        if isinstance(values, (list, tuple)):
            raise ValueError(f"compile: metric {m.name!r} reports {len(values)} values (one a threshold); fit's "
                             "logs hold one number a metric: give each threshold its own metric, e.g. "
                             "Precision(thresholds=0.3, name='precision_03')")
        return m
    if isinstance(m, str):
        return metrics_module.by_name(m, ignore_index=getattr(loss, "ignore_index", None), from_logits=from_logits)
    fn = _function_for(m, loss)
    own = getattr(m, "name", None)
    if own in metrics_module.METRICS and (metrics_module.METRICS[own] is m or hasattr(m, "from_logits")):
        # tinyseg's own accuracy_metric / mean_iou_metric (or get(name, ...)'s): the stateful metric of that name
        return metrics_module.by_name(own, ignore_index=getattr(fn, "ignore_index", None),
                                      from_logits=bool(getattr(m, "from_logits", False)) or from_logits)
    return metrics_module.MeanMetricWrapper(fn, name=metric_name(m, fn))


def _function_for(m, loss):
    """A metric function, with the loss's ignore_index bound if it takes one (and refused if it binds another)."""
    ignore_index = getattr(loss, "ignore_index", None)
    fn = metrics_module.get(m)
    if ignore_index is None:
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
            copy.deepcopy(fn).update_state(labels, probs)          # a copy: compile counts nothing
        except Exception as err:
            name = metric_name(spec, fn)
            raise ValueError(
                f"compile: metric {name!r} fails on targets that hold the loss's ignore_index={ignore_index} "
                f"({type(err).__name__}: {err}); use a metric that leaves that label out (a metric name, "
                "which compile asks for with the loss's ignore_index, or a function with an ignore_index "
                "argument)") from None
