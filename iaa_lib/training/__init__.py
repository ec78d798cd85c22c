"""Training engine: fit / fit_or_load / fit_steps, checkpoints, run fingerprints, evaluate / predict, multi-process helpers."""
from iaa_lib.training.checkpoints import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from iaa_lib.training.engine import (FitConfig, NonFiniteLossError, NonFiniteParameterError, config_hash, fit,
                                     fit_or_load, fit_steps)
from iaa_lib.training.evaluation import evaluate, predict
from iaa_lib.training.fingerprint import dataset_fingerprint, fingerprint

__all__ = ["CheckpointError", "FitConfig", "NonFiniteLossError", "NonFiniteParameterError", "config_hash",
           "dataset_fingerprint", "evaluate", "fingerprint", "fit", "fit_or_load", "fit_steps", "load_checkpoint",
           "predict", "read_checkpoint", "save_checkpoint"]
