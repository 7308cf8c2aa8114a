"""Data sets: the generated shapes, image folders, CIFAR-10 and CamVid readers."""
