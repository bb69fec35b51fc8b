"""brushwork studio: a local web page for style transfer runs (``brushwork serve``).

Starlette and uvicorn are optional (``pip install -e ".[web]"``); nothing here
imports them at package import time, so ``brushwork`` itself never needs them.
Build the app with :func:`brushwork.web.app.create_app`.
"""

from __future__ import annotations

__all__ = ["MAX_QUEUE", "PREVIEW_INTERVAL"]

# Declared here, not in app.py or jobs.py, because the ``serve`` flags show them as
# defaults and must build without Starlette, uvicorn or torch; app.py and jobs.py import them.
#: Jobs that may wait at once; one more is refused with HTTP 429.
MAX_QUEUE = 8
#: Seconds between live preview frames of a running job.
PREVIEW_INTERVAL = 0.5
