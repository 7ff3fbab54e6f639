"""Where the workbook's files live: the data it ships, and the run folder it writes to.

The shipped data (corpus, concept pairs, toy weights, the paper's numbers) lives in the
checkout's top-level `data/` folder, which the wheel carries as the package `snce_lib.data`
(a setuptools package-dir mapping); it is read through `importlib.resources`, so an editable
install and a wheel installed anywhere (Colab installs one) find the same files. Runs go to one folder chosen by `SNCE_HOME` (default
`./snce-runs` in the working directory); on Colab, point it at Google Drive so that a
disconnected runtime resumes instead of starting over.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def data_path(*parts: str) -> Path:
    """A file or folder shipped with the package, e.g. `data_path("concepts", "nudity_pairs.csv")`."""
    # The package is installed as plain files (wheel or editable), never zipped, so the
    # resource is a real path that numpy, safetensors and pandas can open.
    return Path(str(files("snce_lib.data").joinpath(*parts)))


def run_home() -> Path:
    """The run folder: $SNCE_HOME, else ./snce-runs in the working directory (absolute)."""
    return Path(os.environ.get("SNCE_HOME") or "snce-runs").expanduser().resolve()
