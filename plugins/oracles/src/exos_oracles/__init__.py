"""exos oracle feeds: pushed prices (median across publishers) and a multi-source index with exclusions."""

from exos_oracles.feeds import IndexKind, MedianFeed, PushedKind, median

__all__ = ["IndexKind", "MedianFeed", "PushedKind", "median"]
