"""The plugin manager: loading by module and by entry point, validation errors, isolation between engines."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from exos import hookspecs
from exos.errors import ExosError
from exos.plugins import MODULE_VERSION, InstalledPlugin, PluginError, installed_plugins, load_plugins
from exos.protocols import API_VERSION, OrderIntent, OrderRejection
from exos.testing import install_distribution

REPO_ROOT = Path(__file__).resolve().parents[2]
ACME_SOURCE = REPO_ROOT / "tests" / "fixtures" / "exos-acme-plugin"


@attrs.frozen
class Spec:
    """A manifest `[[plugins]]` entry, as `exos.manifest.PluginSpec` will carry it."""

    name: str
    module: str | None = None


def _order(size: int) -> OrderIntent:
    """A buy limit order of `size` lots."""
    return OrderIntent(market=1, account=7, side=0, price=100, size=size, tif=0, post_only=False)


def check_plugin(*names: str, api_version: int = API_VERSION) -> str:
    """Source of a plugin module that registers order checks named `names`."""
    return textwrap.dedent(
        f"""
        from exos.hookspecs import hookimpl

        class Check:
            api_version = {api_version}

            def __init__(self, name):
                self.name = name

            def check(self, intent):
                pass

        @hookimpl
        def exos_register_order_checks(register):
            for name in {list(names)!r}:
                register(Check(name))
        """
    )


RECORDER = """
from exos.hookspecs import hookimpl

CALLS = []

@hookimpl
def exos_market_listed(market_id, name, market_type):
    CALLS.append(("listed", market_id, name, market_type))

@hookimpl
def exos_market_status_changed(market_id, name, status):
    CALLS.append(("status", market_id, name, status))

@hookimpl
def exos_snapshot_written(seq, path):
    CALLS.append(("snapshot", seq, path))
"""


class PluginDir:
    """A temporary sys.path entry to write plugin modules and fake installed distributions into."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def module(self, name: str, source: str) -> str:
        """Write module `name` (a top-level module) and return its dotted path."""
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)
        importlib.invalidate_caches()
        return name

    def dist(self, name: str, version: str, entry_points: dict[str, str], top_level: tuple[str, ...] = ()) -> None:
        """Write the dist-info of an installed distribution with entry points in group `exos`."""
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[exos]\n{lines}")
        if top_level:
            (info / "top_level.txt").write_text("".join(f"{t}\n" for t in top_level))
        importlib.invalidate_caches()


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginDir]:
    """A fresh directory on sys.path; the modules written into it are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    pdir = PluginDir(root)
    yield pdir
    for name in pdir.modules:
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def acme_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/exos-acme-plugin installed for real by pip into a temporary --target directory."""
    return install_distribution(ACME_SOURCE, tmp_path_factory.mktemp("acme"))


@pytest.fixture
def acme(acme_target: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The acme distribution on sys.path for one test; its modules are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(acme_target))
    yield acme_target
    for name in [n for n in sys.modules if n == "exos_acme" or n.startswith("exos_acme.")]:
        del sys.modules[name]


def _error(specs: list[Spec]) -> PluginError:
    """The PluginError that loading `specs` raises."""
    with pytest.raises(PluginError) as excinfo:
        load_plugins(specs)
    return excinfo.value


class TestLoadByModule:
    """`module = "dotted.path"` entries: imported, registered under the manifest name, collected."""

    def test_every_kind_is_collected(self, plugin_dir: PluginDir) -> None:
        """One object per registration hook lands in its registry, recorded as the plugin's."""
        source = """
            from exos.hookspecs import hookimpl

            class Obj:
                api_version = 2

                def __init__(self, name):
                    self.name = name

                def create_market(self, info, fees): ...
                def create(self, maker_centibps, taker_centibps, params): ...
                def check(self, intent): ...
                def requirement(self, account, locks): ...
                def decide(self, request): ...
                def update(self, payload): ...

            @hookimpl
            def exos_register_market_types(register): register(Obj("mt"))
            @hookimpl
            def exos_register_fee_models(register): register(Obj("fm"))
            @hookimpl
            def exos_register_order_checks(register): register(Obj("oc"))
            @hookimpl
            def exos_register_margin_providers(register): register(Obj("mp"))
            @hookimpl
            def exos_register_oracles(register): register(Obj("or"))
            @hookimpl
            def exos_register_compliance_policies(register): register(Obj("cp"))
            @hookimpl
            def exos_register_resolution_sources(register): register(Obj("rs"))
        """
        plugins = load_plugins([Spec("every", plugin_dir.module("every_kind_plugin", source))])
        registries: dict[str, dict[str, Any]] = {
            "market_types": plugins.market_types,
            "fee_models": plugins.fee_models,
            "order_checks": plugins.order_checks,
            "margin_providers": plugins.margin_providers,
            "oracles": plugins.oracles,
            "compliance_policies": plugins.compliance_policies,
            "resolution_sources": plugins.resolution_sources,
        }
        assert {field: list(reg) for field, reg in registries.items()} == {
            "market_types": ["mt"],
            "fee_models": ["fm"],
            "order_checks": ["oc"],
            "margin_providers": ["mp"],
            "oracles": ["or"],
            "compliance_policies": ["cp"],
            "resolution_sources": ["rs"],
        }
        assert set(plugins.registered_by.values()) == {"every"}
        assert len(plugins.registered_by) == 7
        assert plugins.names == ("every",)
        assert plugins.versions == (("every", MODULE_VERSION),)

    def test_every_registration_hook_is_called(self, plugin_dir: PluginDir) -> None:
        """Each `exos_register_*` hook spec is fired (none is left out of the registries)."""
        hooks = sorted(name for name in vars(hookspecs) if name.startswith("exos_register_"))
        impls = "".join(f"@hookimpl\ndef {hook}(register):\n    register(Obj({hook!r}))\n\n" for hook in hooks)
        source = (
            "from exos.hookspecs import hookimpl\n\n"
            "class Obj:\n    api_version = 2\n    def __init__(self, name): self.name = name\n"
            "    def create_market(self, info, fees): ...\n    def create(self, m, t, p): ...\n"
            "    def check(self, intent): ...\n    def requirement(self, account, locks): ...\n"
            "    def run(self, engine, **kw): ...\n    def decide(self, request): ...\n"
            "    def update(self, payload): ...\n\n" + impls
        )
        plugins = load_plugins([Spec("all", plugin_dir.module("all_hooks_plugin", source))])
        assert sorted(name for _, name in plugins.registered_by) == hooks

    def test_registration_order_follows_the_manifest(self, plugin_dir: PluginDir) -> None:
        """Registries list objects in manifest order, then in each plugin's register order."""
        a = plugin_dir.module("order_a_plugin", check_plugin("a1", "a2"))
        b = plugin_dir.module("order_b_plugin", check_plugin("b1"))
        assert list(load_plugins([Spec("a", a), Spec("b", b)]).order_checks) == ["a1", "a2", "b1"]
        assert list(load_plugins([Spec("b", b), Spec("a", a)]).order_checks) == ["b1", "a1", "a2"]

    def test_module_of_an_installed_distribution_pins_its_version(self, plugin_dir: PluginDir) -> None:
        """A module-loaded plugin that a distribution provides is pinned at that distribution's version."""
        module = plugin_dir.module("pinned_plugin", check_plugin("pinned"))
        plugin_dir.dist("exos-pinned", "2.5.1", {}, top_level=("pinned_plugin",))
        assert load_plugins([Spec("pinned", module)]).versions == (("pinned", "2.5.1"),)

    def test_lifecycle_facade_passes_keywords(self, plugin_dir: PluginDir) -> None:
        """notify_* fire the lifecycle hooks with their arguments, and `hook` is the manager's relay."""
        module = plugin_dir.module("recorder_plugin", RECORDER)
        plugins = load_plugins([Spec("rec", module)])
        plugins.notify_market_listed(market_id=3, name="BTC-USDC", market_type="spot")
        plugins.notify_market_status_changed(market_id=3, name="BTC-USDC", status="halted")
        plugins.notify_snapshot_written(seq=99, path="/j/snap-99")
        assert sys.modules[module].CALLS == [
            ("listed", 3, "BTC-USDC", "spot"),
            ("status", 3, "BTC-USDC", "halted"),
            ("snapshot", 99, "/j/snap-99"),
        ]
        assert plugins.hook is plugins.manager.hook


class TestLoadByEntryPoint:
    """`[[plugins]] name = "..."` entries: looked up among the installed entry points in group `exos`."""

    def test_acme_installed_by_pip_loads(self, acme: Path) -> None:
        """The real acme distribution registers its check and fee model and pins version 0.3.0."""
        plugins = load_plugins([Spec("acme")])
        assert plugins.names == ("acme",)
        assert plugins.versions == (("acme", "0.3.0"),)
        assert list(plugins.order_checks) == ["acme-max-size"]
        assert list(plugins.fee_models) == ["acme-flat"]
        assert plugins.registered_by == {("fee_models", "acme-flat"): "acme", ("order_checks", "acme-max-size"): "acme"}
        assert plugins.manager.get_plugin("acme") is sys.modules["exos_acme.plugin"]
        assert Path(sys.modules["exos_acme.plugin"].__file__ or "").is_relative_to(acme)

    def test_acme_objects_decide_correctly(self, acme: Path) -> None:
        """acme-max-size takes 1,000 lots and refuses 1,001; acme-flat charges the taker ceil(r * t / 1e6)."""
        plugins = load_plugins([Spec("acme")])
        check = plugins.order_checks["acme-max-size"]
        check.check(_order(1_000))
        with pytest.raises(OrderRejection) as excinfo:
            check.check(_order(1_001))
        assert excinfo.value.code == "ACME_MAX_SIZE"
        fees = plugins.fee_models["acme-flat"].create(0, 25, {})
        assert [fees.fee(r, maker=False) for r in (0, 1, 1_000_000, 1_000_001)] == [0, 1, 25, 26]
        assert fees.fee(1_000_000, maker=True) == 0

    def test_installed_plugins_lists_entry_points_sorted(self, acme: Path, plugin_dir: PluginDir) -> None:
        """installed_plugins() reports every entry point in group `exos`, sorted by name."""
        plugin_dir.dist("exos-zeta", "1.0", {"zeta": "zeta_mod"})
        plugin_dir.dist("exos-alpha", "2.0", {"alpha": "alpha_mod:PLUGIN"})
        found = [p for p in installed_plugins() if p.name in {"acme", "alpha", "zeta"}]
        assert found == [
            InstalledPlugin(name="acme", value="exos_acme.plugin", distribution="exos-acme-plugin", version="0.3.0"),
            InstalledPlugin(name="alpha", value="alpha_mod:PLUGIN", distribution="exos-alpha", version="2.0"),
            InstalledPlugin(name="zeta", value="zeta_mod", distribution="exos-zeta", version="1.0"),
        ]

    def test_only_named_plugins_load(self, acme: Path, plugin_dir: PluginDir) -> None:
        """A second installed entry point that the manifest does not name is never imported."""
        plugin_dir.module("sneaky_mod", check_plugin("sneaky-check"))
        plugin_dir.dist("exos-sneaky", "1.0", {"sneaky": "sneaky_mod"})
        assert "sneaky" in {p.name for p in installed_plugins()}
        plugins = load_plugins([Spec("acme")])
        assert [name for name, _ in plugins.manager.list_name_plugin()] == ["acme"]
        assert "sneaky_mod" not in sys.modules
        assert "sneaky-check" not in plugins.order_checks

    def test_entry_point_to_an_object(self, plugin_dir: PluginDir) -> None:
        """An entry point `module:attr` registers the object it names."""
        source = """
            from exos.hookspecs import hookimpl

            class Check:
                api_version = 2
                name = "obj-check"
                def check(self, intent): ...

            class Plugin:
                @hookimpl
                def exos_register_order_checks(self, register):
                    register(Check())

            PLUGIN = Plugin()
        """
        plugin_dir.module("obj_plugin_mod", source)
        plugin_dir.dist("exos-obj", "4.2", {"obj": "obj_plugin_mod:PLUGIN"})
        plugins = load_plugins([Spec("obj")])
        assert plugins.manager.get_plugin("obj") is sys.modules["obj_plugin_mod"].PLUGIN
        assert list(plugins.order_checks) == ["obj-check"]
        assert plugins.versions == (("obj", "4.2"),)


class TestErrors:
    """Every refusal is a PluginError (code PLUGIN) whose message names the plugin."""

    def test_plugin_error_is_an_exos_error(self) -> None:
        """PluginError sits in the exos hierarchy with the code PLUGIN."""
        error = PluginError("plugin 'x': no")
        assert isinstance(error, ExosError)
        assert error.code == "PLUGIN"

    def test_unknown_entry_point_name(self, plugin_dir: PluginDir) -> None:
        """A name no entry point has fails, listing the installed names."""
        plugin_dir.dist("exos-other", "1.0", {"other": "other_mod"})
        error = _error([Spec("nosuch")])
        assert error.code == "PLUGIN"
        assert error.message.startswith("plugin 'nosuch': ")
        assert "'other'" in error.message

    def test_two_distributions_claim_one_name(self, plugin_dir: PluginDir) -> None:
        """Two distributions with an entry point of one name fail, naming both distributions."""
        plugin_dir.dist("exos-twin-a", "1.0", {"twin": "twin_a"})
        plugin_dir.dist("exos-twin-b", "2.0", {"twin": "twin_b"})
        message = _error([Spec("twin")]).message
        assert message.startswith("plugin 'twin': ")
        assert "exos-twin-a 1.0" in message
        assert "exos-twin-b 2.0" in message

    def test_module_that_raises_on_import(self, plugin_dir: PluginDir) -> None:
        """An import failure names the plugin and carries the exception's message, not a traceback."""
        module = plugin_dir.module("boom_plugin", "raise RuntimeError('boom at import')\n")
        message = _error([Spec("boom", module)]).message
        assert message.startswith("plugin 'boom': ")
        assert "RuntimeError: boom at import" in message
        assert "Traceback" not in message

    def test_missing_module(self) -> None:
        """A module path that does not exist fails, naming the plugin and the module."""
        message = _error([Spec("ghost", "no_such_exos_plugin_module")]).message
        assert message.startswith("plugin 'ghost': ")
        assert "ModuleNotFoundError" in message
        assert "no_such_exos_plugin_module" in message

    def test_entry_point_that_fails_to_import(self, plugin_dir: PluginDir) -> None:
        """An entry point whose module does not import fails, naming the plugin."""
        plugin_dir.module("broken_ep_mod", "import no_such_dependency_of_exos_plugin\n")
        plugin_dir.dist("exos-broken", "1.0", {"broken": "broken_ep_mod"})
        message = _error([Spec("broken")]).message
        assert message.startswith("plugin 'broken': ")
        assert "no_such_dependency_of_exos_plugin" in message

    @pytest.mark.parametrize(
        "signature",
        ["(registr)", "(register, extra)", "(*, register)"],
        ids=["misspelled", "extra-argument", "keyword-only"],
    )
    def test_wrong_hook_signature(self, plugin_dir: PluginDir, signature: str) -> None:
        """A hook implementation the hook spec cannot call fails, naming the plugin and the hook."""
        source = f"""
            from exos.hookspecs import hookimpl

            @hookimpl
            def exos_register_order_checks{signature}:
                pass
        """
        module = plugin_dir.module(f"badsig_{len(plugin_dir.modules)}_plugin", source)
        message = _error([Spec("badsig", module)]).message
        assert message.startswith("plugin 'badsig': ")
        assert "'exos_register_order_checks'" in message

    def test_unknown_hook(self, plugin_dir: PluginDir) -> None:
        """A marked implementation of a hook that exos does not specify fails, naming plugin and hook."""
        source = """
            from exos.hookspecs import hookimpl

            @hookimpl
            def exos_register_fees(register):
                pass
        """
        message = _error([Spec("typo", plugin_dir.module("typo_plugin", source))]).message
        assert message.startswith("plugin 'typo': ")
        assert "'exos_register_fees'" in message

    def test_unmarked_hook_function(self, plugin_dir: PluginDir) -> None:
        """An `exos_*` function without @hookimpl (silently ignored by pluggy) fails instead."""
        source = check_plugin("marked") + "\ndef exos_register_fee_models(register):\n    pass\n"
        message = _error([Spec("unmarked", plugin_dir.module("unmarked_plugin", source))]).message
        assert message.startswith("plugin 'unmarked': ")
        assert "'exos_register_fee_models'" in message

    def test_module_without_hooks(self, plugin_dir: PluginDir) -> None:
        """A module that implements no hook (so the manifest name loads nothing) fails."""
        module = plugin_dir.module("empty_plugin", "X = 1\n")
        assert _error([Spec("empty", module)]).message.startswith("plugin 'empty': ")

    def test_registration_hook_raises(self, plugin_dir: PluginDir) -> None:
        """An exception inside a registration hook fails the load, naming plugin, hook and message."""
        source = """
            from exos.hookspecs import hookimpl

            @hookimpl
            def exos_register_fee_models(register):
                raise ValueError("fee table missing")
        """
        message = _error([Spec("raiser", plugin_dir.module("raiser_plugin", source))]).message
        assert message.startswith("plugin 'raiser': ")
        assert "exos_register_fee_models" in message
        assert "ValueError: fee table missing" in message

    def test_api_version_mismatch(self, plugin_dir: PluginDir) -> None:
        """An object built for another protocol version is refused at load time."""
        source = """
            from exos.hookspecs import hookimpl

            class OldFees:
                api_version = 0
                name = "old-fee"
                def create(self, maker_centibps, taker_centibps, params): ...

            @hookimpl
            def exos_register_fee_models(register):
                register(OldFees())
        """
        message = _error([Spec("old", plugin_dir.module("old_plugin", source))]).message
        assert message == f"plugin 'old': fee model 'old-fee' speaks api_version 0, this core speaks {API_VERSION}"

    def test_missing_api_version(self, plugin_dir: PluginDir) -> None:
        """An object without api_version is refused like a mismatched one."""
        source = check_plugin("noversion").replace("api_version = 2", "")
        message = _error([Spec("nover", plugin_dir.module("nover_plugin", source))]).message
        assert message.startswith("plugin 'nover': order check 'noversion' speaks api_version None")

    def test_missing_name(self, plugin_dir: PluginDir) -> None:
        """An object without a str name is refused."""
        source = """
            from exos.hookspecs import hookimpl

            class Check:
                api_version = 2
                def check(self, intent): ...

            @hookimpl
            def exos_register_order_checks(register):
                register(Check())
        """
        message = _error([Spec("anon", plugin_dir.module("anon_plugin", source))]).message
        assert message.startswith("plugin 'anon': order check ")
        assert "name" in message

    def test_missing_protocol_method(self, plugin_dir: PluginDir) -> None:
        """A market type without create_market is refused, naming the method."""
        source = """
            from exos.hookspecs import hookimpl

            class Half:
                api_version = 2
                name = "half"
                create_market = None

            @hookimpl
            def exos_register_market_types(register):
                register(Half())
        """
        message = _error([Spec("half", plugin_dir.module("half_plugin", source))]).message
        assert message.startswith("plugin 'half': market type 'half' ")
        assert "create_market" in message

    def test_duplicate_object_names_across_plugins(self, plugin_dir: PluginDir) -> None:
        """Two plugins registering one order-check name fail, naming both plugins."""
        first = plugin_dir.module("dup_first_plugin", check_plugin("shared"))
        second = plugin_dir.module("dup_second_plugin", check_plugin("shared"))
        message = _error([Spec("first", first), Spec("second", second)]).message
        assert message == "plugin 'second': order check 'shared' is already registered by plugin 'first'"

    def test_same_name_in_different_kinds_is_fine(self, plugin_dir: PluginDir) -> None:
        """Names are unique per kind: an order check and a fee model may share one."""
        source = check_plugin("same") + textwrap.dedent(
            """
            class Fees:
                api_version = 2
                name = "same"
                def create(self, maker_centibps, taker_centibps, params): ...

            @hookimpl
            def exos_register_fee_models(register):
                register(Fees())
            """
        )
        plugins = load_plugins([Spec("same", plugin_dir.module("same_plugin", source))])
        assert list(plugins.order_checks) == list(plugins.fee_models) == ["same"]

    def test_duplicate_spec_names(self, plugin_dir: PluginDir) -> None:
        """A manifest naming one plugin twice fails before anything is imported."""
        module = plugin_dir.module("twice_plugin", check_plugin("twice"))
        assert _error([Spec("twice", module), Spec("twice", module)]).message.startswith("plugin 'twice': ")
        assert module not in sys.modules

    def test_one_module_under_two_names(self, plugin_dir: PluginDir) -> None:
        """One module enabled under two names fails, naming both."""
        module = plugin_dir.module("alias_plugin", check_plugin("alias"))
        message = _error([Spec("one", module), Spec("two", module)]).message
        assert message.startswith("plugin 'two': ")
        assert "'one'" in message

    def test_register_after_the_hook_returned(self, plugin_dir: PluginDir) -> None:
        """A register callable kept and called later refuses, naming the plugin."""
        source = """
            from exos.hookspecs import hookimpl

            KEPT = []

            @hookimpl
            def exos_register_order_checks(register):
                KEPT.append(register)
        """
        module = plugin_dir.module("keeper_plugin", source)
        load_plugins([Spec("keeper", module)])
        register: Any = sys.modules[module].KEPT[0]
        with pytest.raises(PluginError, match=r"^plugin 'keeper': register\(\) of .* called after the hook returned"):
            register(object())


class TestIndependence:
    """Each load_plugins call builds its own plugin manager: engines do not share plugins."""

    def test_two_managers_are_independent(self, plugin_dir: PluginDir) -> None:
        """A lifecycle event on one engine reaches only that engine's plugins."""
        rec_a = plugin_dir.module("rec_a_plugin", RECORDER)
        rec_b = plugin_dir.module("rec_b_plugin", RECORDER)
        one = load_plugins([Spec("rec", rec_a)])
        two = load_plugins([Spec("rec", rec_b)])
        assert one.manager is not two.manager
        one.notify_market_listed(market_id=1, name="ETH-USDC", market_type="spot")
        assert sys.modules[rec_a].CALLS == [("listed", 1, "ETH-USDC", "spot")]
        assert sys.modules[rec_b].CALLS == []

    def test_registries_are_not_shared(self, plugin_dir: PluginDir) -> None:
        """Loading the same plugin twice gives separate registries and managers."""
        module = plugin_dir.module("shared_plugin", check_plugin("c"))
        one = load_plugins([Spec("p", module)])
        two = load_plugins([Spec("p", module)])
        assert one.order_checks is not two.order_checks
        one.manager.unregister(name="p")
        assert two.manager.get_plugin("p") is sys.modules[module]
        assert two.manager.hook.exos_register_order_checks.get_hookimpls()
