"""Using a trained translator: find and open it, and translate tensors or images of any size
(tiled, with whole-image normalisation, when they are large)."""
