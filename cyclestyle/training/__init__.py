"""Training a translator: the run (``loop.train``), one step of the paper's algorithm and its
losses (``step``, ``losses``), launching processes (``launch``), the data order, the history pool,
the learning-rate schedule, checkpoints and the dashboard."""
