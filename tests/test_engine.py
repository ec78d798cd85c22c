"""Training engine: learning, schedules, exact resume, NaN guard, checkpoints, fit_or_load, evaluate, predict, seeds."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from torch import nn
from torch.utils.data import DataLoader, Dataset

from iaa_lib.losses import EMDLoss
from iaa_lib.seed import seed_everything
from iaa_lib.training import (CheckpointError, FitConfig, NonFiniteLossError, NonFiniteParameterError, evaluate, fit,
                              fit_or_load, load_checkpoint, predict)
from iaa_lib.training.engine import config_hash, lr_factor, make_optimizer

torch.set_num_threads(1)  # the 2 shared CPU cores: multi-threaded kernels stall under contention

BINS = torch.arange(1, 11, dtype=torch.float32)


class BrightnessSet(Dataset):
    """8x8 images whose mean score grows with brightness; batch dicts as AestheticDataset gives them."""

    def __init__(self, n: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        brightness = torch.rand(n, generator=gen) * 0.6 + 0.2
        self.images = brightness[:, None, None, None] + 0.1 * torch.randn(n, 3, 8, 8, generator=gen)
        centre = 1 + 10 * brightness
        logits = -((BINS[None] - centre[:, None]) ** 2) / 2
        self.dist = logits.softmax(-1)
        self.mos = (self.dist * BINS).sum(-1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "mos": self.mos[i], "dist": self.dist[i], "image_id": f"img{i}"}


class TinyNet(nn.Module):
    """Conv 'backbone' + dropout + linear head -> softmax over 10 bins."""

    input_keys = ("image",)

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(8, 10))
        self.model_config = {"name": "tiny"}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(image)).softmax(-1)


def loaders(n_train: int = 48, n_val: int = 24, batch_size: int = 8):
    train = DataLoader(BrightnessSet(n_train, seed=1), batch_size=batch_size, shuffle=True)
    val = DataLoader(BrightnessSet(n_val, seed=2), batch_size=batch_size)
    return train, val


def make_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def config(tmp_path, **kw) -> FitConfig:
    base = dict(epochs=4, lr=3e-2, optimizer="adamw", schedule="cosine", warmup_epochs=1, device="cpu",
                out_dir=str(tmp_path), progress=False, grad_clip=1.0)
    return FitConfig(**{**base, **kw})


def test_fit_learns_and_writes_checkpoints(tmp_path):
    train, val = loaders()
    model = make_model()
    before = evaluate(model, val)
    history = fit(model, EMDLoss(r=2), train, val, config(tmp_path, epochs=6))
    after = evaluate(model, val)
    assert after["emd2"] < before["emd2"] - 0.02
    assert after["srcc"] > 0.8
    assert [row["epoch"] for row in history["epochs"]] == list(range(1, 7))
    assert history["finished"] and history["epochs"][-1]["train_loss"] < history["epochs"][0]["train_loss"]
    for key in ("train_img_per_s", "time_s", "val_srcc", "val_plcc", "val_acc", "val_emd1", "val_emd2", "val_loss"):
        assert all(math.isfinite(row[key]) for row in history["epochs"]), key
    on_disk = json.loads((tmp_path / "history.json").read_text())
    assert on_disk["epochs"] == history["epochs"]
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "global_step", "config", "history"} <= set(last)
    assert last["epoch"] == 6 and last["global_step"] == 6 * len(train)
    assert set(last["rng"]) == {"python", "numpy", "torch", "cuda"}
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == history["best_epoch"]
    assert history["best_metric"] == max(row["val_srcc"] for row in history["epochs"])
    # restore_best: the model ends with best.pt's weights
    for name, value in model.state_dict().items():
        assert torch.equal(value, best["model"][name])


def _params(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


class CrashAt:
    """Loss wrapper that raises on its n-th training call (simulates a killed job); same repr as the loss."""

    def __init__(self, loss: nn.Module, crash_call: int) -> None:
        self.loss, self.crash_call, self.calls = loss, crash_call, 0

    def __call__(self, pred, target):
        if torch.is_grad_enabled():
            self.calls += 1
            if self.calls == self.crash_call:
                raise KeyboardInterrupt("simulated interruption")
        return self.loss(pred, target)

    def __repr__(self) -> str:
        return repr(self.loss)


@pytest.mark.parametrize("optimizer,schedule", [("adamw", "cosine"), ("sgd", "step")])
def test_resume_matches_uninterrupted_run(tmp_path, optimizer, schedule):
    train, val = loaders()
    straight = make_model()
    h_straight = fit(straight, EMDLoss(r=2), train, val,
                     config(tmp_path / "straight", optimizer=optimizer, schedule=schedule, step_epochs=1, gamma=0.5))

    interrupted = make_model()
    cfg = config(tmp_path / "resumed", optimizer=optimizer, schedule=schedule, step_epochs=1, gamma=0.5)
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, CrashAt(EMDLoss(r=2), crash_call=2 * len(train) + 3), train, val, cfg)
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 2
    resumed = make_model(seed=123)  # different init: everything must come from last.pt
    cfg.resume = True
    h_resumed = fit(resumed, EMDLoss(r=2), train, val, cfg)

    last_straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    last_resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model"]
    for name in last_straight:
        torch.testing.assert_close(last_resumed[name], last_straight[name], rtol=0, atol=1e-6)
    for a, b in zip(h_straight["epochs"], h_resumed["epochs"]):
        for key in ("train_loss", "val_srcc", "val_emd2", "lr", "step"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_resume_refuses_other_config(tmp_path):
    train, val = loaders()
    fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="another configuration"):
        fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path, epochs=1, lr=1e-1, resume=True))


def test_non_finite_loss_names_step_and_keeps_checkpoint(tmp_path):
    train, val = loaders()
    calls = {"n": 0}

    def nan_in_epoch_two(pred, target):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] == len(train) + 2:
                return pred.sum() * float("nan")
        return EMDLoss(r=2)(pred, target)

    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2 .*global step %d.*img" % (len(train) + 2)):
        fit(make_model(), nan_in_epoch_two, train, val, config(tmp_path))
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1


def test_lr_schedules_and_param_groups():
    cfg = FitConfig(epochs=10, lr=1.0, warmup_epochs=2, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(0, 5, cfg) == pytest.approx(1 / 10)
    assert lr_factor(9, 5, cfg) == pytest.approx(1.0)
    assert lr_factor(10 + 20, 5, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(49, 5, cfg) == pytest.approx(0.1, abs=1e-2)
    step = FitConfig(epochs=10, schedule="step", step_epochs=3, gamma=0.5)
    assert [lr_factor(e * 4, 4, step) for e in (0, 2, 3, 6, 9)] == [1, 1, 0.5, 0.25, 0.125]
    const = FitConfig(epochs=3, schedule="constant")
    assert lr_factor(7, 3, const) == 1.0
    groups = make_optimizer(TinyNet(), FitConfig(lr=1e-3, backbone_lr=1e-5, weight_decay=0.05)).param_groups
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == 1e-5 and by_name["head"]["lr"] == 1e-3
    assert by_name["backbone_no_decay"]["weight_decay"] == 0.0 and by_name["head"]["weight_decay"] == 0.05
    assert sum(len(g["params"]) for g in groups) == len(list(TinyNet().parameters()))
    with pytest.raises(ValueError, match="optimizer"):
        FitConfig(optimizer="lamb")


def test_same_seed_same_metrics_and_hash_sensitivity(tmp_path):
    train, val = loaders()
    runs = []
    for k in range(2):
        seed_everything(7)
        model = TinyNet()
        runs.append(fit(model, EMDLoss(r=2), train, val, config(tmp_path / f"run{k}", epochs=2, seed=7)))
    for a, b in zip(runs[0]["epochs"], runs[1]["epochs"]):
        assert a["train_loss"] == b["train_loss"] and a["val_srcc"] == b["val_srcc"] and a["val_emd2"] == b["val_emd2"]
    model = TinyNet()
    base = config_hash(model, EMDLoss(r=2), train, val, config(tmp_path))
    assert config_hash(model, EMDLoss(r=2), train, val, config(tmp_path, progress=True, device="cuda")) == base
    assert config_hash(model, EMDLoss(r=1), train, val, config(tmp_path)) != base
    assert config_hash(model, EMDLoss(r=2), train, val, config(tmp_path, lr=1.0)) != base
    assert config_hash(model, EMDLoss(r=2), loaders(n_train=40)[0], val, config(tmp_path)) != base


def test_fit_or_load_skips_finished_and_resumes_unfinished(tmp_path, capsys):
    train, val = loaders()
    cfg = config(tmp_path, epochs=2)
    model, history = fit_or_load(make_model(), EMDLoss(r=2), train, val, cfg)
    trained = _params(model)
    mtime = (tmp_path / "last.pt").stat().st_mtime_ns
    fresh, loaded_history = fit_or_load(make_model(seed=5), EMDLoss(r=2), train, val, config(tmp_path, epochs=2, progress=True))
    assert "no training needed" in capsys.readouterr().out
    assert (tmp_path / "last.pt").stat().st_mtime_ns == mtime
    assert loaded_history["epochs"] == history["epochs"]
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, trained[name])
    # a changed config retrains from scratch
    _, other = fit_or_load(make_model(), EMDLoss(r=2), train, val, config(tmp_path, epochs=3))
    assert len(other["epochs"]) == 3 and other["config_hash"] != history["config_hash"]


def test_dict_output_aux_loss_and_on_epoch_end(tmp_path):
    class WithAux(TinyNet):
        def forward(self, image):
            pred = super().forward(image)
            return {"pred": pred, "aux_loss": 0.0 * pred.sum() + 0.5, "attention": pred}

    class CountingLoss(EMDLoss):
        epochs_seen = 0

        def on_epoch_end(self):
            CountingLoss.epochs_seen += 1

    train, val = loaders()
    history = fit(WithAux(), CountingLoss(r=2), train, val, config(tmp_path, epochs=2))
    assert CountingLoss.epochs_seen == 2
    assert history["epochs"][0]["train_loss"] > 0.5  # aux loss added to the EMD


def test_mos_target_and_scalar_model(tmp_path):
    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Flatten(), nn.Linear(192, 1))

        def forward(self, image):
            return self.backbone(image)[:, 0] + 5

    train, val = loaders()
    history = fit(Regressor(), nn.MSELoss(), train, val, config(tmp_path, epochs=3, target="mos", lr=1e-2))
    assert "val_emd2" not in history["epochs"][0] and history["epochs"][-1]["val_srcc"] > 0.5


def test_evaluate_matches_scipy_and_returns_predictions():
    _, val = loaders()
    model = make_model()
    metrics, frame = evaluate(model, val, return_predictions=True)
    data = val.dataset
    with torch.no_grad():
        model.eval()
        pred = model(data.images)
    pred_mos = (pred * BINS).sum(-1).double().numpy()
    assert metrics["n"] == len(data)
    assert metrics["srcc"] == pytest.approx(stats.spearmanr(pred_mos, data.mos.numpy()).statistic, abs=1e-9)
    assert metrics["plcc"] == pytest.approx(stats.pearsonr(pred_mos, data.mos.numpy()).statistic, abs=1e-6)
    manual_emd2 = np.mean(np.sqrt(np.mean((np.cumsum(pred.numpy() - data.dist.numpy(), -1)) ** 2, -1)))
    assert metrics["emd2"] == pytest.approx(manual_emd2, abs=1e-6)
    assert list(frame.columns[:3]) == ["image_id", "mos", "pred_mos"] and "pred_dist_10" in frame
    np.testing.assert_allclose(frame["pred_mos"], pred_mos, atol=1e-6)
    assert evaluate(model, val) == metrics  # deterministic: dropout off
    model.train()
    evaluate(model, val)
    assert model.training  # mode restored


def test_predict_frame_and_unreadable_images(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((12, 16, 3), 60 * i, np.uint8)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")

    def transform(image):
        return torch.from_numpy(np.asarray(image.resize((8, 8)), np.float32) / 255).permute(2, 0, 1)

    model = make_model()
    with pytest.raises(OSError, match="broken.jpg"):
        predict(model, tmp_path, transform)
    with pytest.warns(UserWarning, match="broken.jpg"):
        frame = predict(model, tmp_path, transform, batch_size=2, on_error="skip")
    assert [p.split("/")[-1] for p in frame["image"]] == ["ok0.png", "ok1.png", "ok2.png"]
    assert frame.attrs["skipped"][0][0].endswith("broken.jpg")
    dist_cols = [f"pred_dist_{k}" for k in range(1, 11)]
    np.testing.assert_allclose(frame[dist_cols].sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(frame["pred_mos"], (frame[dist_cols].to_numpy() * np.arange(1, 11)).sum(1), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        predict(model, [tmp_path / "nowhere.jpg"], transform)


def test_load_checkpoint_into_model(tmp_path):
    train, val = loaders()
    model = make_model()
    fit(model, EMDLoss(r=2), train, val, config(tmp_path, epochs=1, restore_best=False))
    other = make_model(seed=9)
    ckpt = load_checkpoint(tmp_path / "last.pt", other)
    assert ckpt["epoch"] == 1
    for name, value in other.state_dict().items():
        assert torch.equal(value, model.state_dict()[name])


def test_seed_everything_seeds_all_generators():
    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(3, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
    seed_everything(0)


def _step_run(seed: int = 0):
    """A linear model, its SGD optimiser, a step schedule and a batch source drawing from its own generator."""
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 3, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])

    def batch_loss():
        rows = torch.randint(32, (8,), generator=generator)
        return ((model(x[rows]) - y[rows]) ** 2).mean()

    return model, batch_loss, optimizer, scheduler


def test_fit_steps_equals_the_hand_written_loop_and_loads_a_finished_run(tmp_path):
    from iaa_lib.training import fit_steps

    reference, batch_loss, optimizer, scheduler = _step_run()
    losses = []
    for _ in range(6):
        loss = batch_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    model, history = fit_steps(*_step_run(), steps=6, out_dir=tmp_path, settings={"lr": 0.1})
    assert history["loss"] == losses and history["finished"] and not model.training
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)
    assert json.loads((tmp_path / "history.json").read_text())["loss"] == losses

    def never_called():
        raise AssertionError("a finished run with the same settings must be loaded, not trained")

    fresh, _, optimizer, scheduler = _step_run(seed=1)
    loaded, again = fit_steps(fresh, never_called, optimizer, scheduler, 6, tmp_path, {"lr": 0.1})
    assert again["loss"] == losses and torch.equal(loaded.weight, reference.weight)
    other, history_other = fit_steps(*_step_run(seed=1), steps=6, out_dir=tmp_path, settings={"lr": 0.2})
    assert history_other["config_hash"] != history["config_hash"] and not torch.equal(other.weight, reference.weight)


def test_fit_steps_stops_on_a_non_finite_loss():
    from iaa_lib.training import fit_steps

    model, _, optimizer, scheduler = _step_run()
    with pytest.raises(NonFiniteLossError, match="step 1 of 3"):
        fit_steps(model, lambda: model.weight.sum() * float("nan"), optimizer, scheduler, 3)


# ----------------------------------------------------------------------------- issue 15: reliability
def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


class NaNLabelFromEpochTwo(BrightnessSet):
    """BrightnessSet whose item 3 gets a NaN label once an epoch has been served (a label going bad mid-run);
    at that moment it snapshots the checkpoint folder, so the test can check nothing there changed after."""

    def __init__(self, n: int, seed: int, run_dir) -> None:
        super().__init__(n, seed)
        self.served, self.run_dir, self.snapshot = 0, run_dir, None

    def fingerprint(self) -> str:
        return "brightness n=48 seed=1, item 3 NaN from epoch 2"  # config_hash must not iterate (and count) items

    def __getitem__(self, i: int) -> dict:
        self.served += 1
        item = super().__getitem__(i)
        if self.served > len(self) and i == 3:
            if self.snapshot is None:
                self.snapshot = {p.name: _sha(p) for p in self.run_dir.iterdir() if p.is_file()}
            item = {**item, "dist": torch.full((10,), float("nan"))}
        return item


def test_nan_label_stops_fit_with_a_real_loss_and_keeps_the_good_checkpoint(tmp_path):
    poisoned = DataLoader(NaNLabelFromEpochTwo(48, seed=1, run_dir=tmp_path), batch_size=8, shuffle=True)
    _, val = loaders()
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step \d+ .*'img3'") as error:
        fit(make_model(), EMDLoss(r=2), poisoned, val, config(tmp_path))
    assert "keep the last finished epoch (1), untouched" in str(error.value)
    snapshot = poisoned.dataset.snapshot
    assert {"last.pt", "best.pt", "history.json"} <= set(snapshot)
    assert {name: _sha(tmp_path / name) for name in snapshot} == snapshot  # untouched by the failing epoch
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["model"].values())


def test_non_finite_parameter_stops_fit_at_the_first_step(tmp_path):
    train, val = loaders()
    with pytest.raises(NonFiniteParameterError, match=r"parameter '.*' became NaN or inf .*epoch 1, step 1 "):
        fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path, lr=float("inf"), grad_clip=None))
    assert not (tmp_path / "last.pt").exists() and not (tmp_path / "best.pt").exists()


def _image_frame(folder, n: int = 24, mirrored: bool = False):
    """Label frame of n small PNGs written to folder (brightness-driven labels, reversed dist when mirrored)."""
    import pandas as pd

    folder.mkdir(exist_ok=True)
    data = BrightnessSet(n, seed=4)
    rows = []
    for i in range(n):
        pixels = (data.images[i].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        path = folder / f"im{i}.png"
        if not path.exists():
            Image.fromarray(np.repeat(np.repeat(pixels, 3, 0), 3, 1)).save(path)
        dist = data.dist[i].flip(0) if mirrored else data.dist[i]
        rows.append({"image_id": f"im{i}", "mos": float((dist * BINS).sum()), "path": str(path),
                     **{f"dist_{k + 1}": float(dist[k]) for k in range(10)}})
    return pd.DataFrame(rows)


def test_fit_or_load_retrains_for_another_image_size_or_other_labels(tmp_path, capsys):
    from iaa_lib.data.datasets import split_loaders

    def run(size: int, mirrored: bool = False):
        frame = _image_frame(tmp_path / "images", mirrored=mirrored)
        parts = {"train": frame.iloc[:16], "val": frame.iloc[16:]}
        built = split_loaders(parts, None, size, batch_size=8, seed=0)
        _, history = fit_or_load(make_model(), EMDLoss(r=2), built["train"], built["val"],
                                 config(tmp_path / "run", epochs=1, progress=True))
        return history, "no training needed" in capsys.readouterr().out

    first, loaded = run(size=16)
    assert not loaded
    again, loaded = run(size=16)
    assert loaded and again["config_hash"] == first["config_hash"]
    other_size, loaded = run(size=12)
    assert not loaded and other_size["config_hash"] != first["config_hash"]
    other_labels, loaded = run(size=12, mirrored=True)
    assert not loaded and other_labels["config_hash"] not in (first["config_hash"], other_size["config_hash"])


def test_dataset_fingerprint_covers_ids_labels_and_inputs_and_is_stable_under_augmentation():
    from iaa_lib.training import dataset_fingerprint

    class Augmented(BrightnessSet):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            return {**item, "image": item["image"] + 0.01 * torch.randn_like(item["image"])}

    base = dataset_fingerprint(BrightnessSet(8, seed=1))
    assert dataset_fingerprint(BrightnessSet(8, seed=1)) == base
    assert dataset_fingerprint(BrightnessSet(8, seed=2)) != base
    torch.manual_seed(0)
    noisy = dataset_fingerprint(Augmented(8, seed=1))
    state = torch.get_rng_state()
    assert dataset_fingerprint(Augmented(8, seed=1)) == noisy  # random augmentation hashed under fixed seeds
    assert torch.equal(torch.get_rng_state(), state)  # ... without touching the caller's RNG
    relabelled = BrightnessSet(8, seed=1)
    relabelled.dist = relabelled.dist.flip(1)
    assert dataset_fingerprint(relabelled) != base


def test_a_fresh_run_that_crashes_leaves_the_previous_run_in_place(tmp_path):
    train, val = loaders()
    fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path, epochs=1))
    before = {name: _sha(tmp_path / name) for name in ("best.pt", "last.pt", "history.json")}
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), CrashAt(EMDLoss(r=2), crash_call=3), train, val, config(tmp_path, epochs=2, lr=1e-2))
    assert {name: _sha(tmp_path / name) for name in before} == before


def test_checkpoints_load_weights_only_and_bad_files_get_one_clear_message(tmp_path):
    train, val = loaders()
    fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path, epochs=1))
    state = torch.load(tmp_path / "last.pt", weights_only=True)  # no pickled objects: nothing can run on load
    assert state["epoch"] == 1

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((tmp_path / "last.pt").read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"truncated\.pt .*truncated"):
        load_checkpoint(truncated)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.pt .*not a readable torch file"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match=r"last\.pt holds model 'tiny'.*does not fit a Linear"):
        load_checkpoint(tmp_path / "last.pt", nn.Linear(3, 2))


class _RunsCode:
    """Pickles into a call that writes a marker file (what a malicious .pth can do with weights_only=True)."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_not_executed(tmp_path):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": _RunsCode(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt holds pickled objects a weights-only load refuses"):
        load_checkpoint(evil)
    assert not marker.exists()


def test_empty_validation_split_fails_before_training(tmp_path):
    train, _ = loaders()
    empty = DataLoader(BrightnessSet(0, seed=2), batch_size=8)
    calls = {"n": 0}

    def counting(pred, target):
        calls["n"] += 1
        return EMDLoss(r=2)(pred, target)

    with pytest.raises(ValueError, match="empty validation split"):
        fit(make_model(), counting, train, empty, config(tmp_path))
    with pytest.raises(ValueError, match="empty validation split"):
        fit_or_load(make_model(), counting, train, empty, config(tmp_path))
    assert calls["n"] == 0 and not (tmp_path / "last.pt").exists()


def test_max_steps_caps_the_whole_run_and_the_steps_match_an_uncapped_run(tmp_path):
    """6 batches per epoch, 4 epochs: a cap of 8 steps ends after step 8 (epoch 2, 2 of its batches), finished, and
    those 8 steps are the uncapped run's first 8 (same lr schedule, same batches); the cap is in the config hash."""
    train, val = loaders()  # 48 images in batches of 8: 6 steps per epoch
    capped = fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path / "capped", max_steps=8))
    assert [e["step"] for e in capped["epochs"]] == [6, 8] and capped["finished"]
    assert json.loads((tmp_path / "capped" / "history.json").read_text())["finished"]
    first_two = fit(make_model(), EMDLoss(r=2), train, val, config(tmp_path / "full", max_steps=None))["epochs"][:2]
    assert capped["epochs"][0]["train_loss"] == first_two[0]["train_loss"]
    assert capped["epochs"][0]["lr"] == first_two[0]["lr"]  # the schedule keeps the uncapped run's length
    assert capped["epochs"][1]["train_loss"] != first_two[1]["train_loss"]  # 2 of epoch 2's 6 batches only
    one = fit(make_model(), EMDLoss(r=2), train, val, config(None, out_dir=None, max_steps=2, max_steps_per_epoch=4))
    assert [e["step"] for e in one["epochs"]] == [2] and one["finished"]
    model = make_model()
    assert config_hash(model, EMDLoss(r=2), train, val, config(tmp_path, max_steps=2)) != config_hash(
        model, EMDLoss(r=2), train, val, config(tmp_path))
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        FitConfig(max_steps=0)


def test_fit_steps_max_steps_caps_the_steps_and_keys_the_run(tmp_path):
    from iaa_lib.training import fit_steps

    _, history = fit_steps(*_step_run(), steps=6, out_dir=tmp_path / "capped", settings={"lr": 0.1}, max_steps=2)
    _, uncapped = fit_steps(*_step_run(), steps=6, settings={"lr": 0.1})
    assert history["steps"] == 2 and history["loss"] == uncapped["loss"][:2]
    assert history["config_hash"] != uncapped["config_hash"] and history["settings"]["max_steps"] == 2
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        fit_steps(*_step_run(), steps=6, max_steps=0)
