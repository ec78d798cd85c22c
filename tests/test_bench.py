"""Benchmark of the models: FLOP and parameter counts against hand-computed and published numbers, example
inputs, a tiny run's table, clear errors, the `bench` command and the comparison notebook's recorded numbers."""
from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
import torch
from torch import nn

from iaa_lib.book.cli import main
from iaa_lib.book.provenance import git_commit, results_provenance
from iaa_lib.training.evaluation import split_output
from iaa_lib.book.bench import (BENCHMARKED, COLUMNS, bench_spec, count_parameters, forward_flops, meta_flops_per_image,
                           resolve_device, run_benchmarks, save_results, time_steps, training_step)

torch.set_num_threads(1)  # the 2 shared CPU cores
CPU = torch.device("cpu")


def test_linear_flops_are_two_per_multiply_add():
    batch, n_in, n_out = 3, 5, 7
    assert forward_flops(nn.Linear(n_in, n_out), {"input": torch.randn(batch, n_in)}) == 2 * batch * n_in * n_out


def test_conv_flops_by_hand():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    # every one of the 8·16·16 outputs is a sum of 3·3·3 products
    assert forward_flops(conv, {"input": torch.randn(1, 3, 16, 16)}) == 2 * (8 * 16 * 16) * (3 * 3 * 3)


def test_meta_flops_match_a_real_forward_of_one_image():
    spec = bench_spec("milnet")
    model = spec.build("smoke")
    real = forward_flops(model, spec.make_inputs(model, 1, CPU))
    assert meta_flops_per_image(model, spec) == real > 0


@pytest.mark.parametrize("name, expected", [
    ("eat", 86_878_166),  # EAT-base with the 10-output head (iaa_lib.eat.model)
    ("milnet", 9_526_804 - (2560 * 10 + 10)),  # official RsgcnModel minus its unused gcn_fc
    ("ssmr", 26_296_321 + 6),  # MRGR head on 1024-d features + the 6 edge-prior weights of "add"
    ("cdcm", 26_303_008 + 1_574_400 - 525_312),  # spec: MMDF + memory - the unused FeatureInforEncoder
    # torchvision inception_v3 27,161,264 - AuxLogits 3,326,696 - fc 2,049,000, + NIMA's Linear(2048, 10)
    ("nima", 27_161_264 - 3_326_696 - 2_049_000 + 2048 * 10 + 10),
])
def test_full_parameter_counts(name, expected):
    with torch.device("meta"):  # no memory, no initialisation cost
        model = bench_spec(name).build("full")
    assert count_parameters(model) == (expected, expected)


def test_cgiaa_full_parameter_count():
    model = bench_spec("cgiaa").build("full")
    map_head = (768 + 4 * 512) * 512 + 512 + 512 * 10 + 10
    assert count_parameters(model)[0] == 149_620_737 + map_head  # open_clip ViT-B-16 + MAP head


@pytest.mark.parametrize("name", list(BENCHMARKED))
def test_example_inputs_give_predictions_and_a_training_step(name):
    spec = bench_spec(name)
    torch.manual_seed(0)
    model = spec.build("smoke")
    inputs = spec.make_inputs(model, 2, CPU)
    with torch.no_grad():
        pred, _ = split_output(model.eval()(**inputs))
    assert pred.shape == ((2,) if name == "ssmr" else (2, 10))
    before = [p.detach().clone() for p in model.parameters()]
    training_step(model, inputs, CPU, "fp32")()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_time_steps_excludes_warmup():
    calls = []
    seconds = time_steps(lambda: calls.append(1), steps=3, warmup=2, device=CPU)
    assert len(calls) == 5 and len(seconds) == 3 and all(s >= 0 for s in seconds)


def test_tiny_benchmark_table(tmp_path):
    frame = run_benchmarks(["milnet"], device="cpu", batch_size=2, steps=1, warmup=0, threads=1, config="smoke")
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["mode"]) == ["infer", "train"] and set(frame["mem_kind"]) == {"cpu_rss"}
    assert all(math.isfinite(v) and v > 0 for v in frame["img_per_s"])
    assert (frame["peak_mem_mib"] >= frame["runtime_mem_mib"]).all()
    assert frame["params"].iloc[0] == count_parameters(bench_spec("milnet").build("smoke"))[0]
    assert frame["gflops_per_image"].iloc[0] > 0
    csv_path, md_path = save_results(frame, tmp_path / "bench.csv", "the command")
    assert list(pd.read_csv(csv_path).columns) == list(COLUMNS)
    assert md_path.read_text().startswith("Command: `the command`")
    record = results_provenance(csv_path)
    assert record["command"] == "the command" and record["commit"] == git_commit() and record["finished_utc"]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown model.*'vgg'.*nima, eat, milnet, ssmr, cdcm, cgiaa"):
        run_benchmarks(["vgg"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_names_the_fix():
    with pytest.raises(ValueError, match="cuda.is_available\\(\\) is False.*--device cpu"):
        resolve_device("cuda")


@pytest.mark.parametrize("settings, message", [
    (dict(device="tpu"), "device"), (dict(batch_size=0), "batch_size >= 1"), (dict(steps=0), "steps >= 1"),
    (dict(modes=["eval"]), "mode must be"), (dict(config="huge"), "config must be"),
    (dict(compiled=[True], warmup=0), "warmup >= 1"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        run_benchmarks(["milnet"], **settings)


def test_cli_help():
    result = subprocess.run([sys.executable, "-m", "iaa_lib", "bench", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--batch-size" in result.stdout


def test_cli_bad_arguments_exit_2(capsys):
    assert main(["bench", "--models", "vgg"]) == 2
    assert "benchmarked models: nima" in capsys.readouterr().err
    assert main(["bench", "--device", "cpu", "--steps", "0"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--batch-size", "many"])
    assert exit_info.value.code == 2


def test_cli_writes_csv_markdown_and_plot(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert main(["bench", "--models", "ssmr", "--config", "smoke", "--device", "cpu", "--batch-size", "1",
                 "--steps", "1", "--warmup", "0", "--threads", "1", "--isolate", "model", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame["mem_kind"]) == ["cpu_rss", "cpu_rss_after_infer"]
    assert "--models ssmr" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").stat().st_size > 0
    assert "ssmr" in capsys.readouterr().out


@pytest.mark.notebook
def test_benchmark_notebook_records_every_model(notebook_metrics):
    m = notebook_metrics("notebooks/99_compare/02_benchmark.py")
    for models in (m["models"], m["recorded"]["models"]):
        assert set(models) == set(BENCHMARKED)
        for entry in models.values():
            assert entry["params"] > 0 and entry["gflops_per_image"] > 0
            assert entry["infer_img_per_s"] > 0 and entry["train_img_per_s"] > 0
            assert entry["infer_peak_mem_mib"] > 0 and entry["train_peak_mem_mib"] > 0
        assert models["eat"]["params"] == 86_878_166
    recorded = m["recorded"]["provenance"]  # the committed table's own provenance, not this run's
    assert recorded["commit"] == "cef5d79b1e" and recorded["source"] == "benchmarks/results/models_cpu.csv"
    assert recorded["commit"] != m["provenance"]["commit"]
