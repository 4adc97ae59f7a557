"""exos perpetual futures: the "perp" market type (entry point `perps` in group `exos`)."""
