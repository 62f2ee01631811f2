"""Search: per-layer sensitivity sweeps and the int8 recipe search."""
