"""The plugin manager: loads the plugins a manifest names, validates them and collects what they register.

One `pluggy.PluginManager("exos")` per `load_plugins` call (one per engine, never a module global).
Order (DESIGN §4): hook specs → each manifest entry, by entry-point name in group `exos` or by
`module = "dotted.path"` → `check_pending()` → the `exos_register_*` hooks, whose registered objects
are checked against `exos.protocols` (`name`, `api_version`, required methods) at load time, so a
plugin built for another core fails here with a message naming it, never mid-trade. Nothing loads
that the manifest does not name: there is no autoload of installed entry points.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, cast

import attrs
import pluggy

from exos import hookspecs
from exos.errors import ExosError
from exos.protocols import API_VERSION, FeeModelFactory, MarginProvider, MarketType, OrderCheck

ENTRY_POINT_GROUP = "exos"
MODULE_VERSION = "0+module"  # the version pinned for a module-loaded plugin that no distribution provides


class PluginError(ExosError):
    """A plugin could not be loaded, validated or registered; the message names the plugin."""

    code = "PLUGIN"


class PluginSpecLike(Protocol):
    """What `load_plugins` needs of one manifest `[[plugins]]` entry (`exos.manifest.PluginSpec` fits)."""

    @property
    def name(self) -> str:
        """The plugin's name: its entry-point name, or the name a module-loaded plugin registers under."""
        ...

    @property
    def module(self) -> str | None:
        """A dotted module path to import instead of looking the name up among the entry points."""
        ...


@attrs.frozen
class InstalledPlugin:
    """One entry point in group `exos` of an installed distribution (what `exos plugins` lists)."""

    name: str
    value: str
    distribution: str
    version: str


@attrs.frozen
class _Kind:
    """One kind of registered object: its hook, its `Plugins` field, its label in messages, its methods."""

    hook: str
    field: str
    label: str
    methods: tuple[str, ...]


# In hook-spec order; the registration hooks fire in this order, each across the plugins in load order.
_KINDS: tuple[_Kind, ...] = (
    _Kind("exos_register_market_types", "market_types", "market type", ("create_market",)),
    _Kind("exos_register_fee_models", "fee_models", "fee model", ("create",)),
    _Kind("exos_register_order_checks", "order_checks", "order check", ("check",)),
    _Kind("exos_register_margin_providers", "margin_providers", "margin provider", ("requirement",)),
    _Kind("exos_register_oracles", "oracles", "oracle", ("create",)),
    _Kind("exos_register_compliance_policies", "compliance_policies", "compliance policy", ("decide", "update")),
    _Kind("exos_register_resolution_sources", "resolution_sources", "resolution source", ("create",)),
    _Kind("exos_register_simulations", "simulations", "simulation", ("run",)),
)


@attrs.frozen(eq=False)
class Plugins:
    """The loaded plugins of one engine: its plugin manager and every object the plugins registered.

    Each registry maps an object's `name` to the object, in registration order (deterministic);
    `registered_by` maps (registry field, object name) to the plugin that registered it.
    """

    manager: pluggy.PluginManager
    names: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]
    market_types: dict[str, MarketType]
    fee_models: dict[str, FeeModelFactory]
    order_checks: dict[str, OrderCheck]
    margin_providers: dict[str, MarginProvider]
    oracles: dict[str, Any]
    compliance_policies: dict[str, Any]
    resolution_sources: dict[str, Any]
    simulations: dict[str, Any]
    registered_by: dict[tuple[str, str], str]

    @property
    def hook(self) -> pluggy.HookRelay:
        """The manager's hook relay, for lifecycle hooks the facade below does not cover yet."""
        return self.manager.hook

    def notify_market_listed(self, *, market_id: int, name: str, market_type: str) -> None:
        """Fire `exos_market_listed`: a market was listed."""
        self.manager.hook.exos_market_listed(market_id=market_id, name=name, market_type=market_type)

    def notify_market_status_changed(self, *, market_id: int, name: str, status: str) -> None:
        """Fire `exos_market_status_changed`: an admin command changed a market's status."""
        self.manager.hook.exos_market_status_changed(market_id=market_id, name=name, status=status)

    def notify_snapshot_written(self, *, seq: int, path: str) -> None:
        """Fire `exos_snapshot_written`: the snapshot after command `seq` is durable at `path`."""
        self.manager.hook.exos_snapshot_written(seq=seq, path=path)


def installed_plugins() -> list[InstalledPlugin]:
    """Every entry point in group `exos` of the installed distributions, sorted by name (then distribution)."""
    found = [
        InstalledPlugin(name=ep.name, value=ep.value, distribution=_dist_name(ep), version=_dist_version(ep))
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    ]
    return sorted(found, key=lambda p: (p.name, p.distribution, p.value))


def load_plugins(specs: Iterable[PluginSpecLike]) -> Plugins:
    """Load, validate and register the named plugins, in order, into a new plugin manager."""
    specs = list(specs)
    _check_spec_names(specs)
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    names: list[str] = []
    versions: list[tuple[str, str]] = []
    for spec in specs:
        plugin, version = _load_one(spec)
        _check_hookimpls(manager, spec.name, plugin)
        _register(manager, spec.name, plugin)
        names.append(spec.name)
        versions.append((spec.name, version))
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - _check_hookimpls catches these first
        raise PluginError(f"plugin {manager.get_name(exc.plugin)!r}: {exc}") from exc

    registries: dict[str, dict[str, Any]] = {kind.field: {} for kind in _KINDS}
    registered_by: dict[tuple[str, str], str] = {}
    for kind in _KINDS:
        for name in names:
            _run_registration(manager, name, kind, registries[kind.field], registered_by)

    return Plugins(
        manager=manager,
        names=tuple(names),
        versions=tuple(versions),
        market_types=cast("dict[str, MarketType]", registries["market_types"]),
        fee_models=cast("dict[str, FeeModelFactory]", registries["fee_models"]),
        order_checks=cast("dict[str, OrderCheck]", registries["order_checks"]),
        margin_providers=cast("dict[str, MarginProvider]", registries["margin_providers"]),
        oracles=registries["oracles"],
        compliance_policies=registries["compliance_policies"],
        resolution_sources=registries["resolution_sources"],
        simulations=registries["simulations"],
        registered_by=registered_by,
    )


def _check_spec_names(specs: Sequence[PluginSpecLike]) -> None:
    """Refuse a spec without a usable name and a name the manifest lists twice."""
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec.name, str) or not spec.name:
            raise PluginError(f"plugin {spec.name!r}: a plugin name must be a non-empty string")
        if spec.name in seen:
            raise PluginError(f"plugin {spec.name!r}: named twice in the manifest's plugins")
        seen.add(spec.name)


def _load_one(spec: PluginSpecLike) -> tuple[object, str]:
    """Import one plugin (module path or entry point) and return it with the version to pin."""
    if spec.module is not None:
        try:
            plugin = importlib.import_module(spec.module)
        except Exception as exc:
            raise PluginError(
                f"plugin {spec.name!r}: cannot import module {spec.module!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return plugin, _module_version(spec.module)

    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    matches = sorted(installed.select(name=spec.name), key=lambda ep: (_dist_name(ep), ep.value))
    if not matches:
        available = ", ".join(repr(n) for n in sorted(set(installed.names))) or "none"
        raise PluginError(
            f"plugin {spec.name!r}: no installed distribution has an entry point {spec.name!r} "
            f"in group {ENTRY_POINT_GROUP!r} (installed: {available})"
        )
    if len(matches) > 1:
        claims = ", ".join(f"{_dist_name(ep)} {_dist_version(ep)} ({ep.value})" for ep in matches)
        raise PluginError(
            f"plugin {spec.name!r}: {len(matches)} installed distributions claim the entry point "
            f"{spec.name!r} in group {ENTRY_POINT_GROUP!r}: {claims}"
        )
    (entry_point,) = matches
    try:
        plugin = entry_point.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {spec.name!r}: cannot load entry point {spec.name!r} = {entry_point.value!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return plugin, _dist_version(entry_point)


def _dist_name(entry_point: importlib.metadata.EntryPoint) -> str:
    """The name of the distribution that declares an entry point."""
    dist = entry_point.dist
    return str(dist.name) if dist is not None else "?"


def _dist_version(entry_point: importlib.metadata.EntryPoint) -> str:
    """The version of the distribution that declares an entry point."""
    dist = entry_point.dist
    return str(dist.version) if dist is not None else MODULE_VERSION


def _module_version(module: str) -> str:
    """The version of the one distribution providing a module's top-level package, else `MODULE_VERSION`."""
    top = module.partition(".")[0]
    dists = sorted(set(importlib.metadata.packages_distributions().get(top, [])))
    if len(dists) != 1:
        return MODULE_VERSION
    try:
        return importlib.metadata.version(dists[0])
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - listed a moment ago
        return MODULE_VERSION


def _check_hookimpls(manager: pluggy.PluginManager, name: str, plugin: object) -> None:
    """Refuse unknown hooks, unmarked `exos_*` functions and signatures the hook specs cannot call."""
    implemented = 0
    for attr in dir(plugin):
        try:
            opts = manager.parse_hookimpl_opts(plugin, attr)
        except Exception:  # an attribute that raises on access is not a hook implementation
            continue
        if opts is None:
            if attr.startswith("exos_") and inspect.isroutine(getattr(plugin, attr, None)):
                raise PluginError(
                    f"plugin {name!r}: {attr!r} looks like a hook implementation but is not marked "
                    "with @exos.hookspecs.hookimpl"
                )
            continue
        hook_name = opts.get("specname") or attr
        caller = getattr(manager.hook, hook_name, None)
        spec = caller.spec if caller is not None else None
        if spec is None:
            if opts.get("optionalhook"):
                continue
            known = ", ".join(sorted(n for n in vars(manager.hook) if not n.startswith("_")))
            raise PluginError(f"plugin {name!r}: unknown hook {hook_name!r} (exos hooks: {known})")
        required, keyword_only = _required_args(getattr(plugin, attr))
        extra = [arg for arg in required if arg not in spec.argnames]
        if extra or keyword_only:
            wrong = ", ".join(extra + keyword_only)
            raise PluginError(
                f"plugin {name!r}: hook {hook_name!r} implementation takes ({wrong}), "
                f"but the hook passes only ({', '.join(spec.argnames)}) by name"
            )
        if hook_name.startswith("exos_register_") and (opts.get("wrapper") or opts.get("hookwrapper")):
            raise PluginError(f"plugin {name!r}: registration hook {hook_name!r} cannot be a wrapper")
        implemented += 1
    if implemented == 0:
        raise PluginError(
            f"plugin {name!r}: {plugin!r} implements no exos hook "
            "(are its hook functions marked with @exos.hookspecs.hookimpl?)"
        )


def _required_args(function: Callable[..., object]) -> tuple[list[str], list[str]]:
    """(positional parameters without default, keyword-only parameters without default) of a function."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return [], []
    positional: list[str] = []
    keyword_only: list[str] = []
    for param in signature.parameters.values():
        if param.default is not inspect.Parameter.empty:
            continue
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional.append(param.name)
        elif param.kind is inspect.Parameter.KEYWORD_ONLY:
            keyword_only.append(param.name)
    return positional, keyword_only


def _register(manager: pluggy.PluginManager, name: str, plugin: object) -> None:
    """Register one plugin object under its manifest name, turning pluggy's refusals into PluginError."""
    other = next((n for n, p in manager.list_name_plugin() if p is plugin), None)
    if other is not None:
        raise PluginError(f"plugin {name!r}: {plugin!r} is already loaded as plugin {other!r}")
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from exc
    except ValueError as exc:  # pragma: no cover - names are unique and the object is new (checked above)
        raise PluginError(f"plugin {name!r}: {exc}") from exc


def _run_registration(
    manager: pluggy.PluginManager,
    name: str,
    kind: _Kind,
    registry: dict[str, Any],
    registered_by: dict[tuple[str, str], str],
) -> None:
    """Fire one registration hook of one plugin, validating and collecting what it registers."""
    open_ = True
    refusals: list[PluginError] = []

    def register(obj: Any) -> None:
        """Validate one object and add it to the registry of its kind."""
        try:
            _accept(obj)
        except PluginError as exc:
            refusals.append(exc)
            raise

    def _accept(obj: Any) -> None:
        """Check one object against its kind's protocol and record it."""
        if not open_:
            raise PluginError(f"plugin {name!r}: register() of {kind.hook!r} called after the hook returned")
        obj_name = getattr(obj, "name", None)
        if not isinstance(obj_name, str) or not obj_name:
            raise PluginError(f"plugin {name!r}: {kind.label} {obj!r} has no `name` (a non-empty str)")
        version = getattr(obj, "api_version", None)
        if type(version) is not int or version != API_VERSION:
            raise PluginError(
                f"plugin {name!r}: {kind.label} {obj_name!r} speaks api_version {version!r}, "
                f"this core speaks {API_VERSION}"
            )
        missing = [m for m in kind.methods if not callable(getattr(obj, m, None))]
        if missing:
            raise PluginError(
                f"plugin {name!r}: {kind.label} {obj_name!r} lacks the method(s) {', '.join(missing)} "
                "its protocol requires"
            )
        if obj_name in registry:
            first = registered_by[(kind.field, obj_name)]
            raise PluginError(f"plugin {name!r}: {kind.label} {obj_name!r} is already registered by plugin {first!r}")
        registry[obj_name] = obj
        registered_by[(kind.field, obj_name)] = name

    caller: pluggy.HookCaller = getattr(manager.hook, kind.hook)
    # pluggy's call order (last registered implementation first), restricted to this plugin.
    impls = [impl for impl in reversed(caller.get_hookimpls()) if impl.plugin_name == name]
    kwargs = {"register": register}
    try:
        for impl in impls:
            impl.function(*[kwargs[arg] for arg in impl.argnames])
    except PluginError as exc:
        if any(exc is refusal for refusal in refusals):
            raise
        raise PluginError(f"plugin {name!r}: {kind.hook} raised PluginError: {exc}") from exc
    except Exception as exc:
        raise PluginError(f"plugin {name!r}: {kind.hook} raised {type(exc).__name__}: {exc}") from exc
    finally:
        open_ = False
