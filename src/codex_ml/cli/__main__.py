"""``python -m codex_ml.cli`` (what ``torchrun -m codex_ml.cli`` starts)."""

import sys

from codex_ml.cli import main

sys.exit(main())
