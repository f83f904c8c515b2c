"""Training: autoencoder + k-means on recorded frames, cluster meanings, plots, model file.

Importing this package is cheap and torch-free; torch and scikit-learn are imported by the
modules that need them (``autoencoder``, ``kmeans``, ``train``, ``plots``), which need the
``[train]`` extra. The model file they write (``thermalcount.model.trained_file``) and
``export`` (``thermalcount.model.export``) live in ``model/`` and need numpy only, so
``export`` and ``inspect`` work without torch.
"""

TRAIN_EXTRA_HINT = "pip install 'thermalcount[train]'"


def require_training_stack():
    """Import torch and scikit-learn or raise TrainingError saying how to install them."""
    from thermalcount.errors import TrainingError

    from thermalcount.support.interrupts import interrupt_after

    try:
        with interrupt_after():  # Ctrl-C inside torch's import leaves it half made
            import torch  # noqa: F401
            import sklearn  # noqa: F401
    except ImportError as error:  # sklearn may fail on a missing dependency of its own
        raise TrainingError(f"training needs torch and scikit-learn ({error.name} is missing): {TRAIN_EXTRA_HINT}") from None
