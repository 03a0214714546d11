"""deepspike: train, evaluate and cost deep spiking neural networks."""

__version__ = "0.1.0"
