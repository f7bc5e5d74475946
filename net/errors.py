"""Public home of the network layer's exception tree (see `net._errors` for the drawing)."""

from ._errors import *  # noqa: F403 - this module is the tree's public name
from ._errors import __all__ as __all__
