"""Many subjects x many models in one run, with group statistics and model comparisons.

- :mod:`.config`: ``STUDY.toml`` (:func:`load_study_config`);
- :mod:`.tasks`: one cached (subject, model) alignment per task;
- :mod:`.executor`: where tasks run (this process, a dask LocalCluster, a scheduler);
- :mod:`.aggregate`: group maps, tests, confidence intervals, comparisons, regression;
- :mod:`.report`: ``study.json``, ``group_maps.npz``, ``models.csv``, figures, report;
- :mod:`.run`: :func:`run_study`, the driver.
"""

from __future__ import annotations

from .config import StudyConfig, load_study_config
from .run import run_study

__all__ = ["StudyConfig", "load_study_config", "run_study"]
