"""The `exos` command end to end, as a subprocess: simulate, replay, run, plugins, and its error lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SPOT = REPO_ROOT / "examples" / "spot.toml"
ADMIN = "0x1111111111111111111111111111111111111111"  # the first admin in examples/spot.toml
SELLER = "0x" + "00" * 18 + "aaaa"
BUYER = "0x" + "00" * 18 + "bbbb"
HASH_LINE = re.compile(r"state hash: [0-9a-f]{64}")
ERROR_LINE = re.compile(r"error: [A-Z][A-Z0-9_]*: \S.*")


def exos(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m exos.cli ARGS` and capture its output."""
    command = [sys.executable, "-m", "exos.cli", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def last_line(text: str) -> str:
    """The last non-empty line of an output."""
    return text.rstrip("\n").splitlines()[-1]


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: str) -> str:
    """Exit 1 with exactly one stderr line, `error: CODE: message`, and no traceback; returns that line."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert ERROR_LINE.fullmatch(lines[0]), lines[0]
    assert lines[0].startswith(f"error: {code}: "), lines[0]
    return lines[0]


def write_flow(path: Path, lines: list[dict[str, Any]]) -> Path:
    """Write a JSON-lines flow."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def deposits() -> list[dict[str, Any]]:
    """Fund a seller with BTC and a buyer with USDC (deposits are signed by an admin)."""
    return [
        {"type": "deposit", "address": SELLER, "signer": ADMIN, "timestamp": 1, "asset": "BTC", "amount": "1"},
        {"type": "deposit", "address": BUYER, "signer": ADMIN, "timestamp": 1, "asset": "USDC", "amount": "100000"},
    ]


def place(address: str, side: str, price: str, timestamp: int) -> dict[str, Any]:
    """A GTC limit order on BTC-USDC for 0.0100 BTC."""
    return {"type": "place", "address": address, "timestamp": timestamp, "market": "BTC-USDC", "side": side,
            "price": price, "size": "0.0100"}  # fmt: skip


def manifest_variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of examples/spot.toml with one exact text replaced."""
    text = SPOT.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


class TestSimulate:
    """`exos simulate`: a seeded flow, its summary and its state hash."""

    def test_summary_ends_with_the_state_hash(self, tmp_path: Path) -> None:
        """Exit 0; throughput, fills and one top-of-book line per market, then `state hash: <64 hex>` last."""
        result = exos("simulate", SPOT, "--orders", "3000", "--seed", "5", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        out = result.stdout
        assert HASH_LINE.fullmatch(last_line(out)), out
        assert re.search(r"^commands: 3,000 \([\d,]+ accepted\) in [\d.]+ s: [\d,]+ commands/s$", out, re.M), out
        fills = re.search(r"^fills: ([\d,]+)$", out, re.M)
        assert fills is not None, out
        assert int(fills.group(1).replace(",", "")) > 0
        assert re.search(r"^top of book:$", out, re.M), out
        for market in ("BTC-USDC", "ETH-USDC"):
            assert re.search(rf"^  {market}: bid .+ \| ask .+ \| \d+ open orders$", out, re.M), out

    def test_same_seed_same_hash_other_seed_other_hash(self, tmp_path: Path) -> None:
        """The same seed twice gives the same state hash; another seed gives another."""
        runs = [exos("simulate", SPOT, "--orders", "3000", "--seed", seed, cwd=tmp_path) for seed in ("5", "5", "6")]
        for result in runs:
            assert result.returncode == 0, result.stderr
        first, again, other = (last_line(result.stdout) for result in runs)
        assert HASH_LINE.fullmatch(first)
        assert first == again
        assert other != first
        assert HASH_LINE.fullmatch(other)

    def test_journal_replays_to_the_same_hash(self, tmp_path: Path) -> None:
        """`simulate --journal DIR` then `replay DIR` print the same `state hash:` last line."""
        journal = tmp_path / "journal"
        simulated = exos("simulate", SPOT, "--orders", "3000", "--seed", "5", "--journal", journal, cwd=tmp_path)
        assert simulated.returncode == 0, simulated.stderr
        assert sorted(journal.glob("journal-*.seg")), "no journal segment written"
        plain = exos("simulate", SPOT, "--orders", "3000", "--seed", "5", cwd=tmp_path)
        replayed = exos("replay", journal, cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stderr
        assert "Traceback" not in replayed.stderr
        assert HASH_LINE.fullmatch(last_line(replayed.stdout)), replayed.stdout
        assert last_line(replayed.stdout) == last_line(simulated.stdout) == last_line(plain.stdout)
        # 1000 accounts x 3 assets of funding, then the 3000 orders
        assert re.search(r"^replayed 6,000 commands in [\d.]+ s$", replayed.stdout, re.M), replayed.stdout


class TestRun:
    """`exos run MANIFEST --flow FILE`: a JSON-lines flow in human units."""

    def test_crossing_orders_print_a_fill_and_the_hash(self, tmp_path: Path) -> None:
        """Deposits, a sell and a crossing buy at "65000.00": events include both sides of a Fill, then the hash."""
        flow = write_flow(tmp_path / "flow.jsonl", [*deposits(), place(SELLER, "sell", "65000.00", 2),
                                                    place(BUYER, "buy", "65000.00", 3)])  # fmt: skip
        result = exos("run", SPOT, "--flow", flow, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stdout.splitlines()
        assert HASH_LINE.fullmatch(lines[-1]), result.stdout
        assert sum(" Deposited " in line for line in lines) == 2
        assert sum(" OrderAccepted " in line for line in lines) == 2
        fills = [line for line in lines if " Fill " in line]
        assert len(fills) == 2, result.stdout  # one event per side of the trade
        for line in fills:
            assert "market=BTC-USDC" in line
            assert "price=6500000" in line  # 65000.00 at tick 0.01
            assert "size=100" in line  # 0.0100 at lot 0.0001
        assert any("maker=True" in line and SELLER in line for line in fills), fills
        assert any("maker=False" in line and BUYER in line for line in fills), fills
        assert sum(" CommandDone " in line and "accepted=True" in line for line in lines) == 4
        again = exos("run", SPOT, "--flow", flow, cwd=tmp_path)
        assert last_line(again.stdout) == lines[-1]

    def test_off_tick_price_is_one_error_line(self, tmp_path: Path) -> None:
        """A price of "65000.005" on a 0.01 tick exits 1 with one `error: OFF_TICK:` line naming the flow line."""
        flow = write_flow(tmp_path / "flow.jsonl", [*deposits(), place(SELLER, "sell", "65000.00", 2),
                                                    place(BUYER, "buy", "65000.005", 3)])  # fmt: skip
        result = exos("run", SPOT, "--flow", flow, cwd=tmp_path)
        line = assert_one_error_line(result, "OFF_TICK")
        assert "flow.jsonl:4" in line
        assert "65000.005" in line
        assert "state hash" not in result.stdout  # the run stopped at the bad line

    def test_debug_shows_the_traceback(self, tmp_path: Path) -> None:
        """With --debug the same off-tick error raises: the traceback and the FlowError appear on stderr."""
        flow = write_flow(tmp_path / "flow.jsonl", [*deposits(), place(BUYER, "buy", "65000.005", 3)])
        result = exos("--debug", "run", SPOT, "--flow", flow, cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback (most recent call last)" in result.stderr
        assert "FlowError" in result.stderr
        assert "65000.005" in result.stderr

    def test_journal_of_a_run_replays_to_its_hash(self, tmp_path: Path) -> None:
        """`run --journal DIR` then `replay DIR` end on the same state hash."""
        flow = write_flow(tmp_path / "flow.jsonl", [*deposits(), place(SELLER, "sell", "65000.00", 2),
                                                    place(BUYER, "buy", "65000.00", 3)])  # fmt: skip
        journal = tmp_path / "journal"
        ran = exos("run", SPOT, "--flow", flow, "--journal", journal, cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        replayed = exos("replay", journal, cwd=tmp_path)
        assert replayed.returncode == 0, replayed.stderr
        assert last_line(replayed.stdout) == last_line(ran.stdout)
        assert re.search(r"^replayed 4 commands", replayed.stdout, re.M), replayed.stdout


class TestErrors:
    """Every error is one `error: CODE: message` line on stderr, exit 1, no traceback."""

    def test_missing_manifest(self, tmp_path: Path) -> None:
        """A manifest that does not exist: `error: MANIFEST: ...` naming the file."""
        result = exos("simulate", tmp_path / "nowhere.toml", "--orders", "10", cwd=tmp_path)
        line = assert_one_error_line(result, "MANIFEST")
        assert "nowhere.toml" in line

    def test_unknown_manifest_key(self, tmp_path: Path) -> None:
        """An unknown key in [venue]: `error: MANIFEST: ...` naming the key."""
        manifest = manifest_variant(tmp_path, "typo.toml", 'name = "exos spot demo"\n',
                                    'name = "exos spot demo"\nfee_acount = "0x00"\n')  # fmt: skip
        result = exos("simulate", manifest, "--orders", "10", cwd=tmp_path)
        line = assert_one_error_line(result, "MANIFEST")
        assert "fee_acount" in line
        assert "unknown key" in line

    def test_unknown_plugin(self, tmp_path: Path) -> None:
        """A plugin name no distribution provides: `error: PLUGIN: ...` naming it."""
        manifest = manifest_variant(tmp_path, "plugin.toml", 'name = "spot"\n', 'name = "no-such-plugin"\n')
        result = exos("simulate", manifest, "--orders", "10", cwd=tmp_path)
        line = assert_one_error_line(result, "PLUGIN")
        assert "no-such-plugin" in line

    @pytest.mark.parametrize("command", ["run", "plugins"])
    def test_unknown_plugin_in_other_commands(self, tmp_path: Path, command: str) -> None:
        """`run` and `plugins MANIFEST` report an unknown plugin the same way."""
        manifest = manifest_variant(tmp_path, "plugin.toml", 'name = "spot"\n', 'name = "no-such-plugin"\n')
        flow = write_flow(tmp_path / "flow.jsonl", deposits())
        args = ["run", manifest, "--flow", flow] if command == "run" else ["plugins", manifest]
        result = exos(*args, cwd=tmp_path)
        line = assert_one_error_line(result, "PLUGIN")
        assert "no-such-plugin" in line


class TestPlugins:
    """`exos plugins [MANIFEST]`."""

    def test_lists_the_installed_spot_plugin(self, tmp_path: Path) -> None:
        """Without a manifest: the installed entry points, spot among them."""
        result = exos("plugins", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert re.search(r"^  spot\s+exos-spot \S+", result.stdout, re.M), result.stdout
        assert "enabled by" not in result.stdout

    def test_manifest_enables_spot_with_its_market_type_and_fee_model(self, tmp_path: Path) -> None:
        """With examples/spot.toml: spot is enabled, registering market type spot and fee model flat."""
        result = exos("plugins", SPOT, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        _, _, enabled = out.partition(f"enabled by {SPOT}:\n")
        assert enabled, out
        assert re.search(r"^  spot\s+\S+$", enabled, re.M), out
        assert re.search(r"^\s+market types: spot$", enabled, re.M), out
        assert re.search(r"^\s+fee models: flat$", enabled, re.M), out
