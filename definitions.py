"""The Dagster code location: every pipeline in pipelines_repo/pipelines/ (or $PIPELINES_DIR).

    dagster dev -w workspace.yaml
    dagster asset materialize -f definitions.py --select 'key:"support_cases/*"' --partition 2025-01-02

Loading is offline (no Braintrust call). A broken pipeline file does not take the location
down: it shows up as an asset in the `_errors` group and a failing `broken_pipeline_files`
sensor (set BT_DAGSTER_STRICT=1 to fail the load instead). See pipelines_repo/orchestration/.
"""

import warnings

import dagster as dg

from pipelines_repo.orchestration import build_definitions

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

defs = build_definitions()
