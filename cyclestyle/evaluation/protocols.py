"""The FID/KID protocols: how images reach the Inception network, and so which published tables
a number can be set beside. Read by the metrics and by the network itself (``inception.py``)."""

# How images reach the FID network's 299×299 input (``inception.resize_for_inception``), and so
# which published numbers an FID or KID can be set beside. Written into metrics.json and reports.
FID_PROTOCOLS = {
    "clean": "clean-fid's (Parmar, Zhang and Zhu, CVPR 2022): PIL's antialiased bicubic resize of the "
             "uint8 image; comparable with numbers computed with clean-fid",
    "legacy": "torch-fidelity's: TensorFlow 1's bilinear resize inside the network, without antialiasing, "
              "as the original TensorFlow FID; comparable with tables made with pytorch-fid or "
              "torch-fidelity, such as CUT's (Park et al. 2020), which include CycleGAN",
}
DEFAULT_FID_PROTOCOL = "clean"
