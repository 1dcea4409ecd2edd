"""The segmentation network at run time, and what shapes its input.

``transforms`` (views: affines, warping, standardisation), ``pipeline`` (coarse and fine views to the
head ellipse, with a ``predict`` callable, so it is testable with a synthetic predictor),
``runtime`` (the ONNX model and its metadata; the shipped weights lie in ``weights/``),
``uncertainty`` (calibrated 90 % intervals and the review score), ``augment`` (scan damage and
scanner looks, for training and the studies' variations), ``quantize`` (the INT8 copy).

May use: ``clinical``, ``scans``.
"""
