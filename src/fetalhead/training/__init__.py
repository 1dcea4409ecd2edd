"""Training the head segmentation network (needs the optional ``train`` extra: PyTorch).

``train`` (seeded, resumable, K-fold), ``unet`` (the network), ``export`` (ONNX with its model card).

May use: the wings below it (not ``batch``, ``web`` or ``cli``).
"""
