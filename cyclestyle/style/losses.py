"""Perceptual losses, as pure functions of VGG activations and images: what Gatys's optimisation
and the fast feed-forward networks both minimise.

* [G16]  L. Gatys, A. Ecker, M. Bethge, "Image style transfer using convolutional neural
  networks", CVPR 2016: content (eq. 1) and Gram-matrix style losses (eq. 3–5).
* [J16]  J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual losses for real-time style transfer and
  super-resolution", ECCV 2016: the same terms as losses for training a network (§3.2).
* [MV15] A. Mahendran, A. Vedaldi, "Understanding deep image representations by inverting
  them", CVPR 2015: the total-variation regulariser.

The losses are means rather than sums, and Gram matrices are divided by C·H·W ([J16] §3.2, and
pytorch/examples' fast_neural_style), so that their size does not depend on the image's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gram_matrix(features: Tensor) -> Tensor:
    """Channel correlations N×C×C of N×C×H×W activations [G16 eq. 3], divided by C·H·W so
    that images of different sizes give comparable values (and a style image need not have the
    output's size)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference of the content layer's activations [G16 eq. 1]."""
    return F.mse_loss(features, target)


def style_loss(features: dict[str, Tensor], targets: dict[str, Tensor], layer_weights: dict[str, float]) -> Tensor:
    """Σ_l w_l · mean (G_l − A_l)² over the style layers [G16 eq. 4–5]; a target of batch 1 is
    compared with every image of the batch."""
    terms = [w * F.mse_loss(gram_matrix(features[name]), targets[name].expand(features[name].shape[0], -1, -1))
             for name, w in layer_weights.items() if w]
    return torch.stack(terms).sum()


def tv_loss(image: Tensor) -> Tensor:
    """Squared total variation [MV15]: mean squared difference of neighbouring pixels."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
