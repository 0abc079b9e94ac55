"""Start-up of a process that only codes images: CompressAI without its point-cloud half.

``import compressai`` imports every subpackage, and its datasets, transforms and transform
registry import torch_geometric (and with it torch._dynamo): about 2.7 s of a one-photo
``lcodec compress``, for code that only dataset and point-cloud pipelines use. The command
line owns its process, so it registers the datasets and transforms subpackages as lazy modules
(they load for real the moment anything touches them) and gives the transform registry an
empty table. The library leaves the imports of a process it does not own alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

_LAZY = ("compressai.datasets", "compressai.transforms")
_REGISTRY = "compressai.registry.transforms"


def _lazy_module(name: str, package_path: list[str]) -> types.ModuleType | None:
    spec = importlib.machinery.PathFinder.find_spec(name, package_path)
    if spec is None or spec.loader is None:
        return None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    modules = {name: _lazy_module(name, path) for name in _LAZY}
    if any(module is None for module in modules.values()):
        return False
    sys.modules.update(modules)
    sys.modules[_REGISTRY] = _empty_transform_registry()
    return True
