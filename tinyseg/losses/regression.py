"""Mean squared error."""
import numpy as np

from .base import Loss, _as_target_array, _check_pred, _matches, _shape_text


class MeanSquaredError(Loss):
    """L = mean((y_pred - y_true)^2) over every entry;  dL/dy_pred = 2 (y_pred - y_true) / M.

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

    def forward(self, y_true, y_pred):
        _check_pred(y_pred, self.name)
        y_true = self.check_targets(y_true, y_pred.shape)
        diff = np.subtract(y_pred, y_true, dtype=np.float64)
        scale = float(np.max(np.abs(diff))) if diff.size else 0.0
        self._diff, self._dtype = diff, y_pred.dtype
        if scale == 0:
            return 0.0
        return scale * (scale * float(np.mean(np.square(diff / scale))))

    def backward(self):
        # may overflow the predictions' dtype (a float32 error beyond 1.7e38): the inf is then refused, by
        # name, by the optimizer's check of the gradients, so numpy need not warn here as well
        with np.errstate(over="ignore"):
            return (2 * self._diff / self._diff.size).astype(self._dtype)
