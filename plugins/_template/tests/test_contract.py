"""Contract test of the template plugin: it loads through the plugin manager and its check decides correctly."""

from __future__ import annotations

import attrs
import pytest

from exos.plugins import load_plugins
from exos.protocols import API_VERSION, OrderIntent, OrderRejection


@attrs.frozen
class _Spec:
    """A manifest `[[plugins]]` entry."""

    name: str
    module: str | None = None


def _order(size: int) -> OrderIntent:
    """A buy GTC limit order of `size` lots."""
    return OrderIntent(market=1, account=7, side=0, price=100, size=size, tif=0, post_only=False)


class TestSizeStepCheckContract:
    """The template's order check, as the engine sees it after loading the plugin."""

    def test_loads_and_checks(self) -> None:
        """The check registers with the core's api_version and name, accepts 20 lots and rejects 15."""
        plugins = load_plugins([_Spec(name="template", module="exos_template.plugin")])
        assert plugins.names == ("template",)
        check = plugins.order_checks["template-size-step"]
        assert check.api_version == API_VERSION
        assert check.name == "template-size-step"
        assert plugins.registered_by[("order_checks", "template-size-step")] == "template"
        check.check(_order(20))
        with pytest.raises(OrderRejection) as excinfo:
            check.check(_order(15))
        assert excinfo.value.code == "TEMPLATE_SIZE_STEP"
