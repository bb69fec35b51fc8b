"""``python -m brushwork``."""

from brushwork.cli import main

raise SystemExit(main())
