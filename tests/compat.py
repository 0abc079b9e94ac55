"""The compatibility corpus: small ``.lcz`` files written by every release, for ever.

``python tests/compat.py RELEASE`` writes ``tests/data/compat/RELEASE/`` once, with the installed
lcodec: crops of the sample photo in every layout the format holds and every format version the
release can write, the pixels each decodes to on the CPU (PNG), and ``manifest.json`` with the
sha256 of each file, of its entropy-decoded latents and of its pixels. A release's folder is
never rewritten; ``tests/test_compat.py`` decodes every file of every release on each run.

``python tests/compat.py RELEASE --refinement`` writes ``RELEASE+refinement/`` the same way: files
that carry a synthesis refinement (section 2), of a small flat graphic (photo crops that small
never pay for one), in both of its forms.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

ROOT = Path(__file__).parent / "data" / "compat"
SAMPLE = Path(__file__).parent.parent / "samples" / "sample.jpg"


def latent_digest(data: bytes) -> str:
    """sha256 of the entropy-decoded latent symbols: bit-exact on every device by design."""
    import torch

    from codec import bitstream
    from codec.net.zoo import weights_for
    from codec.runtime import load_model

    c = bitstream.unpack(data)
    lm = load_model(weights_for(c.model_id, c.weights_hash), "cpu")
    with torch.inference_mode():
        y_hat = lm.coder.decode(c.streams, c.z_shape, c.version)
    return hashlib.sha256(y_hat.to(torch.int32).numpy().tobytes()).hexdigest()


def pixel_digest(pixels: np.ndarray) -> str:
    return hashlib.sha256(str(pixels.shape).encode() + pixels.tobytes()).hexdigest()


def inputs() -> dict[str, object]:
    """The pictures of the corpus: small, with padding on both axes, in every layout."""
    photo = Image.open(SAMPLE).convert("RGB")
    rgb = photo.crop((300, 200, 396, 272))  # 96x72: padded to 128x128
    tall = photo.crop((100, 60, 140, 190))  # 40x130
    yy, xx = np.mgrid[0:72, 0:96]
    alpha = Image.fromarray(((xx * 2 + yy) % 256).astype(np.uint8), "L")
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    graya = rgb.convert("L")
    graya = Image.merge("LA", (graya, alpha))
    icc = rgb.copy()
    icc.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    gray16 = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    return {
        "rgb": rgb,
        "tall": tall,
        "gray": rgb.convert("L"),
        "rgba": rgba,
        "graya": graya,
        "icc": icc,
        "gray16": gray16,
    }


def graphic(height: int, width: int, period: int) -> Image.Image:
    """Flat colours and hard edges: what the refinement pays for on a small image."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[...] = (235, 225, 40)
    img[(xx // period + yy // period) % 2 == 0] = (20, 60, 200)
    img[(yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (height / 5) ** 2] = (250, 250, 250)
    return Image.fromarray(img)


#: (name, picture, quality, effort, form) of the refinement corpus: each file must carry a
#: refinement of that form, and the two forms must both be there.
REFINED = (
    ("graphic", lambda: graphic(96, 128, 24), 100, 2, 2),
    ("graphic-gray", lambda: graphic(96, 128, 24).convert("L"), 100, 2, 1),
)


def cases(writes: tuple[int, ...]) -> list[tuple[str, int, int]]:
    """(input, format version, quality): every version the release writes at the ends and
    middle of the ladder for RGB, and each layout and side section in its newest version."""
    newest = writes[-1]
    return [
        *[("rgb", v, q) for v in writes for q in (0, 50, 100)],
        ("tall", newest, 80),
        ("gray", newest, 50),
        ("rgba", newest, 50),
        ("graya", newest, 30),
        ("icc", newest, 50),
        ("gray16", newest, 70),
    ]


def _as_input(im: Image.Image):
    """Through PNG bytes, as a user's file would arrive (the mode, alpha and ICC travel)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", icc_profile=im.info.get("icc_profile"))
    return Image.open(io.BytesIO(buf.getvalue()))


def write_corpus(release: str) -> Path:
    import codec

    folder = ROOT / release
    if folder.exists():
        raise SystemExit(f"{folder} exists: a release's corpus is written once, never again")
    from codec.net import architecture
    from codec.net.zoo import find_weights

    writes = architecture(find_weights(release).manifest["architecture"]).writes
    pictures = inputs()
    entries = []
    folder.mkdir(parents=True)
    for name, version, quality in cases(writes):
        data = codec.encode(
            _as_input(pictures[name]),
            quality,
            device="cpu",
            model=release,
            reconstruct=False,
            format_version=version,
        ).data
        entries.append(_entry(folder, f"{name}-v{version}-q{quality}", data, quality))
    return _manifest(folder, release, entries)


def _entry(folder: Path, stem: str, data: bytes, quality: float, **extra) -> dict:
    """Write a corpus file and the pixels it decodes to; its manifest entry."""
    import codec

    (folder / f"{stem}.lcz").write_bytes(data)
    pic = codec.decode(data, device="cpu")
    pic.to_pil().save(folder / f"{stem}.png", icc_profile=pic.icc_profile)
    return {
        "file": f"{stem}.lcz",
        "pixels": f"{stem}.png",
        "format_version": codec.info(data)["format_version"],
        "quality": quality,
        "mode": pic.mode,
        **extra,
        "sha256": hashlib.sha256(data).hexdigest(),
        "latents_sha256": latent_digest(data),
        "pixels_sha256": pixel_digest(pic.pixels),
    }


def _manifest(folder: Path, release: str, entries: list[dict]) -> Path:
    manifest = {"release": release, "lcodec": _version(), "files": entries}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def write_refinement_corpus(release: str) -> Path:
    import codec
    from codec import bitstream

    folder = ROOT / f"{release}+refinement"
    if folder.exists():
        raise SystemExit(f"{folder} exists: a corpus is written once, never again")
    entries = []
    data_of = {}
    for name, picture, quality, effort, form in REFINED:
        data = codec.encode(
            _as_input(picture()), quality, device="cpu", model=release, effort=effort
        ).data
        got = bitstream.unpack(data).refinement
        if got is None or got[0] != form:
            raise SystemExit(f"{name} at quality {quality} did not get a form-{form} refinement")
        data_of[name] = data
    folder.mkdir(parents=True)
    for name, data in data_of.items():
        c = bitstream.unpack(data)
        stem = f"{name}-v{c.version}-q{c.quality:g}"
        entries.append(_entry(folder, stem, data, c.quality, refinement_form=c.refinement[0]))
    return _manifest(folder, release, entries)


def _version() -> str:
    from importlib.metadata import version

    return version("lcodec")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[2] == "--refinement":
        print(write_refinement_corpus(sys.argv[1]))
    elif len(sys.argv) == 2:
        print(write_corpus(sys.argv[1]))
    else:
        raise SystemExit("usage: python tests/compat.py RELEASE [--refinement]")
