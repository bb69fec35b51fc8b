"""``python -m brushwork.web [--host H] [--port P] [--data-dir D]``: the serve command alone."""

from __future__ import annotations

import sys

from brushwork.web.cli import serve_main

if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
