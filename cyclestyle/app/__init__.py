"""The web app: trained translators in a local web page (``cyclestyle serve``) or a Hugging Face
Space (the ``app.py`` that ``cyclestyle push`` writes). ``translators.py`` knows what is offered and
translates, with no web library; ``web.py`` is the Gradio page (the optional ``[app]`` extra)."""

GRADIO_VERSION = "6.31.0"
"""The Gradio that the ``[app]`` extra pins (pyproject.toml), and a pushed Space's ``sdk_version``."""

INSTALL = 'pip install "cyclestyle[app]"'
"""The line that installs the web app's libraries."""
