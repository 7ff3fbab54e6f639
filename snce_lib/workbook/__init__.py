"""The workbook: what the notebooks share, so that each notebook only tells its story.

Owns the profiles (`profiles`), each step's expected time on a T4 (`budget`), the setup after the install cell (`session`), the steps that load or
build what an earlier notebook made (`steps`), the interactive panels (`widgets`) and the headless
runner behind `snce workbook` (`runner`). May import every other sub-package; none imports it.

In a notebook: `from snce_lib import workbook as wb; P = wb.setup()`.
"""

from snce_lib.workbook.budget import announce, plan, plan_text
from snce_lib.workbook.profiles import NOTEBOOKS, PROFILES, MissingStepError, Profile, get_profile
from snce_lib.workbook.session import installed_since, setup
from snce_lib.workbook.steps import (
    FALLBACK_SHARES,
    ensure_encoder,
    ensure_eval_setup,
    ensure_look,
    ensure_pipeline,
    ensure_sae,
    ensure_selection,
    ensure_store,
    ensure_toy,
    record,
    sae_config,
    select_with_fallback,
    training_prompts,
)

__all__ = [
    "FALLBACK_SHARES",
    "NOTEBOOKS",
    "PROFILES",
    "MissingStepError",
    "Profile",
    "announce",
    "ensure_encoder",
    "ensure_eval_setup",
    "ensure_look",
    "ensure_pipeline",
    "ensure_sae",
    "ensure_selection",
    "ensure_store",
    "ensure_toy",
    "get_profile",
    "installed_since",
    "plan",
    "plan_text",
    "record",
    "sae_config",
    "select_with_fallback",
    "setup",
    "training_prompts",
]
