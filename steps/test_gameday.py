"""Binds the selected feature files (all of features/ by default) as pytest tests.

`gameday run FEATURE...` passes its selection in GAMEDAY_FEATURES (os.pathsep-separated).
"""

import os
from pathlib import Path

from pytest_bdd import scenarios

DEFAULT_FEATURES = Path(__file__).resolve().parents[1] / "features"

scenarios(*os.environ.get("GAMEDAY_FEATURES", str(DEFAULT_FEATURES)).split(os.pathsep))
