"""The one exception type that homl-edge raises for a user's mistake: one line, what was wrong, what to do."""
import re

# a parameter named in a message: {name}, {name=} or {name=value}; only the names an error declares in param=
_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)(=[^{}]*)?\}")


class HomlEdgeError(ValueError):
    """A clear, one-line error about the user's input (a model, a file, data or a setting).

    ``param`` names the parameter(s) the error concerns, as data. Where the message names one, it is written
    ``{name}``, ``{name=}`` or ``{name=value}`` (in an f-string: ``{{overwrite=True}}``); ``str(e)`` spells it as
    Python does (``overwrite=True``), and each face spells it its own way (``--force``) through :meth:`render`.
    ``call`` (e.g. ``"he.gpu.configure"``) makes each such name a whole call to run: ``he.gpu.configure(split=...)``.
    """

    call = None

    def __init__(self, message: str = "", *, param=None, call: str | None = None):
        self.template = str(message)
        self.param = (param,) if isinstance(param, str) else tuple(param or ())
        if call is not None:
            self.call = call
        super().__init__(self.render())

    def render(self, spell=None) -> str:
        """The message with each declared parameter spelled by ``spell(name, value, call)`` (``value``: the text
        after ``=``, or None; ``call``: True when the name stands for a whole call). ``spell`` returns the face's
        words, or None to keep Python's spelling."""

        def one(m):
            name, value = m.group(1), m.group(2)
            if name not in self.param:
                return m.group(0)
            value = None if value is None else value[1:]
            words = spell(name, value, self.call is not None) if spell else None
            if words is not None:
                return words
            python = name if value is None else f"{name}={value}"
            return f"{self.call}({python})" if self.call else python

        return _PARAM.sub(one, self.template)


class InvalidModelFileError(HomlEdgeError):
    """A ``.tflite`` file or buffer that is not a valid model."""


class GpuConfigError(HomlEdgeError):
    """A GPU setting that cannot be applied (usually: TensorFlow's runtime is already initialised)."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (or its type name), for a one-line error of our own."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
