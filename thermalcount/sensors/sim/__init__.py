"""The thermal scene simulator (``--sensor sim``): scenes with ground truth, and the realism check."""
