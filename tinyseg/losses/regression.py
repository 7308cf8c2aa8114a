"""Mean squared error."""
import numpy as np

from .base import Loss, _as_target_array, _check_pred, _matches, _position_weights, _shape_text


class MeanSquaredError(Loss):
    """L = mean((y_pred - y_true)^2) over every entry;  dL/dy_pred = 2 (y_pred - y_true) / M (M entries).

    With sample weights w, (N,) or (N, H, W) (losses/base.py), every entry of position m is multiplied by w_m
    and M stays the number of entries (Keras's reduction): L = sum w_m d_mc^2 / M, dL/dy_pred = 2 w_m d_mc / M.

    The difference and the mean of its squares are computed in float64 and scaled by the largest |difference|
    s, L = s^2 mean((d / s)^2): float32 predictions 1e30 away from their targets give L = 1e60 (a float64
    number), where squaring in float32 would give inf.
    """

    name = "mean_squared_error"

    def check_targets(self, y_true, pred_shape):
        y_true = _as_target_array(y_true, self.name)
        if not _matches(y_true.shape, tuple(pred_shape)):
            raise ValueError(f"{self.name}: y_true has shape {y_true.shape}, expected {_shape_text(pred_shape)}")
        if y_true.dtype.kind == "f" and not np.all(np.isfinite(y_true)):
            raise ValueError(f"{self.name}: y_true contains NaN or inf")
        return y_true

    def forward(self, y_true, y_pred, sample_weight=None):
        _check_pred(y_pred, self.name)
        y_true = self.check_targets(y_true, y_pred.shape)
        w = _position_weights(sample_weight, y_pred.shape, self.name, np.float64)
        diff = np.subtract(y_pred, y_true, dtype=np.float64)
        scale = float(np.max(np.abs(diff))) if diff.size else 0.0
        self._diff, self._dtype = diff, y_pred.dtype
        self._weights = None if w is None else w[..., None]       # the same weight for a position's channels
        if scale == 0:
            return 0.0
        squares = np.square(diff / scale)
        if self._weights is not None:
            squares = squares * self._weights
        return scale * (scale * float(np.sum(squares) / diff.size))

    def backward(self):
        # may overflow the predictions' dtype (a float32 error beyond 1.7e38): the inf is then refused, by
        # name, by the optimizer's check of the gradients, so numpy need not warn here as well
        with np.errstate(over="ignore"):
            grad = 2 * self._diff / self._diff.size
            if self._weights is not None:
                grad = grad * self._weights
            return grad.astype(self._dtype)
