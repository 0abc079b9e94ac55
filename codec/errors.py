"""The one exception type users catch, and the warning for inputs that are changed on the way in.

Every bad input, file or bitstream raises ``CodecError``; an input that lcodec can code only
after changing it (16-bit samples, CMYK, extra frames) gives a ``CodecWarning`` saying so.
"""


class CodecError(Exception):
    """An input, a file or a bitstream that lcodec cannot handle; the message is one line."""


class CodecWarning(UserWarning):
    """An input was changed to be coded (e.g. 16-bit samples reduced to 8); one line."""
