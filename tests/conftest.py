"""Settings every test runs under, whether the suite runs in one process or spread over
pytest-xdist's workers (`make test`)."""

from __future__ import annotations

import os

# pytest-xdist's workers start with COLUMNS=80 and LINES=24 in their environment, which
# one process alone does not have. The programs the tests start inherit them and fold
# what they print at 80 columns (uv's resolver messages, Rich), so a message checked for a
# phrase would break in two where the phrase happens to cross the 80th column.
for name in ("COLUMNS", "LINES"):
    os.environ.pop(name, None)
