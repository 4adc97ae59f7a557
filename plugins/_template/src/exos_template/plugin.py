"""The template plugin: one order check, registered through the `exos_register_order_checks` hook.

A plugin module implements hooks from `exos.hookspecs`, each marked with `@hookimpl`. Registration
hooks fire once, when the engine loads its plugins; what they register implements a protocol from
`exos.protocols` and carries `name` and `api_version`. The order path then calls the registered
object's methods directly (never through a hook), so keep them small, integer-only and deterministic.
"""

from __future__ import annotations

from exos.hookspecs import Register, hookimpl
from exos.protocols import API_VERSION, OrderIntent, OrderRejection

DEFAULT_STEP = 10  # lots


class SizeStepCheck:
    """Rejects an order whose size (in lots) is not a multiple of `step`."""

    api_version = API_VERSION  # the protocol version this plugin was written for
    name = "template-size-step"

    def __init__(self, step: int = DEFAULT_STEP) -> None:
        if step <= 0:
            raise ValueError(f"template-size-step: step {step} must be positive")
        self.step = step

    def check(self, intent: OrderIntent) -> None:
        """Raise OrderRejection("TEMPLATE_SIZE_STEP") for a size that is not a multiple of the step."""
        if intent.size % self.step:
            raise OrderRejection(
                "TEMPLATE_SIZE_STEP", f"template-size-step: size {intent.size} is not a multiple of {self.step} lots"
            )


@hookimpl
def exos_register_order_checks(register: Register) -> None:
    """Register this plugin's order checks."""
    register(SizeStepCheck())
