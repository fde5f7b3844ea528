"""cnnbench: declarative verification and benchmarking of PyTorch CNN layers.

Importing the package imports neither torch nor torchvision; the modules that need them import them.
"""

__version__ = "0.1.0"
