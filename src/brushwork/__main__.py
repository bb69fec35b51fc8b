"""``python -m brushwork``."""

from brushwork.cli import entry

entry()
