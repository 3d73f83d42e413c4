"""How homl-edge writes a measured quantity for people (no imports: the base layer and the faces share it)."""


def format_ms(ms: float) -> str:
    """A latency for people: microseconds below 1 ms ("20.3 µs", not "0.0203 ms"), milliseconds above (every table,
    repr and plot legend spells a latency with it)."""
    ms = float(ms)
    return f"{ms * 1e3:.3g} µs" if abs(ms) < 1 else f"{ms:.3g} ms"
