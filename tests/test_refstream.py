"""Tests for bench/refstream.py, the project's own benchmark stream generator."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_GEN = REPO_ROOT.parent / "shared" / "bench" / "gen_stream.py"


def _load_refstream() -> ModuleType:
    """Import bench/refstream.py by path (bench/ is not a package)."""
    path = REPO_ROOT / "bench" / "refstream.py"
    spec = importlib.util.spec_from_file_location("exos_bench_refstream", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


refstream = _load_refstream()


class TestRefStream:
    @pytest.mark.parametrize(("n", "seed"), [(20_000, 42), (5_000, 7)])
    def test_matches_shared_generator(self, tmp_path: Path, n: int, seed: int) -> None:
        """Our stream and sidecar are byte-identical to the shared generator's."""
        if not SHARED_GEN.exists():
            pytest.skip(f"shared generator not present at {SHARED_GEN}")
        theirs = tmp_path / "shared.bin"
        subprocess.run(
            [sys.executable, str(SHARED_GEN), "--n", str(n), "--seed", str(seed), "--out", str(theirs)],
            check=True,
            capture_output=True,
        )
        ours = tmp_path / "ours.bin"
        refstream.write(n, seed, ours)

        assert ours.read_bytes() == theirs.read_bytes()
        ours_json = tmp_path / "ours.bin.json"
        theirs_json = tmp_path / "shared.bin.json"
        assert ours_json.read_bytes() == theirs_json.read_bytes()

    def test_sidecar_consistent_with_records(self, tmp_path: Path) -> None:
        """Sidecar counts agree with the decoded records and cancels are valid."""
        path = refstream.ensure(20_000, 42, tmp_path)
        assert path == tmp_path / "stream-20000-42.bin"
        records = refstream.read(path)
        expected = json.loads((tmp_path / "stream-20000-42.bin.json").read_text())
        assert expected == refstream.generate(20_000, 42)[1]

        assert len(records) == expected["n_ops"] == 20_000
        assert expected["record"] == refstream.RECORD.format
        assert expected["mid"] == refstream.MID
        assert expected["n_passive"] + expected["n_cancel"] + expected["n_aggressive"] == expected["n_ops"]

        mid = refstream.MID
        counts = [0, 0, 0]
        placed: dict[int, tuple[int, int]] = {}  # passive oid -> (side, price)
        cancelled: set[int] = set()
        next_oid = 1
        for op, side, qty, price, oid in records:
            counts[op] += 1
            assert side in (0, 1)
            if op == refstream.PASSIVE:
                assert oid == next_oid
                next_oid += 1
                assert 1 <= qty <= 100
                assert (price < mid) if side == 0 else (price > mid)
                assert 1 <= abs(price - mid) <= 32
                placed[oid] = (side, price)
            elif op == refstream.CANCEL:
                assert qty == 0
                assert oid in placed, "cancel of an id never placed as a resting order"
                assert oid not in cancelled, "order cancelled twice"
                assert placed[oid] == (side, price)
                cancelled.add(oid)
            else:
                assert op == refstream.AGGRESSIVE
                assert oid == next_oid
                next_oid += 1
                assert 1 <= qty <= 300
                assert price == (mid + 64 if side == 0 else mid - 64)

        assert counts == [expected["n_passive"], expected["n_cancel"], expected["n_aggressive"]]
        assert expected["max_order_id"] == next_oid - 1 == counts[0] + counts[2]
        assert expected["final_bid_orders"] + expected["final_ask_orders"] <= counts[0] - counts[1]
        assert expected["fills"] >= counts[2]

    def test_ensure_reuses_existing_file(self, tmp_path: Path) -> None:
        """ensure() does not regenerate a stream that is already cached."""
        path = refstream.ensure(1_000, 3, tmp_path)
        stamp = path.stat().st_mtime_ns
        assert refstream.ensure(1_000, 3, tmp_path) == path
        assert path.stat().st_mtime_ns == stamp
