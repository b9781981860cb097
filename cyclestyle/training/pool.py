"""The history of generated images that discriminators train on (Shrivastava et al. 2017,
CycleGAN section 4): showing D a buffer of older fakes as well as the newest reduces oscillation.
"""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """Keeps up to ``size`` past fakes. Each incoming image is returned as is while the pool fills;
    afterwards, with probability ½ it is swapped for a random stored image (which is returned) and
    otherwise returned itself, as in the reference implementation.

    The pool owns its random stream so that a resumed run draws exactly what an uninterrupted
    one would; its state (images and stream) is part of every checkpoint.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() < 0.5:
                i = self.rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        images = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        stored = state["images"]
        self.images = [img.unsqueeze(0).to(device) for img in stored] if stored.numel() else []
        rng_state = state["rng"]
        # torch.load returns the nested tuple as lists; random.setstate needs tuples.
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
