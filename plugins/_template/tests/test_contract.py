"""Contract test of the template plugin: it loads through the plugin manager and its check meets OrderCheckContract.

Copy this file with the plugin: the inherited tests of `exos.testing.OrderCheckContract` (identity,
accept, reject with a code, determinism) run against the object the plugin registers; list below the
orders your check must let through and refuse.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import attrs
import pytest

from exos.plugins import Plugins, load_plugins
from exos.protocols import OrderCheck, OrderIntent, OrderRejection
from exos.testing import OrderCheckContract

PLUGIN = "template"
MODULE = "exos_template.plugin"
CHECK = "template-size-step"
SRC = Path(__file__).resolve().parents[1] / "src"


@attrs.frozen
class _Spec:
    """A manifest `[[plugins]]` entry."""

    name: str
    module: str | None = None


def _order(size: int, side: int = 0) -> OrderIntent:
    """A GTC limit order of `size` lots."""
    return OrderIntent(market=1, account=7, side=side, price=100, size=size, tif=0, post_only=False)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Plugins:
    """The plugin loaded by module path, as a manifest's `module = "exos_template.plugin"` entry loads it.

    `pytest` in the plugin's folder puts src/ on sys.path (pyproject's `pythonpath`); run from elsewhere,
    src/ is put there for the test's duration unless the plugin is installed."""
    if importlib.util.find_spec(MODULE.partition(".")[0]) is None:
        monkeypatch.syspath_prepend(str(SRC))
    return load_plugins([_Spec(name=PLUGIN, module=MODULE)])


class TestSizeStepCheck(OrderCheckContract):
    """The template's order check, as the engine sees it after loading the plugin."""

    @pytest.fixture
    def order_check(self, plugins: Plugins) -> OrderCheck:
        """The registered check."""
        return plugins.order_checks[CHECK]

    @pytest.fixture
    def accepted_intents(self) -> list[OrderIntent]:
        """Multiples of 10 lots, either side."""
        return [_order(10), _order(20), _order(1_000_000), _order(30, side=1)]

    @pytest.fixture
    def rejected_intents(self) -> list[OrderIntent]:
        """Anything else."""
        return [_order(1), _order(15), _order(999_999), _order(21, side=1)]

    def test_registered_by_the_plugin(self, plugins: Plugins) -> None:
        """The plugin loads under its manifest name and registers exactly its check."""
        assert plugins.names == (PLUGIN,)
        assert list(plugins.order_checks) == [CHECK]
        assert plugins.registered_by[("order_checks", CHECK)] == PLUGIN

    def test_rejection_code(self, order_check: OrderCheck) -> None:
        """15 lots is refused with the code TEMPLATE_SIZE_STEP."""
        with pytest.raises(OrderRejection, match="not a multiple of 10 lots") as excinfo:
            order_check.check(_order(15))
        assert excinfo.value.code == "TEMPLATE_SIZE_STEP"
