"""cyclestyle: unpaired image-to-image translation with CycleGAN, and the Gatys neural-style baseline."""

__version__ = "0.1.0"
