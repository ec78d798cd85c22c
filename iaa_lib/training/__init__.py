"""Training engine: fit / fit_or_load / fit_steps, checkpoints, run fingerprints, evaluate / predict, learning checks,
multi-process helpers."""
from iaa_lib.training.baselines import statistics_baseline
from iaa_lib.training.checkpoints import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from iaa_lib.training.engine import (FitConfig, NonFiniteLossError, NonFiniteParameterError, config_hash, fit,
                                     fit_or_load, fit_steps)
from iaa_lib.training.evaluation import evaluate, predict
from iaa_lib.training.fingerprint import dataset_fingerprint, fingerprint
from iaa_lib.training.learning_check import LearningCheck, learning_check, untrained_predictions

__all__ = ["CheckpointError", "FitConfig", "LearningCheck", "NonFiniteLossError", "NonFiniteParameterError",
           "config_hash", "dataset_fingerprint", "evaluate", "fingerprint", "fit", "fit_or_load", "fit_steps",
           "learning_check", "load_checkpoint", "predict", "read_checkpoint", "save_checkpoint",
           "statistics_baseline", "untrained_predictions"]
