"""A new held-out metric is one registration: it reaches metrics.json, the report and eval.metric."""

import json
import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from cyclestyle.config import ConfigError, ModelConfig
from cyclestyle.data import FolderSource, image_to_tensor, load_image
from cyclestyle.evaluation import compare, registry
from cyclestyle.evaluation.evaluate import evaluate_translators, is_better, score, write_report
from cyclestyle.models import build_generator


def brightness_difference(translated: torch.Tensor, truth: torch.Tensor) -> float:
    """|mean brightness of the translation − that of the true translation|, on the [0, 1] scale."""
    return float((translated.mean() - truth.mean()).abs())


@pytest.fixture
def brightness():
    """The test's own metric, registered for one test only."""
    metric = registry.register(registry.Metric(
        name="brightness", better="min", needs="truth", compute=brightness_difference, label="brightness Δ",
        description="difference of mean brightness to the true translation"))
    yield metric
    registry.unregister(metric.name)


def unit(path):
    return (image_to_tensor(load_image(path)).unsqueeze(0) + 1) / 2


def test_a_registered_metric_flows_into_metrics_json_the_report_and_eval_metric(
        brightness, toy_root, tmp_path, tiny_config):
    torch.manual_seed(0)
    g_a, g_b = (build_generator(ModelConfig(ngf=8, n_blocks=1), reverse=r).eval() for r in (False, True))
    truth = tmp_path / "truth" / "AtoB"  # true A→B translations for 3 of the 4 held-out images
    truth.mkdir(parents=True)
    for p in sorted((toy_root / "testB").glob("*.png"))[:3]:
        Image.open(p).save(truth / p.name)
    out = tmp_path / "eval"
    result = evaluate_translators(g_a, g_b, FolderSource(toy_root / "testA"), FolderSource(toy_root / "testB"),
                                  output=out, size=32, truth_dir=tmp_path / "truth", progress=False)
    write_report(result, out, "test")

    data = json.loads((out / "metrics.json").read_text())
    assert list(data["AtoB"]) == ["n", "fid", "kid", "kid_std", "cycle_l1", "psnr", "ssim", "brightness"]
    assert data["BtoA"]["brightness"] is None  # no truth for B→A
    # Its value is its function's, averaged over the images with a truth (checked on the 8-bit files).
    written = [brightness_difference(unit(out / "images" / "AtoB" / "translated" / f"{p.stem}.png"),
                                     unit(out / "images" / "AtoB" / "truth" / f"{p.stem}.png"))
               for p in sorted(truth.iterdir())]
    assert data["AtoB"]["brightness"] == pytest.approx(sum(written) / 3, abs=1e-7)
    assert score(result, "brightness") == data["AtoB"]["brightness"]
    assert is_better(0.1, 0.2, "brightness") and not is_better(0.2, 0.1, "AtoB/brightness")

    page = (out / "index.html").read_text()
    table = page[page.index("<table"):page.index("</table>")]
    assert "<th>brightness Δ</th>" in table
    assert re.search(rf"<td>{data['AtoB']['brightness']:.4g}</td>", table)

    # eval.metric takes it, and knows that it needs the truth.
    with pytest.raises(ConfigError, match="eval.metric brightness needs eval.paired_truth"):
        tiny_config("eval.metric=brightness")
    assert tiny_config("eval.metric=AtoB/brightness", f"eval.paired_truth={tmp_path / 'truth'}").eval.metric
    with pytest.raises(ConfigError, match="one of fid, kid, cycle_l1, psnr, ssim, brightness,"):
        tiny_config("eval.metric=sharpness")

    # compare measures it too (it needs no reconstruction).
    assert brightness in compare.quality_metrics() and "fid/kid/psnr/ssim/brightness" in compare.measures()


def test_a_metric_cannot_take_a_name_in_use():
    with pytest.raises(ValueError, match="kid_std already used"):
        registry.register(registry.Metric(name="kid_std", better="min", needs="features",
                                          compute=lambda real, fake: 0.0, label="x", description="x"))
    assert [m.name for m in registry.registered()] == ["fid", "kid", "cycle_l1", "psnr", "ssim"]


def test_config_validates_metrics_without_importing_torch():
    """Importing the config module must not pay for torch (--help answers at once): the metric
    registry is read torch-free, and the architectures are imported only to validate a config."""
    code = "import sys, cyclestyle.config; assert 'torch' not in sys.modules, 'config imported torch'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
