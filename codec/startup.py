"""Start-up of a process that only codes images: CompressAI without its point-cloud half.

``import compressai`` imports every subpackage, and its datasets, transforms and transform
registry import torch_geometric (and with it torch._dynamo): about 2.7 s of a one-photo
``lcodec compress``, for code that only dataset and point-cloud pipelines use. The command
line owns its process, so it defers the datasets and transforms subpackages (their code runs
the moment anything asks for a name in them) and gives the transform registry an empty table.
The library leaves the imports of a process it does not own alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

_DEFERRED = ("compressai.datasets", "compressai.transforms")
_REGISTRY = "compressai.registry.transforms"


class _Deferred(types.ModuleType):
    """A module whose code runs when a name in it is first asked for.

    Not ``importlib.util.LazyLoader``: that one loads on any attribute, and torch's import
    runs ``inspect.getmodule``, which asks every module in ``sys.modules`` for ``__file__``.
    """

    def __init__(self, spec: importlib.machinery.ModuleSpec):
        super().__init__(spec.name)
        self.__spec__ = spec
        self.__loader__ = spec.loader
        self.__file__ = spec.origin
        self.__package__ = spec.name if spec.submodule_search_locations else spec.parent

    def __getattr__(self, attr: str):
        # Other dunders are probes (copy, pickle, inspect): answer them without loading.
        if attr.startswith("__") and attr != "__path__":
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    def _load(self) -> types.ModuleType:
        name = self.__spec__.name
        real = sys.modules.get(name)
        if real is None or real is self:
            real = importlib.util.module_from_spec(self.__spec__)
            sys.modules[name] = real
            try:
                self.__spec__.loader.exec_module(real)
            except BaseException:
                sys.modules[name] = self
                raise
        return real


def _empty_transform_registry() -> types.ModuleType:
    module = types.ModuleType(_REGISTRY)
    module.TRANSFORMS = {}

    def register_transform(name: str):
        def decorator(cls):
            module.TRANSFORMS[name] = cls
            return cls

        return decorator

    module.register_transform = register_transform
    return module


def skip_compressai_extras() -> bool:
    """Keep CompressAI's dataset and transform code out of this process until it is used.

    Returns False (and changes nothing) when CompressAI is already imported or not installed.
    """
    if any(name == "compressai" or name.startswith("compressai.") for name in sys.modules):
        return False
    spec = importlib.util.find_spec("compressai")
    if spec is None or not spec.submodule_search_locations:
        return False
    path = list(spec.submodule_search_locations)
    specs = {name: importlib.machinery.PathFinder.find_spec(name, path) for name in _DEFERRED}
    if any(spec is None or spec.loader is None for spec in specs.values()):
        return False
    sys.modules.update({name: _Deferred(spec) for name, spec in specs.items()})
    sys.modules[_REGISTRY] = _empty_transform_registry()
    return True
