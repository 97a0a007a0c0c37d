"""neurodeploy: spiking networks from PyTorch training to BrainScaleS-2 (and its emulator)."""

__version__ = "0.1.0"
