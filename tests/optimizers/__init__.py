"""Optimizers (tinyseg/optimizers/): steps by hand and against PyTorch and Keras, clipping, weight decay,
learning-rate schedules, errors."""
