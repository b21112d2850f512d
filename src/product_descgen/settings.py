"""Project settings (Kedro defaults unless stated)."""

import warnings

from kedro.config import OmegaConfigLoader  # noqa: F401  (the default loader, named for clarity)

# Kedro 1.7's config loader and kedro-mlflow's hook call OmegaConf.register_new_resolver, which
# omegaconf 2.4 deprecates with a warning per call: four 13-line warnings at the start of every
# run that no user of this project can act on (nothing here calls it).
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment's parameters and globals are merged key by key into base's: it states only
    # what it changes (lists are replaced whole). Catalog entries are replaced whole.
    "merge_strategy": {"parameters": "soft", "globals": "soft"},
}

from product_descgen.hooks import (  # noqa: E402
    ConfigCheckHooks,
    DeviceCheckHooks,
    InputsCheckHooks,
    MlflowInterruptHooks,
    MlflowParamsHooks,
    PipelineTimingHooks,
    RunOutputsHooks,
    RuntimeHooks,
)

# pluggy calls the last registered first: the outputs are named after the time table, and the
# configuration is checked before anything else
HOOKS = (
    RuntimeHooks(), RunOutputsHooks(), PipelineTimingHooks(), MlflowParamsHooks(),
    MlflowInterruptHooks(), InputsCheckHooks(), DeviceCheckHooks(), ConfigCheckHooks(),
)  # fmt: skip
