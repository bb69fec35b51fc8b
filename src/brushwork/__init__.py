"""brushwork: neural style transfer after Gatys, Ecker & Bethge (2016).

The public API is small::

    from brushwork import stylize, StyleConfig
    image = stylize("photo.jpg", "painting.jpg", size=512)

Everything is imported lazily so that ``import brushwork`` stays cheap (the
CLI's ``--help`` does not need torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BrushworkError",
    "Progress",
    "StyleConfig",
    "load_network",
    "stylize",
    "__version__",
]

if TYPE_CHECKING:
    from brushwork.config import StyleConfig
    from brushwork.engine import load_network, stylize
    from brushwork.errors import BrushworkError
    from brushwork.progress import Progress


def __getattr__(name: str) -> Any:
    if name == "stylize":
        from brushwork.engine import stylize

        return stylize
    if name == "load_network":
        from brushwork.engine import load_network

        return load_network
    if name == "Progress":
        from brushwork.progress import Progress

        return Progress
    if name == "StyleConfig":
        from brushwork.config import StyleConfig

        return StyleConfig
    if name == "BrushworkError":
        from brushwork.errors import BrushworkError

        return BrushworkError
    raise AttributeError(f"module 'brushwork' has no attribute {name!r}")
