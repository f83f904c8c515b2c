"""Leaf helpers every layer may use: safe output files, secret redaction, output streams."""
