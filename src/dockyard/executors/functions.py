"""Which Python functions a worker runs: those its owner allowed, never whatever a definition names.

A ``python`` definition names ``package.module:function``, and whoever may register definitions
picks that name; an inline function then runs inside the worker process, with everything the
worker can read (its environment, its home, its store). So a worker runs a function only when

1. it was registered in the worker's process with :func:`function` (``@dockyard.function``),
2. its module, or a package above it, is listed in the policy's ``python_modules``, or
3. its module is found in one of the worker's project folders (the ``search_path``, the
   folder the worker was started in), and not in an installation of Python (the standard
   library, ``site-packages``: a virtual environment kept in the project folder does not make
   every installed package the project's code);

and never a function of the standard library or of Dockyard
(:func:`dockyard.domain.specs.python.forbidden_function`), whatever the rules say. The rule is
applied twice: to the module the definition names, before any of its code runs, and to the
module the object found there was really defined in, once it is loaded (``from subprocess
import run`` in a project module does not make ``tasks:run`` the project's code).

Where a module would be imported from is read by hand (:func:`module_origin`) rather than with
``importlib.util.find_spec``, which imports (runs) the parent packages of a dotted name: the
check must run no code of a module it has not yet allowed.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import json
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dockyard.domain.specs.python import forbidden_function

__all__ = [
    "FunctionNotAllowed",
    "FunctionRules",
    "function",
    "load_function",
    "module_origin",
    "registered_function",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The functions registered in this process, by ``module:qualname``.
_REGISTERED: dict[str, Callable[..., Any]] = {}


def function(target: F) -> F:
    """Let ``python`` jobs run ``target`` on the workers of this process (returned unchanged)::

        @dockyard.function
        def resize(payload): ...

    A definition names it as ``module:resize``. Registering is needed only for a function
    outside the worker's project folder and outside the modules the policy lists."""
    _REGISTERED[f"{target.__module__}:{target.__qualname__}"] = target
    return target


def registered_function(ref: str) -> Callable[..., Any] | None:
    """The function registered in this process under ``ref``, or None."""
    return _REGISTERED.get(ref)


def load_function(ref: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (no check); raise ImportError or AttributeError when
    it is not there, TypeError when it is not callable."""
    module_name, _, attribute = ref.partition(":")
    loaded = getattr(importlib.import_module(module_name), attribute)
    if not callable(loaded):
        raise TypeError(f"{ref} is not callable")
    return loaded  # type: ignore[no-any-return]


class FunctionNotAllowed(Exception):
    """The worker's owner did not allow this function: retrying cannot help."""


def _real(path: str) -> str:
    return os.path.realpath(path or os.curdir)


def _installations() -> tuple[str, ...]:
    """Where Python and installed packages live: never a project's own code. The standard
    library and the site-packages folders, and a virtual environment whole; not a system
    Python's prefix (``/usr``), under which a project may live (``/usr/src/app``)."""
    installed = sysconfig.get_paths()
    paths = {installed[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages())
    paths.add(site.getusersitepackages())
    if sys.prefix != sys.base_prefix:
        paths.add(sys.prefix)
    return tuple(sorted(_real(path) for path in paths))


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionRules:
    """What a worker's owner allowed python jobs to run (see the module docstring)."""

    #: Modules (and the modules under them) listed in the policy's ``python_modules``.
    modules: tuple[str, ...] = ()
    #: The worker's project folders, as absolute paths.
    folders: tuple[str, ...] = ()
    _installed: tuple[str, ...] = field(default_factory=_installations, init=False, repr=False)
    _projects: tuple[str, ...] = field(default=(), init=False, repr=False)
    #: Modules found in a project folder already: locating a module's file (resolving links)
    #: cost a sixth of a no-op job's time when done for every attempt.
    _found: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_projects", tuple(_real(folder) for folder in self.folders))

    def check(self, ref: str) -> None:
        """Raise :class:`FunctionNotAllowed` unless ``ref`` may run, or ModuleNotFoundError
        when its module is nowhere; runs no code of the module."""
        if ref in _REGISTERED:
            return
        self._check_module(ref, ref.partition(":")[0])

    def load(self, ref: str) -> Callable[..., Any]:
        """The function ``ref`` names, once allowed: checked, imported, checked again where the
        object was defined."""
        registered = _REGISTERED.get(ref)
        if registered is not None:
            return registered
        self.check(ref)
        loaded = load_function(ref)
        if _defined_in(loaded) != ref.partition(":")[0]:  # else checked already
            self.check_defined(ref, loaded)
        return loaded

    def check_defined(self, ref: str, loaded: object) -> None:
        """Raise :class:`FunctionNotAllowed` unless the module ``loaded`` was defined in is
        allowed too (or it was registered, under ``ref`` or its own name)."""
        module = _defined_in(loaded)
        own = f"{module}:{getattr(loaded, '__qualname__', '')}"
        if ref in _REGISTERED or own in _REGISTERED:
            return
        self._check_module(ref, module)

    def _check_module(self, ref: str, module: str) -> None:
        named = ref.partition(":")[0]
        forbidden = forbidden_function(ref, module)
        if forbidden is not None:
            raise FunctionNotAllowed(forbidden)
        if any(module == listed or module.startswith(listed + ".") for listed in self.modules):
            return
        if module in self._found:
            return
        origin = module_origin(module)
        if origin is not None and self._in_project(_real(origin)):
            self._found.add(module)
            return
        where = "" if module == named else f" is defined in {module}, which"
        raise FunctionNotAllowed(
            f"{ref}{where} is not allowed on this worker: register it with @dockyard.function"
            f" in the worker's process, list {module.partition('.')[0]} in python_modules"
            f" (DOCKYARD_PYTHON_MODULES), or keep it in the worker's project folder"
            f" ({', '.join(self.folders) or 'none'})"
        )

    def _in_project(self, path: str) -> bool:
        if any(_under(path, installed) for installed in self._installed):
            return False
        return any(_under(path, folder) for folder in self._projects)

    def argument(self) -> str:
        """These rules as one command-line argument, for an isolated child to apply."""
        return json.dumps({"modules": self.modules, "folders": self.folders})

    @classmethod
    def from_argument(cls, argument: str) -> FunctionRules:
        """The rules :meth:`argument` wrote."""
        rules = json.loads(argument)
        return cls(modules=tuple(rules["modules"]), folders=tuple(rules["folders"]))


def _defined_in(loaded: object) -> str:
    """The module an object was defined in (its class's, for an instance)."""
    module = getattr(loaded, "__module__", None)
    return module if isinstance(module, str) else type(loaded).__module__


def module_origin(name: str) -> str | None:
    """The file (a folder, for a namespace package) ``name`` is or would be imported from; None
    for a built-in or frozen module. ModuleNotFoundError when it is nowhere. Runs no code."""
    origin, _ = _locate(name)
    return origin


def _locate(name: str) -> tuple[str | None, Sequence[str] | None]:
    """``name``'s origin and, for a package, where its submodules are searched."""
    module = sys.modules.get(name)
    if module is not None:
        path = getattr(module, "__path__", None)
        locations = list(path) if path is not None else None
        file = getattr(module, "__file__", None)
        return (file if isinstance(file, str) else locations[0] if locations else None), locations
    parent, _, _ = name.rpartition(".")
    if not parent:
        spec = importlib.util.find_spec(name)  # a top-level name: no parent to run
    else:
        _, parent_locations = _locate(parent)
        if parent_locations is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        spec = importlib.machinery.PathFinder.find_spec(name, list(parent_locations))
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    search = spec.submodule_search_locations
    locations = list(search) if search is not None else None
    if spec.has_location and spec.origin is not None:
        return spec.origin, locations
    return (locations[0] if locations else None), locations
