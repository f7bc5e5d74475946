"""Named CT window presets, in Hounsfield units.

Values are Radiopaedia's "Windowing (CT)" table (W = width, L = level/centre),
which matches common scanner defaults:

=============  ======  ======  ==========================================
preset         W       L       note
=============  ======  ======  ==========================================
brain          80      40
subdural       215     75      Radiopaedia gives W 130-300, L 50-100; we
                               take the middle of both ranges
stroke         40      40      Radiopaedia also lists W 8, L 32, which is
                               nearly binary; 40/40 is the usable default
lung           1500    -600
mediastinum    350     50
abdomen        400     50      "soft tissues" of the abdomen
liver          150     30
bone           1800    400
=============  ======  ======  ==========================================

Presets are LINEAR windows (the standard's default VOI LUT Function), so a
preset renders exactly as a header window with the same numbers would.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._voi import Window

__all__ = ["CT_PRESETS", "ct_preset"]

CT_PRESETS: Mapping[str, Window] = MappingProxyType(
    {
        name: Window(center=level, width=width, function="LINEAR", explanation=name)
        for name, width, level in (
            ("brain", 80, 40),
            ("subdural", 215, 75),
            ("stroke", 40, 40),
            ("lung", 1500, -600),
            ("mediastinum", 350, 50),
            ("abdomen", 400, 50),
            ("liver", 150, 30),
            ("bone", 1800, 400),
        )
    }
)


def ct_preset(name: str) -> Window:
    """The preset called `name` (case-insensitive); KeyError lists the known names."""
    try:
        return CT_PRESETS[name.strip().lower()]
    except KeyError:
        raise KeyError(f"no CT preset {name!r}; known: {', '.join(CT_PRESETS)}") from None
