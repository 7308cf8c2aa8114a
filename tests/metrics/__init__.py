"""Metrics (tinyseg/metrics/): the confusion matrix and the scores from it, the Keras-facing metrics, ignore
indices and class names."""
