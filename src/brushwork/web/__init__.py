"""brushwork studio: a local web page for style transfer runs (``brushwork serve``).

Starlette and uvicorn are optional (``pip install -e ".[web]"``); nothing here
imports them at package import time, so ``brushwork`` itself never needs them.
Build the app with :func:`brushwork.web.app.create_app`.
"""

from __future__ import annotations

__all__: list[str] = []
