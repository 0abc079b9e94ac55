"""The one exception type users catch: every bad input, file or bitstream raises it."""


class CodecError(Exception):
    """An input, a file or a bitstream that lcodec cannot handle; the message is one line."""
