"""Training methods by name (``METHODS``); ``base.py`` says what a method is.

A new method is one module here with a ``Method`` subclass registered under its name,
``@METHODS.register("name")``, and one import line below (or, outside the package, the same
decorator in any module imported before the run starts).
"""

from .base import METHODS, Group, Method, MethodError
from . import cut, cyclegan, fast_style, pix2pix  # noqa: E402,F401  (registers the built-in methods)

__all__ = ["METHODS", "Group", "Method", "MethodError"]
