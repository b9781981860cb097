"""Judging translators on held-out images: metrics, the ``evaluate`` and ``compare`` commands, reports."""
