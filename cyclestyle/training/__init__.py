"""Training a translator: the loop (``loop.train``), one step of the paper's algorithm and its
losses, the data order, the history pool, the learning-rate schedule, checkpoints and the dashboard."""
