"""Training engine: fit / fit_or_load / fit_steps, evaluate / predict, multi-process helpers."""
from iaa_lib.training.engine import (FitConfig, NonFiniteLossError, config_hash, fit, fit_or_load, fit_steps,
                                     load_checkpoint)
from iaa_lib.training.evaluation import evaluate, predict

__all__ = ["FitConfig", "NonFiniteLossError", "config_hash", "evaluate", "fit", "fit_or_load", "fit_steps",
           "load_checkpoint", "predict"]
