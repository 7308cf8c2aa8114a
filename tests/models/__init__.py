"""Models: Sequential, functional graphs, U-Net, fit/evaluate/predict, saving and resuming."""
