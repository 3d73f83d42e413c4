"""The one exception type that homl-edge raises for a user's mistake: one line, what was wrong, what to do."""


class HomlEdgeError(ValueError):
    """A clear, one-line error about the user's input (a model, a file, data or a setting)."""


class InvalidModelFileError(HomlEdgeError):
    """A ``.tflite`` file or buffer that is not a valid model."""


class GpuConfigError(HomlEdgeError):
    """A GPU setting that cannot be applied (usually: TensorFlow's runtime is already initialised)."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (or its type name), for a one-line error of our own."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
