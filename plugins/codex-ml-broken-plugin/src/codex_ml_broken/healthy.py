"""A healthy entry point in the same broken distribution: it must still load."""


def build():
    """Always 1.0."""
    return lambda preds, targets: 1.0
