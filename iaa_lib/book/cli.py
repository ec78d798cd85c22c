"""Command line: `python -m iaa_lib <command> ...` (also installed as `iaa`).

Each command is a pair of functions: `add_<name>_parser(subparsers)` declares its options and sets
`func=<run function>`; the run function takes the parsed namespace and returns an exit code. Register a
new command by adding its `add_*_parser` to COMMANDS.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

EXIT_USAGE = 2
RUN_FILES = ("best.pt", "last.pt", "history.json")  # what `train` writes into --out-dir


class UsageError(Exception):
    """Bad command-line input (missing file, wrong format); printed without a traceback, exit code 2."""


def _existing_file(path: str, what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise UsageError(f"{what} {path!r} does not exist or is not a file")
    return resolved


def _existing_dir(path: str, what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_dir():
        raise UsageError(f"{what} {path!r} does not exist or is not a folder")
    return resolved


def _check_writable(path: Path, what: str) -> None:
    """UsageError, before any work, unless a file can be written at `path` (its folder is created if needed)."""
    import tempfile

    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give a file name such as {path / 'scores.csv'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as error:
        raise UsageError(f"{what} {path}: cannot write there ({error.strerror or error}); choose another path") from error
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{what} {path} exists and is not writable; choose another path")


def model_factory(name: str):
    """Model factory by registry name (iaa_lib.models.registered_models) or by import path "package.module:Factory"."""
    import importlib

    from iaa_lib.models import registered_models

    models = registered_models()
    spec = models.get(name, name)
    module_name, _, attr = spec.partition(":")
    if not attr:
        known = ", ".join(sorted(models)) or "(none registered)"
        raise UsageError(f"unknown model {name!r}; registered models: {known}; or pass 'package.module:Factory'")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"cannot import model {name!r} ({spec}): {error}") from error


def build_model(name: str, **kwargs):
    """Instantiate model `name`; keyword arguments the factory does not accept are dropped."""
    import inspect

    factory = model_factory(name)
    parameters = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    return factory(**kwargs)


def _model_transform(model, train: bool = False):
    """Resize/normalise transform matching the model's backbone (input_size, mean, std; ImageNet defaults)."""
    from iaa_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

    size = getattr(model, "input_size", 224)
    mean, std = getattr(model, "mean", IMAGENET_MEAN), getattr(model, "std", IMAGENET_STD)
    return train_transform(size, mean, std) if train else eval_transform(size, mean, std)


# ---------------------------------------------------------------- predict
def add_predict_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="score images with a trained model",
        description="Predict aesthetic scores (mean score and, for distribution models, the 10-bin distribution) "
        "for image files and write them to a CSV.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGES_OR_DIR",
                        help="image files and/or folders (every .jpg/.jpeg/.png/.bmp/.webp/.tif image inside, not recursive)")
    parser.add_argument("--model", required=True,
                        help="registered model name (see iaa_lib.models.registered_models, e.g. 'nima') or 'package.module:Factory'")
    parser.add_argument("--weights", required=True, metavar="CKPT",
                        help="checkpoint written by training (best.pt / last.pt) or a state dict file of that model")
    parser.add_argument("--config", default=None,
                        help="model configuration (e.g. smoke|full); default: the one stored in the checkpoint, else the model's default")
    parser.add_argument("--out", default="scores.csv", help="output CSV path (default: scores.csv); columns image, pred_mos, pred_dist_1..10")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: 16)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="leave out images that cannot be decoded (listed on stderr) instead of stopping with an error")
    parser.set_defaults(func=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    import torch

    from iaa_lib.data.images import ImageLoadError
    from iaa_lib.files import atomic_write_text
    from iaa_lib.training.checkpoints import CheckpointError, load_checkpoint
    from iaa_lib.training.evaluation import image_paths, predict

    weights = _existing_file(args.weights, "--weights checkpoint")
    out = Path(args.out).expanduser().resolve()
    _check_writable(out, "--out")
    try:
        paths = image_paths(args.images)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from error
    try:
        checkpoint = load_checkpoint(weights)
    except CheckpointError as error:
        raise UsageError(f"--weights: {error}") from error
    stored = dict(checkpoint.get("model_config") or {})
    kwargs = {k: v for k, v in stored.items() if k != "name"}
    if args.config is not None:
        kwargs["config"] = args.config
    if "weights" in kwargs:
        kwargs["weights"] = None  # the checkpoint replaces the backbone's initial weights
    model = build_model(args.model, **kwargs)
    try:
        load_checkpoint(weights, model)
    except (RuntimeError, ValueError) as error:
        raise UsageError(f"--weights does not fit --model {args.model!r}: {error}") from error
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        with warnings.catch_warnings():  # skipped images are listed on stderr below
            warnings.simplefilter("ignore", UserWarning)
            frame = predict(model, paths, _model_transform(model), batch_size=args.batch_size, device=device,
                            on_error="skip" if args.skip_unreadable else "raise")
    except ImageLoadError as error:
        raise UsageError(f"{error} (use --skip-unreadable to leave such images out)") from error
    atomic_write_text(out, frame.to_csv(index=False))
    for path, reason in frame.attrs.get("skipped", []):
        print(f"skipped unreadable image {path}: {reason}", file=sys.stderr)
    print(f"wrote {len(frame)} predictions to {out}")
    return 0


# ---------------------------------------------------------------- train
def add_train_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model on a labelled image folder",
        description="Train a model on a label CSV + image folder with a random train/validation split; writes "
        "best.pt, last.pt and history.json to --out-dir.",
    )
    parser.add_argument("--model", required=True, help="registered model name (e.g. 'nima') or 'package.module:Factory'")
    parser.add_argument("--data", required=True, metavar="CSV",
                        help="label file: AVA votes (image_id, votes_1..votes_10 CSV/.csv.gz, or AVA.txt), a label CSV "
                        "with image_id, mos (optional dist_1..dist_10, path), or path, score (your own ratings; "
                        "image_id = file stem); values are checked before training")
    parser.add_argument("--images", required=True, metavar="DIR",
                        help="folder holding <image_id>.jpg files (or the base of relative paths in the CSV)")
    parser.add_argument("--config", default="smoke", help="model configuration: smoke (small, CPU) or full (paper settings) (default: smoke)")
    parser.add_argument("--backbone-weights", default=None,
                        help="backbone weights: 'imagenet', a hub tag, a local file, or 'none' for random init (default: the config's)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the head (default: 1e-3)")
    parser.add_argument("--backbone-lr", type=float, default=None, help="peak learning rate of the backbone (default: --lr / 10)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per optimiser step (default: 16)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="fraction of images held out for validation (default: 0.2)")
    parser.add_argument("--target", choices=("auto", "dist", "mos"), default="auto",
                        help="training target: score distribution (EMD r=2 loss) or mean score (MSE); auto = dist when the CSV has it")
    parser.add_argument("--seed", type=int, default=0, help="random seed for split, init and data order (default: 0)")
    parser.add_argument("--out-dir", default="runs/cli_train",
                        help="folder for checkpoints and history, relative to the current folder (default: "
                        "runs/cli_train); must not hold a run already unless --resume")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--resume", action="store_true", help="continue from --out-dir/last.pt (same settings required)")
    parser.add_argument("--normalise-dist", action="store_true",
                        help="divide dist_1..dist_10 rows that do not sum to 1 (e.g. raw counts) by their sum instead "
                        "of refusing them")
    parser.add_argument("--skip-unreadable", action="store_true",
                        help="leave out images that cannot be decoded (listed on stderr) instead of stopping with an error")
    parser.set_defaults(func=run_train)


def _refuse_existing_run(out_dir: Path, resume: bool) -> None:
    """UsageError when out_dir already holds a run and --resume was not given (nothing is deleted)."""
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if found and not resume:
        raise UsageError(f"--out-dir {out_dir} already holds a run ({', '.join(found)}); pass --resume to continue it, "
                         "or choose a new --out-dir (nothing was changed)")


def _train_sets(frame, split: dict, image_dir, model, skip_unreadable: bool) -> dict:
    """{"train", "val"} AestheticDatasets; unreadable images left out (listed on stderr) when skip_unreadable."""
    from iaa_lib.data.datasets import AestheticDataset

    by_id = frame.set_index("image_id", drop=False)
    sets = {}
    with warnings.catch_warnings():  # skipped images are listed on stderr below
        warnings.simplefilter("ignore", UserWarning)
        for name in ("train", "val"):
            sets[name] = AestheticDataset(by_id.loc[split[name]], image_dir, _model_transform(model, train=name == "train"),
                                          on_error="skip" if skip_unreadable else "raise")
    for dataset in sets.values():
        for image_id, path, reason in dataset.skipped:
            print(f"skipped unreadable image {path} (image_id {image_id}): {reason}", file=sys.stderr)
    empty = [name for name, dataset in sets.items() if len(dataset) == 0]
    if empty:
        raise UsageError(f"no readable images left in the {' and '.join(empty)} split")
    return sets


def run_train(args: argparse.Namespace) -> int:
    from torch import nn
    from torch.utils.data import DataLoader

    from iaa_lib.data.images import ImageLoadError
    from iaa_lib.data.labels import DIST_COLUMNS, read_label_file
    from iaa_lib.data.splits import random_split
    from iaa_lib.losses import EMDLoss
    from iaa_lib.seed import seed_everything
    from iaa_lib.training.engine import FitConfig, fit

    data = _existing_file(args.data, "--data label file")
    images = _existing_dir(args.images, "--images folder")
    if not 0 < args.val_fraction < 1:
        raise UsageError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    out_dir = Path(args.out_dir).expanduser().resolve()
    _refuse_existing_run(out_dir, args.resume)
    try:
        frame = read_label_file(data, image_dir=images, normalise_dist=args.normalise_dist)
    except ValueError as error:
        raise UsageError(f"--data: {error}") from error
    has_dist = all(c in frame.columns for c in DIST_COLUMNS)
    target = ("dist" if has_dist else "mos") if args.target == "auto" else args.target
    if target == "dist" and not has_dist:
        raise UsageError(f"--target dist needs columns dist_1..dist_10 (or AVA votes) in {data}")
    split = random_split(frame["image_id"], ratios=(1 - args.val_fraction, args.val_fraction, 0.0), seed=args.seed)
    if not split["train"] or not split["val"]:
        raise UsageError(f"{len(frame)} images are too few for --val-fraction {args.val_fraction}")
    seed_everything(args.seed)
    kwargs = {"config": args.config}
    if args.backbone_weights is not None:
        kwargs["weights"] = None if args.backbone_weights.lower() == "none" else args.backbone_weights
    model = build_model(args.model, **kwargs)
    image_dir = None if "path" in frame.columns else images
    try:
        sets = _train_sets(frame, split, image_dir, model, args.skip_unreadable)
    except ImageLoadError as error:
        raise UsageError(f"{error} (use --skip-unreadable to leave such images out)") from error
    train_set, val_set = sets["train"], sets["val"]
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers, drop_last=len(train_set) > args.batch_size)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, num_workers=args.num_workers)
    loss = EMDLoss(r=2) if target == "dist" else nn.MSELoss()
    cfg = FitConfig(
        epochs=args.epochs, lr=args.lr, backbone_lr=args.backbone_lr if args.backbone_lr is not None else args.lr / 10,
        target=target, seed=args.seed, out_dir=str(out_dir), device=args.device, resume=args.resume,
        warmup_epochs=min(1.0, args.epochs / 5), grad_clip=1.0,
        extra={"data": str(data), "images": str(images), "val_fraction": args.val_fraction},
    )
    try:
        history = fit(model, loss, train_loader, val_loader, cfg)
    except ImageLoadError as error:
        raise UsageError(f"{error} (use --skip-unreadable to leave such images out)") from error
    best = history["epochs"][history["best_epoch"] - 1] if history["best_epoch"] else history["epochs"][-1]
    print(f"best epoch {best['epoch']}: val SRCC {best.get('val_srcc', float('nan')):.3f}; checkpoints in {cfg.out_dir}")
    return 0


def add_run_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="execute one book notebook with papermill, checking its parameters",
        description="Execute a py:percent notebook in its own folder. Parameters are checked against the "
                    "notebook's parameters cell before anything runs: unknown names and wrong types are refused.")
    parser.add_argument("notebook", help="path to a notebooks/<chapter>/NN_topic.py file")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a parameter; VALUE is read as a Python literal (3, 0.5, True, None) or else as text")
    parser.add_argument("--output", default=None,
                        help="where to write the executed .ipynb (default: beside the .py)")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    parser.set_defaults(func=run_run)


def run_run(args) -> int:
    from iaa_lib.book.runner import NotebookParameterError, parse_cli_value, run_notebook

    notebook = _existing_file(args.notebook, "notebook")
    parameters = {name: parse_cli_value(value) for name, value in args.parameter}
    try:
        result = run_notebook(notebook, args.output, parameters, cell_timeout_s=args.cell_timeout)
    except NotebookParameterError as error:
        raise UsageError(str(error)) from error
    print(f"executed {notebook} in {result['seconds']:.1f} s -> {result['output']}")
    if result["metrics"]:
        print("metrics:", ", ".join(f"{k}={v}" for k, v in result["metrics"].items() if not isinstance(v, dict)))
    return 0


def add_book_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "book", help="execute every notebook of _toc.yml (smoke defaults) and build the HTML book",
        description="Execute every notebook listed in _toc.yml with papermill using its default (smoke) "
                    "parameters, then run `jupyter-book build -W -n --keep-going`. Output: _build/html, and the "
                    "per-notebook timing table _build/book_timings.md.")
    parser.add_argument("--jobs", type=int, default=2,
                        help="chapters executed side by side, each notebook in its own kernel (default: 2)")
    parser.add_argument("--rehearse", action="store_true",
                        help="instead of building: run every notebook's full profile on a miniature AVA copy for "
                             "2 optimiser steps per training run with random weights (iaa_lib.book.rehearsal); "
                             "writes _build/rehearsal_timings.md")
    parser.add_argument("--rehearse-dir", default=None, metavar="DIR",
                        help="new or empty folder for the rehearsal's data, runs and executed notebooks (default: "
                             "a new temporary folder, kept)")
    parser.add_argument("--record", action="store_true",
                        help="after the build, copy its timing table to benchmarks/results/book_timings_cpu.{csv,md} "
                             "(with provenance): the record tests/test_book_budget.py checks; run on an idle machine")
    parser.set_defaults(func=run_book)


def run_book(args) -> int:
    from iaa_lib.book.build import build_book

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.rehearse_dir is not None and not args.rehearse:
        raise UsageError("--rehearse-dir needs --rehearse")
    if args.rehearse and args.record:
        raise UsageError("--record records the smoke build's timings; it cannot be combined with --rehearse")
    if args.rehearse:
        import tempfile

        from iaa_lib.book.rehearsal import rehearse_and_record

        folder = Path(args.rehearse_dir or tempfile.mkdtemp(prefix="iaa_rehearsal_")).expanduser()
        if folder.exists() and any(folder.iterdir()):
            raise UsageError(f"--rehearse-dir {folder} is not empty; give a new or empty folder")
        rehearse_and_record(folder, jobs=args.jobs)
        print(f"rehearsal data, runs and executed notebooks kept in {folder}")
        return 0
    build_book(jobs=args.jobs)
    if args.record:
        from iaa_lib.book.build import record_timings

        print(f"recorded the timing table as {record_timings()}")
    return 0


def add_bench_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="parameters, FLOPs, throughput and peak memory of every model at its paper configuration",
        description="Benchmark the models at their paper ('full') configuration with random weights: parameters, "
                    "forward GFLOPs per image (torch FlopCounterMode), inference and training img/s and peak "
                    "memory. Writes the CSV, a markdown table (.md) and a plot (.png) next to it.")
    parser.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                        help="models to benchmark: nima eat milnet ssmr cdcm cgiaa (default: all)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto = cuda when available)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per step (default: 4)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement (default: 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before them (default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--modes", nargs="+", default=["infer", "train"], help="infer and/or train (default: both)")
    parser.add_argument("--precisions", nargs="+", default=None,
                        help="fp32 and/or bf16 (autocast) (default: fp32 bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--compile", choices=("off", "on", "both"), default=None,
                        help="torch.compile variants (default: both on CUDA, off on CPU)")
    parser.add_argument("--isolate", default="mode",
                        help="CPU: 'mode' = a fresh process per (model, mode) (default); 'model' = one per model "
                             "(faster; the train row's RSS then includes the inference run)")
    parser.add_argument("--config", default="full", help="model configuration: full (paper, default) or smoke")
    parser.add_argument("--out", default="runs/bench/models.csv",
                        help="output CSV (default: runs/bench/models.csv); .md and .png are written beside it")
    parser.set_defaults(func=run_bench)


def _bench_command(args: argparse.Namespace, models: list[str]) -> str:
    """The bench command line that reproduces `args`, every option spelled out (for the report header)."""
    parts = ["python -m iaa_lib bench --models", *models, "--device", args.device, "--batch-size", str(args.batch_size),
             "--steps", str(args.steps), "--warmup", str(args.warmup), "--modes", *args.modes,
             "--isolate", args.isolate, "--config", args.config, "--out", args.out]
    for flag, value in (("--threads", args.threads), ("--compile", args.compile)):
        if value is not None:
            parts += [flag, str(value)]
    if args.precisions:
        parts += ["--precisions", *args.precisions]
    return " ".join(parts)


def run_bench(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from iaa_lib.book.bench import BENCHMARKED, plot_benchmark, run_benchmarks, save_results, summary_table
    from iaa_lib.paths import resolve

    models = args.models or list(BENCHMARKED)
    compiled = {None: None, "off": (False,), "on": (True,), "both": (False, True)}[args.compile]
    try:
        frame = run_benchmarks(models, args.device, args.batch_size, args.steps, args.warmup, args.precisions,
                               compiled, args.modes, args.threads, args.config, args.isolate)
    except ValueError as error:
        raise UsageError(str(error)) from error
    csv_path, md_path = save_results(frame, resolve(args.out), _bench_command(args, models))
    png_path = csv_path.with_suffix(".png")
    plot_benchmark(frame).savefig(png_path, dpi=120)
    print(summary_table(frame).to_string(index=False))
    print(f"wrote {csv_path}, {md_path} and {png_path}")
    return 0


# ---------------------------------------------------------------- data check
def add_data_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="dataset tools: `data check` scans a dataset in its original layout",
                                   description="Dataset tools.")
    commands = parser.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND",
                                     help="check: scan a dataset folder and write its manifest")
    check = commands.add_parser(
        "check", help="check a dataset folder as its authors distribute it and write a manifest",
        description="Read a dataset in its original layout (AVA: AVA.txt, images/<id>.jpg, aesthetics_image_lists/"
                    "*.jpgl; TAD66K, BAID, AADB: their released label CSVs, taken from data/labels when absent under "
                    "--root), look for, hash and decode every image, and report images found, missing and "
                    "unreadable, label rows that cannot be read, duplicate ids, split sizes and train/test leaks by "
                    "id and by content hash. Writes a manifest CSV (one row per label row with its status) and a JSON "
                    "summary beside it; chapters read the manifest instead of rescanning. Exit status 1 when there "
                    "are errors (unless --allow-errors).")
    check.add_argument("--dataset", required=True, choices=("ava", "tad66k", "baid", "aadb"),
                       help="which dataset layout to read: ava, tad66k, baid or aadb")
    check.add_argument("--root", required=True, metavar="DIR", help="the dataset folder as distributed")
    check.add_argument("--manifest", default=None, metavar="OUT",
                       help="manifest CSV to write (default: runs/data/<dataset>_manifest.csv); its JSON summary "
                            "goes beside it (same name, .json)")
    check.add_argument("--verify", choices=("decode", "header"), default="decode",
                       help="decode: decode every image fully (default); header: PIL open + verify (faster, "
                            "misses some truncated files)")
    check.add_argument("--workers", type=int, default=None, help="threads reading images (default: min(8, CPUs))")
    check.add_argument("--rescan", action="store_true",
                       help="re-read every image even where an earlier manifest at OUT says it is unchanged")
    check.add_argument("--allow-errors", action="store_true", help="exit 0 even when the check finds errors")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.add_argument("--limit", type=int, default=10, help="examples listed per kind of problem (default 10)")
    check.set_defaults(func=run_data_check)


def run_data_check(args: argparse.Namespace) -> int:
    from iaa_lib.data.check import check_dataset, format_report, read_manifest, write_manifest
    from iaa_lib.paths import resolve

    root = _existing_dir(args.root, "--root")
    out = resolve(args.manifest or f"runs/data/{args.dataset}_manifest.csv")
    previous = None
    if not args.rescan and out.is_file():
        try:
            previous = read_manifest(out).frame
        except (ValueError, FileNotFoundError, KeyError) as error:
            print(f"not reusing {out}: {error}", file=sys.stderr)
    try:
        result = check_dataset(args.dataset, root, verify=args.verify, workers=args.workers,
                               progress=not args.no_progress, previous=previous)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from error
    write_manifest(result, out)
    print(format_report(result.report, limit=args.limit))
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0 if result.report.ok or args.allow_errors else 1


COMMANDS = [add_predict_parser, add_train_parser, add_run_parser, add_book_parser, add_bench_parser, add_data_parser]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m iaa_lib", description="Image aesthetic assessment toolkit.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default sys.argv[1:]) and run the chosen command; bad input -> message on stderr, exit 2."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as error:
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
