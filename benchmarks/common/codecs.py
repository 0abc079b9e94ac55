"""Codec adapters: one small class per codec, registered by name, in the manner of Pillow's plugins.

Every adapter turns an HxWx3 uint8 array into the bytes of the file a user would save and back.
Its ``quality`` knob runs from 0 to 100 and more quality always means more bits, so a single
``--qualities`` list means the same thing for every codec. Classical encoders are pinned to one
thread where the library allows it, as CompressAI's published classical runs were.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, features


class CodecUnavailable(RuntimeError):
    """The codec's library or plugin is not installed; the message says what to install."""


class Codec:
    """Base adapter. Subclasses set ``name`` and ``default_qualities`` and implement ``encode``."""

    name: str = ""
    label: str = ""
    default_qualities: Sequence[float] = ()
    # Runs only when named: too slow for a default sweep of every codec.
    opt_in: bool = False
    # Which of the benchmarks' lcodec options (weights, effort, tune) the constructor takes.
    options: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise ``CodecUnavailable`` when this codec cannot run here."""

    def settings(self) -> dict:
        """Encoder settings other than quality, recorded next to the results."""
        return {}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        """Decode through Pillow (every classical format here has a Pillow reader)."""
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB")).copy()


REGISTRY: dict[str, type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    """Class decorator that makes a codec available by its ``name``."""
    REGISTRY[cls.name] = cls
    return cls


def _save(img: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **options)
    return buf.getvalue()


def _sweep(lo: int, hi: int, step: int, extra: Sequence[int] = ()) -> tuple[int, ...]:
    return tuple(sorted(set(range(lo, hi + 1, step)) | set(extra)))


@register
class LCodec(Codec):
    """lcodec itself, through its public API; the whole ``.lcz`` file counts in bpp."""

    name = "lcodec"
    label = "lcodec"
    default_qualities = (0, 10, 25, 40, 55, 70, 85, 100)
    options = ("weights",)

    def __init__(self, device: str | None = None, weights: str | None = None):
        self.device = device
        self.weights = weights

    def check(self) -> None:
        try:
            import codec
        except ImportError as e:
            raise CodecUnavailable(f"the codec package cannot be imported ({e})") from None
        if not hasattr(codec, "compress") or not hasattr(codec, "decompress"):
            raise CodecUnavailable("codec.compress / codec.decompress are not available")

    def _extra(self) -> dict:
        return {"weights": self.weights} if self.weights else {}

    def _encoder_options(self) -> dict:
        """Options of ``codec.compress`` beyond the weights; none for the plain encoder."""
        return {}

    def settings(self) -> dict:
        """Device and, where the loaded model tells them, the weights' name and sha256."""
        out = {"device": self.device or "auto", **self._extra()}
        try:
            import codec

            w = getattr(codec.load_model(device=self.device, **self._extra()), "weights", None)
            out["model"] = getattr(w, "model_id", None)
            out["sha256"] = getattr(w, "sha256", None)
        except Exception:  # noqa: BLE001 - provenance is best effort, never fatal
            pass
        return out

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        import codec

        options = {**self._extra(), **self._encoder_options()}
        return codec.compress(img, quality=float(quality), device=self.device, **options)

    def decode(self, data: bytes) -> np.ndarray:
        import codec

        return codec.decompress(data, device=self.device, **self._extra())


@register
class LCodecMSSSIM(LCodec):
    """lcodec with the release tuned for MS-SSIM: what ``lcodec compress --tune ms-ssim``
    writes with, so that the report shows both of lcodec's curves."""

    name = "lcodec-ms-ssim"
    label = "lcodec, tuned for MS-SSIM"
    options = ()  # the release tuned for MS-SSIM by definition

    def _extra(self) -> dict:
        from codec.net.zoo import TUNED

        return {"weights": TUNED["ms-ssim"]}


@register
class LCodecEffort(LCodec):
    """lcodec with ``--effort``: what the slower encoder buys over the whole quality ladder,
    with the same decoder and the same weights as ``lcodec`` (unless ``--tune`` picks
    another release)."""

    name = "lcodec-effort"
    opt_in = True
    options = ("weights", "effort", "tune")
    default_effort = 5

    def __init__(
        self,
        device: str | None = None,
        weights: str | None = None,
        effort: int | None = None,
        tune: str | None = None,
    ):
        super().__init__(device, weights)
        self.effort = self.default_effort if effort is None else effort
        self.tune = tune
        self.label = f"lcodec, --effort {self.effort}" + (f" --tune {tune}" if tune else "")

    def _extra(self) -> dict:
        # The release lcodec compress writes with: the tune's unless --weights names one.
        from codec.api import tuned

        weights, _ = tuned(self.tune, self.weights)
        return {"weights": weights} if weights else {}

    def _encoder_options(self) -> dict:
        return {"effort": self.effort, **({"tune": self.tune} if self.tune else {})}

    def settings(self) -> dict:
        # Untuned runs keep the settings they always had, so that their reports still merge.
        tuned = {"tune": self.tune} if self.tune else {}
        return {**super().settings(), "effort": self.effort, **tuned}


@register
class JPEG(Codec):
    """libjpeg through Pillow: 4:2:0 and Huffman-optimized, the way JPEGs are usually shipped."""

    name = "jpeg"
    label = "JPEG"
    default_qualities = _sweep(10, 90, 10, extra=(5, 95))

    def settings(self) -> dict:
        return {"subsampling": "4:2:0", "optimize": True}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        return _save(img, "JPEG", quality=round(quality), subsampling="4:2:0", optimize=True)


@register
class WebP(Codec):
    """libwebp (lossy) through Pillow at its default effort (method 4)."""

    name = "webp"
    label = "WebP"
    default_qualities = _sweep(10, 90, 10, extra=(5, 95))

    def check(self) -> None:
        if not features.check("webp"):
            raise CodecUnavailable("Pillow was built without WebP support")

    def settings(self) -> dict:
        return {"method": 4}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        return _save(img, "WEBP", quality=round(quality), method=4)


@register
class JPEG2000(Codec):
    """OpenJPEG through Pillow (.jp2 file, 9/7 wavelet), driven by a target rate.

    Quality q asks for ``0.1 * 20 ** (q / 100)`` bpp, so 0..100 spans 0.1 to 2 bpp
    log-uniformly; the file's real size is what gets measured.
    """

    name = "jpeg2000"
    label = "JPEG 2000"
    default_qualities = (0, 15, 30, 45, 60, 75, 90, 100)

    def check(self) -> None:
        if not features.check("jpg_2000"):
            raise CodecUnavailable("Pillow was built without OpenJPEG (JPEG 2000) support")

    def settings(self) -> dict:
        return {"quality_mode": "rates", "irreversible": True, "target_bpp": "0.1*20**(q/100)"}

    @staticmethod
    def target_bpp(quality: float) -> float:
        return 0.1 * 20 ** (float(quality) / 100)

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        ratio = 24.0 / self.target_bpp(quality)  # OpenJPEG's rate is relative to 8-bit RGB
        return _save(
            img, "JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True
        )


@register
class AVIF(Codec):
    """AV1 still images through Pillow's native AVIF support (4:2:0, speed 6, one thread)."""

    name = "avif"
    label = "AVIF"
    default_qualities = _sweep(10, 90, 10, extra=(95,))

    def check(self) -> None:
        if not features.check("avif"):
            raise CodecUnavailable("Pillow was built without AVIF support (needs Pillow >= 11.3)")

    def settings(self) -> dict:
        return {"subsampling": "4:2:0", "speed": 6, "max_threads": 1}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        s = self.settings()
        return _save(
            img,
            "AVIF",
            quality=round(quality),
            subsampling=s["subsampling"],
            speed=s["speed"],
            max_threads=s["max_threads"],
        )


@register
class AVIFSlow444(AVIF):
    """AVIF as a quality-minded user runs it: full-resolution chroma (4:4:4) at speed 2.

    Same library, quality sweep and single thread as ``avif``; only the effort and the chroma
    layout differ. When both run, the RD harness keeps the stronger of the two as its AVIF.
    """

    name = "avif-s2-444"
    label = "AVIF (speed 2, 4:4:4)"

    def settings(self) -> dict:
        return {"subsampling": "4:4:4", "speed": 2, "max_threads": 1}


@register
class JXL(Codec):
    """JPEG XL (libjxl, VarDCT) through pillow-jxl-plugin, effort 7, one thread."""

    name = "jxl"
    label = "JPEG XL"
    default_qualities = _sweep(10, 90, 10, extra=(95,))

    def check(self) -> None:
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
        except ImportError:
            raise CodecUnavailable("install pillow-jxl-plugin (pip install -e .[bench])") from None

    def settings(self) -> dict:
        return {"effort": 7, "num_threads": 1}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        # Quality 100 would switch libjxl to lossless; cap just below it to stay lossy.
        q = min(float(quality), 99.0)
        return _save(img, "JXL", quality=q, effort=7, num_threads=1)


@register
class HEIC(Codec):
    """HEVC stills (libheif + x265) through pillow-heif, 4:2:0."""

    name = "heic"
    label = "HEIC"
    default_qualities = _sweep(10, 90, 10, extra=(95,))

    def check(self) -> None:
        try:
            import pillow_heif
        except ImportError:
            raise CodecUnavailable("install pillow-heif (pip install -e .[bench])") from None
        pillow_heif.register_heif_opener()

    def settings(self) -> dict:
        return {"subsampling": "4:2:0"}

    def encode(self, img: np.ndarray, quality: float) -> bytes:
        return _save(img, "HEIF", quality=round(quality), subsampling="4:2:0")


def available_names() -> list[str]:
    """All registered codec names, in registration order."""
    return list(REGISTRY)


def default_names() -> list[str]:
    """The codecs a run measures when it names none: all but the opt-in ones."""
    return [n for n, cls in REGISTRY.items() if not cls.opt_in]


def create(
    name: str,
    device: str | None = None,
    weights: str | None = None,
    effort: int | None = None,
    tune: str | None = None,
) -> Codec:
    """Instantiate a registered codec: lcodec's adapters take the device and the options
    they declare (``Codec.options``)."""
    cls = REGISTRY[name]
    if not issubclass(cls, LCodec):
        return cls()
    given = {"weights": weights, "effort": effort, "tune": tune}
    return cls(device, **{k: given[k] for k in cls.options})


def taking(option: str) -> list[str]:
    """The codecs that take ``option`` (``weights``, ``effort`` or ``tune``), in registry
    order."""
    return [n for n, cls in REGISTRY.items() if option in cls.options]
