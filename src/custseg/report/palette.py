"""One colour per segment, by the segment's identity (its colour index), never by its size rank.

The twelve colours are Okabe & Ito's (2008) six chromatic colours followed by six
chosen from Paul Tol's schemes, greedily so that every pair stays distinct (CIELAB
ΔE ≥ 15) for normal vision and simulated deuteranopia and protanopia (Machado et
al. 2009); ``tests/test_palette.py`` checks it. A segment keeps its colour index
across runs (it is carried in the description), so the same kind of segment keeps
its colour between runs and reports. Beyond twelve segments colours repeat.
"""

from __future__ import annotations

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
           "#332288", "#882255", "#DDCC77", "#661100", "#000000", "#EE99AA")


def colour_for(index: int) -> str:
    """The hex colour of a segment's colour index (0-based)."""
    return PALETTE[int(index) % len(PALETTE)]


def ink_on(colour: str) -> str:
    """Black or white text, whichever reads better on a fill colour."""
    import matplotlib.colors  # here: the report's text imports this module without drawing

    r, g, b = matplotlib.colors.to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.4 else "white"
