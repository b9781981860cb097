"""The built-in demo (``cyclestyle demo``), its dataset, and the synthetic toy dataset of quick checks."""
