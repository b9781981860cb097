"""Neural style transfer, the family CycleGAN grew from: Gatys et al.'s optimisation."""
