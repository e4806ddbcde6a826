"""Binds the selected feature files as pytest tests (the plugin makes each one run per engine).

`gameday run FEATURE...` passes its selection in GAMEDAY_FEATURES (os.pathsep-separated); without
it, the `features/` directory of the current directory.
"""

import os
from pathlib import Path

from pytest_bdd import scenarios

scenarios(*os.environ.get("GAMEDAY_FEATURES", str(Path.cwd() / "features")).split(os.pathsep))
