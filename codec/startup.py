"""Start-up of a process that codes images: CompressAI without the parts coding never uses.

``import compressai`` imports every subpackage: its datasets and transforms, through its
transform registry torchvision and torch_geometric (and with them torch._dynamo), and
``scipy.stats``, which only the ``update()`` of training and export calls. That is most of a
one-photo ``lcodec compress`` after torch itself (docs/STARTUP.md).

``import codec`` imports none of it. It arranges that while CompressAI's ``__init__`` runs,
whoever imports it (lcodec or anything else in the process), those modules are stand-ins
whose code runs the moment a name in them is first asked for. The stand-ins leave
``sys.modules`` as soon as that import ends, so a later ``import compressai.datasets`` or
``import scipy.stats`` is an ordinary import, and the registry's table fills itself from
torchvision and torch_geometric the first time anything reads it. A process that imported
CompressAI before lcodec is left as it is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from typing import Callable

_PACKAGE = "compressai"
_DEFERRED = ("compressai.datasets", "compressai.transforms", "scipy.stats")
_REGISTRY = "compressai.registry.transforms"
_lock = threading.Lock()


def _find(name: str) -> importlib.machinery.ModuleSpec | None:
    """The spec of ``name``, found along its parents' paths without importing any of them."""
    parts = name.split(".")
    spec = importlib.util.find_spec(parts[0])
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return None
        path = list(spec.submodule_search_locations)
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:depth]), path)
    return spec if spec is not None and spec.loader is not None else None


class _Deferred(types.ModuleType):
    """A module whose code runs, by an ordinary import, when a name in it is first asked for.

    Not ``importlib.util.LazyLoader``: that one loads on any attribute, and torch's import
    runs ``inspect.getmodule``, which asks every module in ``sys.modules`` for ``__file__``.
    """

    def __init__(self, spec: importlib.machinery.ModuleSpec):
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        self.__file__ = spec.origin
        package = spec.submodule_search_locations is not None
        self.__package__ = spec.name if package else spec.parent
        if package:  # a submodule imported meanwhile loads on its own, not twice
            self.__path__ = list(spec.submodule_search_locations)

    def __getattr__(self, attr: str):
        # Other dunders are probes (copy, pickle, inspect): answer them without loading.
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())

    def _load(self) -> types.ModuleType:
        name = self.__name__
        with _lock:
            listed = sys.modules.get(name) is self
            if listed:
                del sys.modules[name]
        try:
            real = importlib.import_module(name)
        except BaseException:
            if listed:
                with _lock:
                    sys.modules.setdefault(name, self)
            raise
        parent, _, child = name.rpartition(".")
        owner = sys.modules.get(parent)
        if owner is not None and vars(owner).get(child) is self:
            setattr(owner, child, real)
        return real


class _Registry(dict):
    """A CompressAI registry table: registrations go in at once, ``fill()``'s entries on the
    first read (any read), so the table reads as it would without the stand-ins."""

    def __init__(self, fill: Callable[[], dict]):
        super().__init__()
        self._fill_with = fill
        self._filled = False

    def _fill(self) -> _Registry:
        if not self._filled:
            self._filled = True  # a read while filling sees what is there so far
            try:
                entries = self._fill_with()
            except BaseException:
                self._filled = False
                raise
            for key, value in entries.items():
                dict.setdefault(self, key, value)  # a registration overrides, as it would
        return self


def _reads(name: str):
    method = getattr(dict, name)

    def read(self: _Registry, *args, **kwargs):
        return method(self._fill(), *args, **kwargs)

    read.__name__ = read.__qualname__ = name
    return read


for _name in (
    "__contains__",
    "__delitem__",
    "__eq__",
    "__getitem__",
    "__iter__",
    "__len__",
    "__ne__",
    "__or__",
    "__repr__",
    "__reversed__",
    "__ror__",
    "copy",
    "get",
    "items",
    "keys",
    "pop",
    "popitem",
    "setdefault",
    "values",
):
    setattr(_Registry, _name, _reads(_name))


def _registrations(name: str) -> dict:
    """Import ``name``, whose decorators register its classes; nothing else to add."""
    importlib.import_module(name)
    return {}


def _transform_registry(spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
    """``compressai.registry.transforms`` with a ``_Registry`` for its table."""

    def fill() -> dict:
        _registrations("compressai.transforms")
        real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(real)  # imports torchvision and torch_geometric
        return real.TRANSFORMS

    module = types.ModuleType(spec.name)
    module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
    module.__all__ = ["TRANSFORMS", "register_transform"]
    module.TRANSFORMS = table = _Registry(fill)

    def register_transform(name: str):
        """Decorator for registering a transform."""

        def decorator(cls):
            table[name] = cls
            return cls

        return decorator

    module.register_transform = register_transform
    return module


def _defer_dataset_registry() -> None:
    """Make ``compressai.registry.DATASETS`` a ``_Registry`` that imports the datasets."""
    registry = sys.modules.get("compressai.registry")
    tables = sys.modules.get("compressai.registry.torch")
    datasets = getattr(tables, "DATASETS", None)
    if registry is None or type(datasets) is not dict or registry.DATASETS is not datasets:
        return
    table = _Registry(lambda: _registrations("compressai.datasets"))
    dict.update(table, datasets)
    tables.DATASETS = registry.DATASETS = table


def _stand_in() -> list[_Deferred]:
    """Put the stand-ins in ``sys.modules``; returns the deferred ones."""
    deferred = []
    for name in _DEFERRED:
        spec = None if name in sys.modules else _find(name)
        if spec is not None:
            deferred.append(_Deferred(spec))
            sys.modules[name] = deferred[-1]
    if _REGISTRY not in sys.modules and _REGISTRY.rpartition(".")[0] not in sys.modules:
        spec = _find(_REGISTRY)
        if spec is not None:
            sys.modules[_REGISTRY] = _transform_registry(spec)
    return deferred


def _withdraw(deferred: list[_Deferred]) -> None:
    """Take the stand-ins out of ``sys.modules``; each stays where its parent can reach it."""
    for module in deferred:
        name = module.__name__
        with _lock:
            if sys.modules.get(name) is not module:
                continue  # already loaded for real
            del sys.modules[name]
        parent, _, child = name.rpartition(".")
        owner = sys.modules.get(parent)
        if owner is not None and child not in vars(owner) and "__getattr__" not in vars(owner):
            setattr(owner, child, module)


class _Loader(importlib.abc.Loader):
    """CompressAI's own loader, run with the stand-ins in place."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec):
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader
        deferred = _stand_in()
        try:
            self.loader.exec_module(module)
            if any(m.__name__ == "compressai.datasets" for m in deferred):
                _defer_dataset_registry()
        finally:
            _withdraw(deferred)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``compressai`` once, as the rest of ``sys.meta_path`` would, with ``_Loader``."""

    def find_spec(self, name: str, path=None, target=None):
        if name != _PACKAGE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


def defer_compressai_extras() -> bool:
    """Have CompressAI's next import leave out what coding never uses (see above).

    Imports nothing. Returns False (and changes nothing) when CompressAI is already imported.
    """
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return True
    if _PACKAGE in sys.modules:
        return False
    sys.meta_path.insert(0, _Finder())
    return True
