"""The reference stream (100k ops) through the C book reproduces its sidecar, per call and in one batch."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from exos._book import lib

N_OPS = 100_000


class TestReferenceStream:
    def test_per_call_and_batch_match_the_sidecar(self, book_bench: ModuleType, tmp_path: Path) -> None:
        """Resting orders, volumes, levels, fills and traded volume equal the sidecar; both paths dump alike."""
        records, expected = book_bench.load_stream(N_OPS, 42, tmp_path)
        cap = book_bench.max_orders_for(expected)
        per_call = book_bench.run_raw(records, cap)
        book_bench.verify(per_call, expected, "per-call")
        sink = lib.exos_sink_new(64)
        try:
            batch, events = book_bench.run_batch(book_bench.make_commands(records), len(records), cap, sink)
        finally:
            lib.exos_sink_free(sink)
        book_bench.verify(batch, expected, "batch")
        assert events > N_OPS
        assert batch.dump() == per_call.dump()
        assert book_bench.traded_qty(records, cap) == expected["traded_qty"]

    def test_wrapper_matches_the_raw_binding(self, book_bench: ModuleType, tmp_path: Path) -> None:
        """Book.place/cancel end in the same state as the raw lib calls on a 20k-op prefix."""
        records, expected = book_bench.load_stream(20_000, 42, tmp_path)
        cap = book_bench.max_orders_for(expected)
        assert book_bench.run_wrapper(records, cap).dump() == book_bench.run_raw(records, cap).dump()
