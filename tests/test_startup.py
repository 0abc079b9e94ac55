"""A library process's first image: CompressAI's unused parts stay out until something asks."""

import json
import subprocess
import sys

import pytest
from conftest import make_image
from PIL import Image

from codec.startup import _Registry


@pytest.fixture
def png(tmp_path):
    p = tmp_path / "photo.png"
    Image.fromarray(make_image(48, 64)).save(p)
    return p


def probe(code: str) -> list:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


HEAVY = "['torch', 'torchvision', 'torch_geometric', 'scipy.stats']"


def test_import_codec_imports_no_torch():
    got = probe(f"import sys, json, codec; print(json.dumps([m in sys.modules for m in {HEAVY}]))")
    assert got == [False, False, False, False]


def test_library_codes_without_the_extras_and_they_still_work(png):
    """The first compress leaves torchvision, torch_geometric and scipy.stats out; each deferred
    module then imports for real, once, and the registries read as CompressAI fills them."""
    got = probe(
        "import sys, json, codec\n"
        f"codec.compress({str(png)!r})\n"
        f"out = [[m in sys.modules for m in {HEAVY}]]\n"
        "import compressai\n"
        "from compressai.registry import DATASETS, TRANSFORMS\n"
        "out.append(['ImageFolder' in DATASETS, 'RandomSample' in TRANSFORMS, "
        "'ToTensor' in TRANSFORMS])\n"
        "import compressai.datasets.image\n"
        "from compressai.datasets import *\n"
        "out.append([ImageFolder is compressai.datasets.ImageFolder is "
        "compressai.datasets.image.ImageFolder is DATASETS['ImageFolder'], "
        "compressai.datasets is sys.modules['compressai.datasets']])\n"
        "from compressai.entropy_models import GaussianConditional\n"
        "import scipy.stats\n"
        "out.append([round(float(GaussianConditional._standardized_quantile(0.5)), 6), "
        "type(scipy.stats).__name__, type(compressai.transforms).__name__])\n"
        "print(json.dumps(out))"
    )
    assert got == [
        [True, False, False, False],
        [True, True, True],
        [True, True],
        [0.0, "module", "module"],
    ]


def test_a_process_that_imported_compressai_first_is_left_alone():
    got = probe(
        "import sys, json, compressai, codec\n"
        "print(json.dumps([type(compressai.datasets).__name__, 'torch_geometric' in sys.modules, "
        "codec.startup.defer_compressai_extras()]))"
    )
    assert got == ["module", True, False]


def test_registry_fills_on_first_read_and_registrations_win():
    fills = []

    def fill():
        fills.append(1)
        return {"a": "base a", "b": "base b"}

    table = _Registry(fill)
    table["b"] = "registered b"  # a registration does not fill
    assert fills == []
    assert table["a"] == "base a" and fills == [1]
    assert dict(table) == {"a": "base a", "b": "registered b"} and len(table) == 2
    assert table == {"a": "base a", "b": "registered b"} and fills == [1]


def test_registry_that_fails_to_fill_tries_again():
    attempts = []

    def fill():
        attempts.append(1)
        if len(attempts) == 1:
            raise ImportError("no torch_geometric")
        return {"x": 1}

    table = _Registry(fill)
    with pytest.raises(ImportError):
        "x" in table  # noqa: B015
    assert list(table) == ["x"] and len(attempts) == 2
