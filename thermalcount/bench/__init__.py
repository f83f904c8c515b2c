"""``thermalcount bench``: per-stage latency of the live path, the comparison graphs, and the targets table."""
