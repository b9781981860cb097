"""Other programs' translators in, and this toolkit's out to other runtimes' users.

``official.py`` converts generators saved by the official CycleGAN code (junyanz/pytorch-CycleGAN-
and-pix2pix) into this toolkit's weights files; ``download.py`` fetches the official pretrained
models (resumable, cached); ``datasets.py`` fetches and unpacks the official CycleGAN and pix2pix
datasets.
"""
