"""The ``lcodec`` command line (commands.py): click commands over the library, with the
checks and the file handling only a command line needs."""

from .commands import main

__all__ = ["main"]
