"""The trader's page in headless Chromium (Debian's, driven by Playwright): the book renders, an order signed in the
browser rests in it, a crossing order from a second key shows in trades, the candle chart and the history; a
screenshot is saved as a test artefact (tests/artifacts/web.png)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import serving
from tests.test_server import KEY, manifest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("EXOS_REQUIRE_BROWSER"),
    reason="no chromium (.ci/run installs Debian's and sets EXOS_REQUIRE_BROWSER)",
)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[str]:
    """`exos serve` with a journal (so a history store) and a faucet; its base URL."""
    with serving(manifest(tmp_path), "--journal", str(tmp_path / "journal")) as base:
        yield base


def test_a_trader_places_an_order_from_the_page_and_sees_it_trade(venue: str) -> None:
    """Faucet, sign and place a bid through the ticket; it rests in the book; a second key sells into it; the
    trade appears in the trades list, in the candle chart and in the page's fills (from the history store)."""
    from playwright.sync_api import expect, sync_playwright

    from exos.client import Client

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{venue}/?market=BTC-USDC")
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("#title")).to_contain_text("BTC-USDC")
        address = page.locator("#address").inner_text()
        page.click("#faucet")
        expect(page.locator("#balances")).to_contain_text("USDC")
        page.select_option("#ticket select[name=side]", "0")
        page.fill("#ticket input[name=price]", "64000.50")
        page.fill("#ticket input[name=size]", "0.0003")
        page.click("#ticket button[type=submit]")
        expect(page.locator("#ticket-result")).to_contain_text("accepted")
        expect(page.locator("#bids")).to_contain_text("64000.50")  # the book, live over the WebSocket
        expect(page.locator("#orders")).to_contain_text("BTC-USDC")
        with Client(venue, KEY) as seller:  # a second key crosses the page's bid
            seller.faucet()
            sold = seller.place("BTC-USDC", "sell", "64000", "0.0002")
            assert sold.accepted and sold.fills
        expect(page.locator("#trades tbody tr")).to_have_count(1)
        expect(page.locator("#trades")).to_contain_text("64000.50")
        expect(page.locator("#bids")).to_contain_text("0.0001")  # what is left of the bid
        expect(page.locator("#chart")).to_have_attribute("data-points", "1", timeout=15_000)
        expect(page.locator("#fills")).to_contain_text("maker", timeout=15_000)  # from the history store
        expect(page.locator("#fills")).to_contain_text("64000.50")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web.png"), full_page=True)
        assert address.startswith("0x") and len(address) == 42
        assert not errors, errors
        browser.close()


def test_the_world_cup_page_groups_events_and_shows_yes_and_no(tmp_path: Path) -> None:
    """The README's main job: the World Cup venue's page lists the groups and events; a YES bid placed through the
    ticket shows at its implied probability, and the NO view mirrors it as an ask at 1 - p."""
    from playwright.sync_api import expect, sync_playwright

    wc = ROOT / "examples" / "worldcup-2026.toml"
    with serving(wc, "--journal", str(tmp_path / "wc")) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/?market=WC26-A-MEX-RSA-MEX")
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("nav summary", has_text="Group A")).to_have_count(1)
        expect(page.locator("nav summary", has_text="Group L")).to_have_count(1)
        expect(page.locator("nav a", has_text="M01-MEX")).to_have_count(1)
        expect(page.locator("#outcome-switch")).to_be_visible()
        page.click("#faucet")
        expect(page.locator("#balances")).to_contain_text("USDC")
        page.fill("#ticket input[name=price]", "0.40")
        page.fill("#ticket input[name=size]", "10")
        page.click("#ticket button[type=submit]")
        expect(page.locator("#ticket-result")).to_contain_text("accepted")
        expect(page.locator("#bids")).to_contain_text("0.4000")
        expect(page.locator("#bids")).to_contain_text("40.0%")
        page.click("#outcome-switch button[data-outcome='1']")
        expect(page.locator("#asks")).to_contain_text("0.6000")  # NO view: the YES bid is a NO ask at 1 - p
        expect(page.locator("#asks")).to_contain_text("60.0%")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "worldcup.png"), full_page=True)
        browser.close()
