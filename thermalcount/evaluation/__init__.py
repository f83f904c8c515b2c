"""Counting accuracy: the suite of held-out simulated doorways, its training split, and scoring."""
