"""exos oracle feeds: pushed prices (median across publishers), a multi-source index with exclusions, and an EMA
of the venue's own book for pre-launch markets."""

from exos_oracles.feeds import IndexKind, MedianFeed, PushedKind, median
from exos_oracles.mark_ema import MarkEmaFeed, MarkEmaKind

__all__ = ["IndexKind", "MarkEmaFeed", "MarkEmaKind", "MedianFeed", "PushedKind", "median"]
