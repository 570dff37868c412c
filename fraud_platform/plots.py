"""Plots as PNG bytes, for reports in the lake and for Dagster metadata (Markdown images)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def figure(width: float = 6, height: float = 3.2) -> Iterator[tuple[Any, dict[str, bytes]]]:
    """A matplotlib (figure, axis) pair; on exit the PNG is in the yielded dict's "png"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(width, height), dpi=100)
    out: dict[str, bytes] = {}
    try:
        yield axis, out
        axis.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        out["png"] = buffer.getvalue()
    finally:
        plt.close(fig)


def data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def images_md(images: dict[str, bytes]) -> str:
    """Markdown showing each PNG inline (what Dagster's metadata panel renders)."""
    return "\n\n".join(f"![{name}]({data_uri(png)})" for name, png in images.items())
