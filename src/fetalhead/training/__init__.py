"""Training the head segmentation network (needs the optional ``train`` extra: PyTorch)."""
