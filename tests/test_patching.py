"""Our own wrapping and post-import hooks (``capture/patching.py``), which replace wrapt.

Wrappers: binding through an instance and through the class, every descriptor kind we
support, metadata and ``inspect.signature``, idempotence, and removal that takes away exactly
what we installed (also under a third-party wrapper stacked on ours later). Hooks: both
import orders, failures, re-imports, namespace packages, threads, and a real process that
imports click after ``init()``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_cli_telemetry.capture import patching

from support import ROOT


def record_calls(calls: list[tuple[Any, Any, tuple[Any, ...], dict[str, Any]]]) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append((wrapped, instance, args, kwargs))
        return ("wrapped", wrapped(*args, **kwargs))

    return wrapper


class Base:
    def method(self, x: int, *, y: int = 0) -> tuple[Any, int]:
        """Add."""
        return (self, x + y)

    @staticmethod
    def static(x: int) -> int:
        """Double."""
        return 2 * x

    @classmethod
    def klass(cls, x: int) -> tuple[type, int]:
        """Class and x."""
        return (cls, x)


@pytest.fixture
def cls() -> type:
    """A fresh subclass-free copy of :class:`Base` per test (wrapping mutates it)."""
    return type("Target", (), {k: v for k, v in vars(Base).items() if not k.startswith("__")})


# --- wrapping ----------------------------------------------------------------------------


def test_a_method_through_an_instance_sees_the_instance(cls: type) -> None:
    original = vars(cls)["method"]
    calls: list[Any] = []
    assert patching.wrap_function(cls, "method", record_calls(calls))
    obj = cls()
    assert obj.method(1, y=2) == ("wrapped", (obj, 3))
    ((wrapped, instance, args, kwargs),) = calls
    assert instance is obj
    assert args == (1,)
    assert kwargs == {"y": 2}
    assert wrapped.__self__ is obj
    assert wrapped.__func__ is original


def test_a_method_through_the_class_takes_its_first_argument_as_the_instance(cls: type) -> None:
    calls: list[Any] = []
    patching.wrap_function(cls, "method", record_calls(calls))
    obj = cls()
    assert cls.method(obj, 1) == ("wrapped", (obj, 1))
    ((_, instance, args, _),) = calls
    assert instance is obj
    assert args == (1,)
    with pytest.raises(TypeError):  # Python's own error for the missing self, as unwrapped
        cls.method()


def test_super_and_subclasses_bind_to_the_subclass_instance(cls: type) -> None:
    calls: list[Any] = []
    patching.wrap_function(cls, "method", record_calls(calls))

    class Sub(cls):  # type: ignore[misc, valid-type]
        def method(self, x: int, *, y: int = 0) -> Any:
            return super().method(x * 10, y=y)

    obj = Sub()
    assert obj.method(1) == ("wrapped", (obj, 10))
    assert calls[0][1] is obj


def test_static_and_class_methods(cls: type) -> None:
    calls: list[Any] = []
    assert patching.wrap_function(cls, "static", record_calls(calls))
    assert patching.wrap_function(cls, "klass", record_calls(calls))
    obj = cls()
    assert obj.static(3) == cls.static(3) == ("wrapped", 6)
    assert obj.klass(1) == cls.klass(1) == ("wrapped", (cls, 1))
    assert [c[1] for c in calls] == [None, None, cls, cls]


def test_a_module_function_gets_no_instance() -> None:
    module = types.ModuleType("fake_module")
    exec("def run(a, b=2):\n    'Run.'\n    return a + b\n", module.__dict__)
    original = module.run
    calls: list[Any] = []
    assert patching.wrap_function(module, "run", record_calls(calls))
    assert module.run(1) == ("wrapped", 3)
    assert calls == [(original, None, (1,), {})]
    assert patching.unwrap(module, "run")
    assert module.run is original


def test_a_callable_object_is_proxied_for_attributes_and_isinstance() -> None:
    class Group:
        def __init__(self) -> None:
            self.commands: dict[str, int] = {}

        def __call__(self, arg: str) -> str:
            return f"ran {arg}"

    module = types.ModuleType("fake_cli")
    group = module.cli = Group()
    calls: list[Any] = []
    assert patching.wrap_function(module, "cli", record_calls(calls))
    proxy = module.cli
    assert proxy("x") == ("wrapped", "ran x")
    assert calls == [(group, None, ("x",), {})]
    assert isinstance(proxy, Group)
    assert patching.is_ours(proxy)
    proxy.commands["new"] = 1
    proxy.name = "set through the proxy"
    assert group.commands == {"new": 1}
    assert group.name == "set through the proxy"
    assert not patching.wrap_function(module, "cli", record_calls(calls))  # idempotent
    assert patching.unwrap(module, "cli")
    assert module.cli is group
    assert proxy("y") == "ran y"  # a copy held elsewhere is switched off


def test_the_wrapper_keeps_the_metadata_and_the_signature(cls: type) -> None:
    original = vars(cls)["method"]
    patching.wrap_function(cls, "method", record_calls([]))
    installed = vars(cls)["method"]
    for candidate in (installed, cls.method, cls().method):
        assert candidate.__name__ == "method"
        assert candidate.__qualname__ == original.__qualname__
        assert candidate.__doc__ == "Add."
        assert candidate.__module__ == __name__
    assert installed.__wrapped__ is original
    assert inspect.signature(installed) == inspect.signature(original)
    assert inspect.signature(cls.method) == inspect.signature(original)
    bound_signature = "(x: 'int', *, y: 'int' = 0) -> 'tuple[Any, int]'"
    assert str(inspect.signature(cls().method)) == bound_signature
    assert inspect.unwrap(installed) is original


def test_wrapping_twice_installs_once(cls: type) -> None:
    calls: list[Any] = []
    assert patching.wrap_function(cls, "method", record_calls(calls))
    assert not patching.wrap_function(cls, "method", record_calls(calls))
    cls().method(1)
    assert len(calls) == 1


def test_unwrap_puts_the_original_back_where_it_was(cls: type) -> None:
    original = vars(cls)["method"]
    patching.wrap_function(cls, "method", record_calls([]))
    assert patching.unwrap(cls, "method")
    assert vars(cls)["method"] is original
    assert not patching.unwrap(cls, "method")  # nothing of ours left
    assert vars(cls)["method"] is original


def test_an_inherited_method_wrapped_on_a_subclass_is_deleted_from_it(cls: type) -> None:
    sub = type("Sub", (cls,), {})
    patching.wrap_function(sub, "method", record_calls([]))
    assert "method" in vars(sub)
    assert patching.unwrap(sub, "method")
    assert "method" not in vars(sub)
    assert vars(cls)["method"] is vars(Base)["method"]


def test_a_wrapper_held_elsewhere_calls_the_original_once_removed(cls: type) -> None:
    calls: list[Any] = []
    patching.wrap_function(cls, "method", record_calls(calls))
    bound = cls().method
    patching.unwrap(cls, "method")
    assert bound(1)[1] == 1
    assert calls == []


def test_a_third_party_wrapper_on_top_of_ours_survives_our_removal(cls: type) -> None:
    """Theirs stays in place and keeps working; ours, under it, stops doing anything (removing
    it would remove theirs too); wrapping again switches ours back on instead of stacking."""
    ours: list[Any] = []
    patching.wrap_function(cls, "method", record_calls(ours))
    beneath = vars(cls)["method"]
    theirs: list[str] = []

    @functools.wraps(beneath)
    def third_party(self: Any, *args: Any, **kwargs: Any) -> Any:
        theirs.append("called")
        return beneath.__get__(self, type(self))(*args, **kwargs)

    cls.method = third_party
    assert not patching.unwrap(cls, "method")
    assert vars(cls)["method"] is third_party
    obj = cls()
    assert obj.method(2) == (obj, 2)
    assert theirs == ["called"]
    assert ours == []
    assert patching.wrap_function(cls, "method", record_calls(ours))
    assert vars(cls)["method"] is third_party
    assert obj.method(2) == ("wrapped", (obj, 2))
    assert len(theirs) == 2
    assert len(ours) == 1


def test_a_wrapt_wrapper_on_top_of_ours_survives_our_removal(cls: type) -> None:
    wrapt = pytest.importorskip("wrapt")  # what opentelemetry-instrumentation-click uses
    ours: list[Any] = []
    patching.wrap_function(cls, "method", record_calls(ours))
    theirs: list[Any] = []

    def their_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        theirs.append(instance)
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(cls, "method", their_wrapper)
    assert not patching.unwrap(cls, "method")
    top = vars(cls)["method"]  # theirs (wrapt 1's FunctionWrapper is an ObjectProxy, 2's not)
    assert getattr(top, "__wrapped__", None) is not None
    assert not patching.is_ours(top)
    obj = cls()
    assert obj.method(1) == (obj, 1)
    assert theirs == [obj]
    assert ours == []


@pytest.mark.parametrize(
    "value",
    [property(lambda self: 1), int, 42, None],
    ids=["property", "class", "not-callable", "missing"],
)
def test_what_we_cannot_wrap_safely_is_left_alone(value: Any) -> None:
    owner = type("Owner", (), {} if value is None else {"attr": value})
    assert not patching.wrap_function(owner, "attr", record_calls([]))
    assert vars(owner).get("attr") is value
    assert not patching.unwrap(owner, "attr")


# --- post-import hooks -------------------------------------------------------------------


@pytest.fixture
def package_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on ``sys.path`` for throwaway modules, removed with them afterwards."""
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            del sys.modules[name]
        for name in list(patching._pending):
            if name.startswith("hooked_"):
                del patching._pending[name]


def write_module(folder: Path, name: str, body: str = "VALUE = 1\n") -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_a_module_already_imported_runs_the_hook_at_once() -> None:
    seen: list[Any] = []
    patching.when_imported("json", seen.append)
    assert seen == [sys.modules["json"]]
    assert "json" not in patching._pending


def test_a_module_imported_later_runs_the_hook_once_after_its_code(package_dir: Path) -> None:
    write_module(package_dir, "hooked_later", "VALUE = 41 + 1\n")
    seen: list[int] = []

    def hook(module: Any) -> None:
        seen.append(module.VALUE)

    patching.when_imported("hooked_later", hook)
    patching.when_imported("hooked_later", hook)  # the same hook twice: runs once
    assert seen == []
    assert patching._watcher in sys.meta_path
    module = importlib.import_module("hooked_later")
    assert seen == [42]
    # The module keeps its real loader; nothing of ours stays on it.
    assert type(module.__loader__).__name__ == "SourceFileLoader"
    assert module.__spec__.loader is module.__loader__
    importlib.reload(module)
    del sys.modules["hooked_later"]
    importlib.import_module("hooked_later")
    assert seen == [42]  # neither a reload nor a second import runs it again


def test_hooks_for_other_modules_are_not_asked_for() -> None:
    assert patching._watcher.find_spec("json") is None
    assert patching._watcher.find_spec("not_watched_at_all") is None


def test_a_watched_module_that_does_not_exist_still_fails_as_usual(package_dir: Path) -> None:
    patching.when_imported("hooked_missing", lambda module: None)
    with pytest.raises(ModuleNotFoundError, match="hooked_missing"):
        importlib.import_module("hooked_missing")


def test_a_module_that_fails_keeps_its_hooks_for_the_next_attempt(package_dir: Path) -> None:
    write_module(package_dir, "hooked_broken", "raise RuntimeError('broken module')\n")
    seen: list[Any] = []
    patching.when_imported("hooked_broken", seen.append)
    with pytest.raises(RuntimeError, match="broken module"):
        importlib.import_module("hooked_broken")
    assert seen == []
    assert "hooked_broken" not in sys.modules
    write_module(package_dir, "hooked_broken", "FIXED = True\n")
    importlib.invalidate_caches()
    sys.modules.pop("hooked_broken", None)
    module = importlib.import_module("hooked_broken")
    assert seen == [module]


@pytest.mark.swallows_internal_errors
def test_a_failing_hook_is_swallowed_and_the_others_still_run(
    package_dir: Path, telemetry_internal_errors_fail: list[str]
) -> None:
    write_module(package_dir, "hooked_fails")
    seen: list[Any] = []

    def broken(module: Any) -> None:
        raise ValueError("hook bug")

    patching.when_imported("hooked_fails", broken)
    patching.when_imported("hooked_fails", seen.append)
    module = importlib.import_module("hooked_fails")
    assert seen == [module]
    assert telemetry_internal_errors_fail == [
        "post-import hook for hooked_fails: ValueError: hook bug"
    ]
    patching.when_imported("hooked_fails", broken)  # already imported: runs now, swallowed too
    assert len(telemetry_internal_errors_fail) == 2


def test_a_hook_registered_while_the_module_runs_waits_for_its_end(package_dir: Path) -> None:
    write_module(
        package_dir,
        "hooked_self",
        """
        import sys
        from otel_cli_telemetry.capture import patching
        patching.when_imported(__name__, lambda m: sys.modules["hooked_self_seen"].append(m.LAST))
        LAST = "end of module"
        """,
    )
    seen: list[str] = []
    sys.modules["hooked_self_seen"] = seen  # type: ignore[assignment]
    try:
        patching.when_imported("hooked_self", lambda module: None)
        importlib.import_module("hooked_self")
    finally:
        del sys.modules["hooked_self_seen"]
    assert seen == ["end of module"]


def test_namespace_packages_import_as_usual(package_dir: Path) -> None:
    (package_dir / "hooked_ns").mkdir()
    write_module(package_dir / "hooked_ns", "inner")
    patching.when_imported("hooked_ns", lambda module: None)
    module = importlib.import_module("hooked_ns.inner")
    assert module.VALUE == 1
    assert list(sys.modules["hooked_ns"].__path__) == [str(package_dir / "hooked_ns")]


def test_threads_importing_at_once_run_the_hook_once(package_dir: Path) -> None:
    write_module(package_dir, "hooked_threads", "import time\ntime.sleep(0.05)\n")
    seen: list[Any] = []
    patching.when_imported("hooked_threads", seen.append)
    threads = [
        threading.Thread(target=importlib.import_module, args=("hooked_threads",))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [sys.modules["hooked_threads"]]


def test_a_real_process_patches_click_imported_after_init(cli_env: dict[str, str]) -> None:
    """No wrapt: click is patched through our finder, and the run is recorded as usual."""
    script = textwrap.dedent(
        """
        import atexit, json, sys
        records = []
        atexit.register(lambda: print(json.dumps(report)))  # runs after the SDK's own
        import otel_cli_telemetry as telemetry
        telemetry.init(app="probe", version="1.0", enabled=True, inject_command=False)
        from otel_cli_telemetry.capture import patching, session
        session.sink = records.append
        assert "click" not in sys.modules
        import click

        @click.group()
        def cli():
            pass

        @cli.command()
        def hello():
            click.echo("hi")

        report = {
            "wrapt": "wrapt" in sys.modules,
            "patched": patching.is_ours(vars(click.core.Command)["main"]),
            "loader": type(click.__loader__).__name__,
            "records": records,
        }
        cli(["hello"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    first, last = done.stdout.splitlines()
    assert first == "hi"
    report = json.loads(last)
    assert report["wrapt"] is False
    assert report["patched"] is True
    assert report["loader"] == "SourceFileLoader"
    (record,) = report["records"]
    assert record["attributes"]["cli_telemetry.command"] == "hello"
