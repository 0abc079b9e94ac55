"""Which files a command works on and where each result goes: files, folders, globs, pipes.

A folder is searched recursively and its tree is kept under the output folder; a quoted glob
is expanded here (``**`` included), so it works the same in every shell; ``-`` is standard
input or output. Everything is planned before any work starts, so a bad combination fails at
once; outputs are written atomically and never replace a file without ``force``.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from .errors import CodecError

STDIO = "-"
_TERMINAL = "refusing to write binary data to a terminal (use -o FILE)"


@dataclass
class Job:
    """One input and where its output goes; ``error`` is set when the input cannot be used."""

    src: str  # a path, or "-" for standard input
    dst: str  # a path, or "-" for standard output
    error: str | None = None
    data: bytes | None = None  # standard input, once read

    @property
    def src_label(self) -> str:
        return "<stdin>" if self.src == STDIO else self.src

    @property
    def dst_label(self) -> str:
        return "<stdout>" if self.dst == STDIO else self.dst


@lru_cache(maxsize=1)
def image_suffixes() -> frozenset[str]:
    """File name suffixes of the image formats Pillow can open here."""
    from PIL import Image

    exts = Image.registered_extensions()
    return frozenset(ext for ext, fmt in exts.items() if fmt in Image.OPEN)


def is_image_file(path: Path) -> bool:
    """Whether a file found in a folder is an input image: a format Pillow opens here, except
    ``.lcz`` (which Pillow opens through lcodec's plugin). Folders of the command line, the
    training data and the benchmark images are all searched with this one rule."""
    suffix = path.suffix.lower()
    return suffix in image_suffixes() and suffix != ".lcz"


def _is_glob(pattern: str) -> bool:
    return glob.has_magic(pattern)


def _walk(folder: Path, accept: Callable[[Path], bool]) -> list[Path]:
    """Accepted files under ``folder``, sorted, skipping hidden files and folders."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return [p for p in found if accept(p)]


def plan(
    inputs: tuple[str, ...] | list[str],
    output: str | None,
    suffix: str,
    accept: Callable[[Path], bool],
) -> list[Job]:
    """Expand ``inputs`` (files, folders, globs or ``-``) into jobs with their outputs.

    ``output`` is a file (one input), ``-`` (standard output, one input), or a folder: an
    existing one, one named with a trailing slash, or any when an input is a folder (created
    as needed). Without ``output``, each result goes beside its input with ``suffix``.
    """
    if STDIO in inputs:
        if len(inputs) != 1:
            raise CodecError("standard input (-) cannot be mixed with other inputs")
        if output is not None and output != STDIO and Path(output).is_dir():
            raise CodecError("reading standard input needs -o FILE or -o -")
        if output is not None:
            _check_output_name(output, suffix)
        return [Job(STDIO, output or STDIO)]
    entries: list[tuple[str, Path | None, str | None]] = []  # (path, path in its folder, error)
    has_folder = False
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            has_folder = True
            files = _walk(path, accept)
            if not files:
                entries.append((item, None, f"{item}: no {suffix_kind(suffix)} files found"))
            entries += [(str(p), p.relative_to(path), None) for p in files]
        elif path.is_file():
            entries.append((item, None, None))
        elif _is_glob(item):
            matches = sorted(
                m for m in glob.glob(item, recursive=True) if Path(m).is_file() and accept(Path(m))
            )
            if not matches:
                entries.append((item, None, f"{item}: no {suffix_kind(suffix)} files match"))
            entries += [(m, None, None) for m in matches]
        else:
            entries.append((item, None, _not_a_file(item)))
    single = len(entries) == 1 and not has_folder and not _is_glob(inputs[0])
    if single and output is not None:
        _check_output_name(output, suffix)
    jobs = [
        Job(src, _destination(src, rel, output, suffix, single), err) for src, rel, err in entries
    ]
    if output is not None and output != STDIO and not single:
        _check_folder(output, create_ok=has_folder)
    _check_collisions(jobs)
    return jobs


#: What each output suffix means, for the one-line error when ``-o`` names another format.
WRITES = {".lcz": "compress writes .lcz files", ".png": "decompress writes PNG images"}


def _check_output_name(output: str, suffix: str) -> None:
    """Refuse an output file named for another format (``-o photo.jpg`` from decompress), which
    would otherwise hold bytes its name misstates. A name without a known suffix is the user's
    choice."""
    if output == STDIO or Path(output).is_dir() or output.endswith(("/", os.sep)):
        return
    given = Path(output).suffix.lower()
    if given != suffix and (given in image_suffixes() or given == ".lcz"):
        raise CodecError(f"-o {output}: {WRITES[suffix]}; name the output {suffix}")


def suffix_kind(suffix: str) -> str:
    return "image" if suffix == ".lcz" else "lcodec (.lcz)"


def _destination(src: str, rel: Path | None, output: str | None, suffix: str, single: bool) -> str:
    if output is None:
        return str(Path(src).with_suffix(suffix))
    if output == STDIO:
        if not single:
            raise CodecError("-o - (standard output) takes a single input")
        return STDIO
    if single and not Path(output).is_dir() and not output.endswith(("/", os.sep)):
        return output
    name = rel if rel is not None else Path(Path(src).name)
    return str(Path(output) / name.with_suffix(suffix))


def _check_folder(out: str, create_ok: bool) -> None:
    if Path(out).is_dir() or create_ok or out.endswith(("/", os.sep)):
        return
    if Path(out).exists():
        raise CodecError(f"with several inputs, -o must be a folder: {out} is a file")
    raise CodecError(
        f"with several inputs, -o must be a folder: {out} does not exist (end it with / to "
        "create it)"
    )


def _check_collisions(jobs: list[Job]) -> None:
    real = {j.src: os.path.realpath(j.src) for j in jobs}
    sources = set(real.values())
    seen: dict[str, str] = {}
    for j in jobs:
        if j.dst == STDIO or j.error:
            continue
        key = os.path.realpath(j.dst)
        if key == real[j.src]:
            raise CodecError(
                f"{j.src}: its output would be the file itself (it already ends in "
                f"{Path(j.dst).suffix}); name another with -o"
            )
        if key in sources:
            raise CodecError(f"{j.dst} is also an input: inputs are never overwritten")
        if key in seen:
            raise CodecError(f"{seen[key]} and {j.src} would both write {j.dst}")
        seen[key] = j.src


def read_input(job: Job) -> bytes:
    """The input's bytes (standard input for ``-``, read once and kept)."""
    if job.src == STDIO:
        if job.data is None:
            job.data = sys.stdin.buffer.read()
        return job.data
    return read_file(job.src)


def _not_a_file(path: str | os.PathLike) -> str:
    if Path(path).is_dir():
        return f"{path}: is a folder, not a file"
    if os.path.lexists(path):
        return f"{path}: not a regular file"
    return f"{path}: no such file"


def check_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a regular file; otherwise a ``CodecError`` that names it and says why."""
    p = Path(path)
    if not p.is_file():
        raise CodecError(_not_a_file(path))
    return p


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of a file, or a one-line ``CodecError`` naming it (missing, folder, unreadable)."""
    p = check_file(path)
    try:
        return p.read_bytes()
    except OSError as e:
        raise CodecError(f"{path}: cannot read: {e.strerror or e}") from None


def file_or_bytes(data) -> tuple[bytes, str | None]:
    """The bytes of ``data`` (bytes, or a path to read) and the path, if it was one."""
    if isinstance(data, (str, os.PathLike)):
        return read_file(data), str(data)
    return data, None


@contextmanager
def naming(name: str | None) -> Iterator[None]:
    """Put ``name: `` before the message of any ``CodecError`` raised inside."""
    try:
        yield
    except CodecError as e:
        if name is None:
            raise
        raise CodecError(f"{name}: {e}") from None


def written_by_lcodec(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file lcodec wrote: a ``.lcz`` file, or a PNG that it decoded."""
    from .bitstream import MAGIC

    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC))
    except OSError:
        return False
    if head == MAGIC:
        return True
    from PIL import Image

    from .image import PNG_SOFTWARE

    try:
        with Image.open(path, formats=["PNG"]) as im:
            return im.info.get("Software") == PNG_SOFTWARE
    except Exception:  # not a PNG, or a damaged one: not lcodec's
        return False


def check_jobs(
    jobs: list[Job], inspect: Callable[[Job], None], force: bool, skip_existing: bool
) -> tuple[list[Job], int]:
    """Check every job before any work: its output first, then its input (``inspect``).

    Returns the jobs to run (those that cannot run carry their ``error``) and how many were
    skipped because their output exists (``skip_existing``). An existing output is an error
    without ``force``; one that lcodec did not write is never suggested for ``--force``.
    """
    run, skipped = [], 0
    for job in jobs:
        if not job.error and job.dst == STDIO and sys.stdout.isatty():
            job.error = _TERMINAL
        if not job.error and job.dst != STDIO:
            job.error = _blocked_folder(job.dst)
        if not job.error and job.dst != STDIO and os.path.lexists(job.dst):
            if skip_existing:
                skipped += 1
                continue
            if not force:
                job.error = _exists(job.dst)
        if not job.error:
            try:
                inspect(job)
            except CodecError as e:
                job.error = str(e)
        run.append(job)
    return run, skipped


def _blocked_folder(dst: str) -> str | None:
    """The error when a folder the output needs is a file (``-o notes.txt/out.lcz``), which
    the operating system would report as "File exists" or "Not a directory"."""
    try:
        for parent in Path(dst).parents:
            if parent.exists():
                return None if parent.is_dir() else f"cannot write {dst}: {parent} is not a folder"
    except OSError:  # an unreadable folder: the write itself will say what is wrong
        pass
    return None


def _exists(dst: str) -> str:
    if written_by_lcodec(dst):
        return f"{dst} exists (--force replaces it, --skip-existing keeps it)"
    return f"{dst} exists and lcodec did not write it: choose another output with -o"


def write_output(job: Job, data: bytes, force: bool) -> None:
    """Write ``data`` to the job's output: standard output, or a file, atomically."""
    if job.dst == STDIO:
        out = sys.stdout.buffer
        if out.isatty():
            raise CodecError(_TERMINAL)
        out.write(data)
        out.flush()
        return
    if not force and os.path.lexists(job.dst):  # it appeared since the jobs were checked
        raise CodecError(_exists(job.dst))
    try:
        write_atomic(Path(job.dst), data, force)
    except OSError as e:
        # A full or read-only disk names the temporary file, or nothing: name the output.
        temp = e.filename and Path(e.filename).name.startswith(f".{Path(job.dst).name}.")
        if e.filename is None or temp:
            raise OSError(e.errno, e.strerror or str(e), job.dst) from None
        raise


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes, force: bool, mode: int | None = None) -> None:
    """Write via a temporary file in the same folder, then rename: no half-written outputs.

    The one atomic writer: outputs, checkpoints and released weights go through it. ``mode``
    defaults to what a plain ``open()`` would give."""
    if path.exists() and not force:
        raise CodecError(f"{path} exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private; give it the mode a plain open() would, as cp does.
        os.fchmod(fd, 0o666 & ~current_umask() if mode is None else mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
