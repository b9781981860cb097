"""Other programs' translators in, and this toolkit's out to other runtimes' users.

``official.py`` converts generators saved by the official CycleGAN code (junyanz/pytorch-CycleGAN-
and-pix2pix) into this toolkit's weights files; ``download.py`` fetches the official pretrained
models (resumable, cached); ``command.py`` holds the ``import-official`` and ``pretrained``
commands.
"""
