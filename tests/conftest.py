import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def make_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth photo-like test image: gradients, a few shapes and mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [
            128 + 100 * np.sin(xx / max(width, 1) * 3 + seed),
            128 + 90 * np.cos(yy / max(height, 1) * 4),
            128 + 60 * np.sin((xx + yy) / 17.0),
        ],
        axis=2,
    )
    cy, cx = height / 2, width / 3
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < (min(height, width) / 4) ** 2] = (220, 40, 60)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def image():
    return make_image(77, 101)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module whose figures must not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
