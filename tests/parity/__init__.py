"""tinyseg against PyTorch and Keras 3: layers, losses, optimizers, models and whole training runs."""
