"""A trained run as a Hugging Face Hub repository: the folder ``cyclestyle push`` uploads (its
layout: ``inference/hub.py``, which reads it back), with a model card, and the upload itself.

The folder also holds ``app.py`` and ``requirements.txt``, and its README's header the keys a Space
reads (``sdk: gradio``, ``sdk_version``, ``app_file: app.py``): the same folder, uploaded as a
Hugging Face Space, serves the web app of ``cyclestyle serve`` (``app/web.py``) on its own
generators. ``open_run`` never fetches ``app.py`` (``HUB_PATTERNS``): it is for the Space alone."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..app import GRADIO_VERSION
from ..config import Config, dump_config
from ..files import check_output
from ..inference.hub import GENERATOR_OF, LIBRARY, WEIGHTS, HubError, first_line
from ..inference.run import TrainedRun
from ..models.weights import load_weights, read_metadata, save_weights, unusable_tensor
from ..run_folder import LOG, find_config


# What the hub takes as a license id (its model cards' ``license:``): "mit", "apache-2.0", "cc-by-nc-4.0", "openrail++".
LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if the hub would take it as a model repository's name (``huggingface_hub``'s own
    validator, ASCII only), else a ``HubError`` showing it cut short, so that a hostile id
    (``../../x``, ``a/b/c``, a newline, 5,000 characters) never reaches a path or the model card."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    shown = repr(repo_id[:60]) + ("…" if len(repo_id) > 60 else "")
    try:
        validate_repo_id(repo_id)
        if not repo_id.isascii():
            raise HFValidationError("not ASCII")
    except HFValidationError:
        raise HubError(f"--repo-id {shown} is not a hub repository id: NAME or USER/NAME, each of 1 to 96 ASCII "
                       "letters, digits, '-', '_' or '.', not starting or ending with '-' or '.', without '--' or "
                       "'..'") from None
    return repo_id


def check_license(license: str) -> str:
    """``license`` if it reads as a hub license id (lower case letters, digits, '.', '+', '-')."""
    if not LICENSE_ID.fullmatch(license):
        shown = repr(license[:60]) + ("…" if len(license) > 60 else "")
        raise HubError(f"--license {shown} is not a license id such as mit, apache-2.0 or cc-by-nc-4.0 (lower case "
                       "letters, digits, '.', '+' and '-')")
    return license


def build_hub_folder(run: TrainedRun, folder: str | Path, repo_id: str, license: str = "mit") -> Path:
    """Write ``folder`` (see the module docstring) from a trained run (``open_run``); ``repo_id``
    names it in the model card. ``push`` uploads it. The folder is built under a temporary name
    beside it and renamed into place when whole: a generator that fails to load leaves nothing
    behind, and the same command can be run again."""
    folder = Path(folder)
    check_repo_id(repo_id)
    check_license(license)
    check_output(folder, folder=True, what="--folder", error=HubError)
    if folder.exists() and any(folder.iterdir()):
        raise HubError(f"--folder {folder} exists and is not empty")
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(building, ignore_errors=True)  # a process of this pid that was killed
    building.mkdir()
    try:
        _write_hub_folder(run, building, repo_id, license)
        if folder.exists():
            folder.rmdir()  # empty, checked above
        os.replace(building, folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def _write_hub_folder(run: TrainedRun, folder: Path, repo_id: str, license: str) -> None:
    networks = {}
    # A lone generator file stands for both directions in open_run; shared, it is one direction.
    directions = ["AtoB"] if len(set(run.files.values())) == 1 else list(run.files)
    for direction in directions:
        source, spec = run.file(direction), run.translator(direction).spec
        (folder / direction).mkdir()
        # Rewritten with the network's description in its metadata: a cyclestyle 0.1 file only has
        # the run's config, and its direction came from its name (G_B), which model.safetensors loses.
        metadata = read_metadata(source) | {"cyclestyle.network": spec.to_json()}
        state = load_weights(source)
        problem = unusable_tensor(state)  # what translate would refuse is not shared either
        if problem:
            raise HubError(f"{source}: {problem}")
        save_weights(folder / direction / WEIGHTS, state, metadata)
        networks[direction] = asdict(spec)
        (folder / direction / "config.json").write_text(json.dumps(networks[direction], indent=2) + "\n")
    step = run.step
    top = {"library_name": LIBRARY, "directions": {d: f"{d}/{WEIGHTS}" for d in networks}, "step": step,
           "networks": networks}
    if run.config is not None:
        top["model"] = asdict(run.config.model)
        (folder / "config.yaml").write_text(dump_config(run.config))
    (folder / "config.json").write_text(json.dumps(top, indent=2) + "\n")
    evaluation = evaluation_of(run_folder(run), step)
    (folder / "README.md").write_text(model_card(repo_id, run.config, networks, step, evaluation, license))
    (folder / "app.py").write_text(space_app(repo_id))
    (folder / "requirements.txt").write_text(space_requirements())


# The extras a Space installs: the web app's (Gradio), and PyAV for its Video tab, which without
# it answers every clip with the install line.
SPACE_EXTRAS = ("app", "video")
SPACE_PACKAGE = f"{LIBRARY}[{','.join(SPACE_EXTRAS)}]"


def space_requirements() -> str:
    """What a Space installs beside Gradio: this cyclestyle (the installed version), with the
    extras of the web app and its Video tab (``SPACE_EXTRAS``)."""
    try:
        return f"{SPACE_PACKAGE}=={version(LIBRARY)}\n"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return f"{SPACE_PACKAGE}\n"


def space_app(repo_id: str) -> str:
    """The ``app.py`` of the folder: the web app on the generators beside it. ``python app.py``
    serves it locally; a Space runs it (and sets ``GRADIO_SERVER_NAME`` for its network)."""
    return (f'''"""{repo_id} as a web app: drop an image, pick a direction, download the translation.

Written by `cyclestyle push`. A Hugging Face Space runs it (README.md: sdk gradio, app_file app.py);
`python app.py` serves it on this machine (pip install "{SPACE_PACKAGE}" first).
"""

from pathlib import Path

from cyclestyle.app.translators import open_translators
from cyclestyle.app.web import build_app, launch

HERE = Path(__file__).resolve().parent
demo = build_app(open_translators([HERE], names=[{repo_id!r}]), title={repo_id!r})

if __name__ == "__main__":
    launch(demo)
''')


def run_folder(run: TrainedRun) -> Path | None:
    """The training run's folder (the one with ``config.yaml``) above the generator files."""
    config = find_config(next(iter(run.files.values())).parent)
    return None if config is None else config.parent


def evaluation_of(run_dir: Path | None, step: int | None) -> dict[str, Any] | None:
    """The held-out evaluation of the weights at ``step`` (a checkpoint, the best, the final
    generators) if training made one, else the run's last: ``{"step", "metrics"}`` from
    ``log.jsonl``, where training writes ``{"step": N, "eval": {"AtoB/fid": …}}``; None if none."""
    if run_dir is None or not (run_dir / LOG).is_file():
        return None
    found: dict[Any, dict[str, Any]] = {}  # by step; a step evaluated again after a resume: the later
    for line in (run_dir / LOG).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if isinstance(record, dict) and isinstance(record.get("eval"), dict):
            found.pop(record.get("step"), None)
            found[record.get("step")] = {"step": record.get("step"), "metrics": record["eval"]}
    if not found:
        return None
    return found.get(step) or list(found.values())[-1]


def model_card(repo_id: str, cfg: Config | None, networks: dict[str, dict], step: int | None,
               evaluation: dict[str, Any] | None, license: str) -> str:
    """The README.md of the repository: what the model is, how it was trained and how it scored."""
    from huggingface_hub import ModelCardData

    # The model card's keys, then a Space's (huggingface.co/docs/hub/spaces-config-reference), so
    # that the same folder is a model repository and, uploaded as one, a Gradio Space.
    header = ModelCardData(license=license, library_name=LIBRARY, pipeline_tag="image-to-image",
                           tags=["cyclegan", "unpaired-image-to-image-translation", "image-to-image"],
                           title=repo_id.split("/")[-1], sdk="gradio", sdk_version=GRADIO_VERSION,
                           python_version="3.11", app_file="app.py", pinned=False)
    parts = [f"---\n{header.to_yaml()}\n---\n", f"# {repo_id.split('/')[-1]}\n",
             "A CycleGAN translator (Zhu, Park, Isola and Efros, ICCV 2017) trained with cyclestyle: two "
             "generators between an image domain A and a domain B, trained on unpaired images.\n",
             _usage(repo_id), _app(repo_id), _files(networks), _training(cfg, step), _evaluation(cfg, evaluation, step),
             _limitations(),
             f"## License\n\n{license}; the licenses of the training images may add their own terms.\n"]
    return "\n".join(parts)


def _usage(repo_id: str) -> str:
    return ("## Use\n\nWith cyclestyle installed:\n\n```bash\n"
            f"cyclestyle translate --weights hf://{repo_id} --direction AtoB --output out/ my_photos/\n"
            f"cyclestyle export --weights hf://{repo_id} --direction AtoB --format onnx --output AtoB.onnx\n```\n\n"
            "```python\nfrom cyclestyle.inference.run import open_run\nfrom cyclestyle.data import load_image\n\n"
            f'run = open_run("hf://{repo_id}")\nrun.translate(load_image("photo.jpg"), "AtoB").save("out.png")\n```\n')


def _app(repo_id: str) -> str:
    return ("## Web app\n\n`app.py` is a web page (Gradio) where you drop an image and download its translation: "
            f"`cyclestyle serve hf://{repo_id}` or `python app.py` serves it on your machine, and this folder "
            "uploaded as a Hugging Face Space (`sdk: gradio` above) serves it there. The Space installs "
            f"`requirements.txt` (`{space_requirements().strip()}`).\n")


def _files(networks: dict[str, dict]) -> str:
    rows = []
    for direction, spec in networks.items():
        generator, source, target = GENERATOR_OF[direction]
        arguments = ", ".join(f"{k} {v}" for k, v in spec["arguments"].items())
        rows.append(f"| `{direction}/{WEIGHTS}` | {generator}: domain {source} → {target} | {spec['name']} "
                    f"({arguments}), {spec['in_channels']} → {spec['out_channels']} channels |")
    return ("## Files\n\n| file | network | architecture |\n|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "Inputs are N×C×H×W float tensors in [-1, 1] (8-bit pixel / 127.5 − 1) with height and width "
            "multiples of the generator's size multiple; outputs are in [-1, 1].\n")


def _training(cfg: Config | None, step: int | None) -> str:
    if cfg is None:
        return f"## Training\n\nSteps: {step if step is not None else 'not recorded'}. The run's config was not "\
               "found beside its weights.\n"
    d = cfg.data
    return (f"## Training\n\n- data: {_code(d.root)} ({_text(d.format)}; splits {_text(d.train_split)}/"
            f"{_text(d.test_split)}), preprocess {_text(d.preprocess)}, load size {d.load_size}, crop {d.crop_size}, "
            f"flips {d.flip}\n"
            f"- steps: {step if step is not None else 'not recorded'} (batch {cfg.train.batch_size} per process)\n"
            f"- losses: {cfg.loss.gan_mode}, cycle λ {cfg.loss.lambda_a}/{cfg.loss.lambda_b}, identity "
            f"{cfg.loss.lambda_identity}\n\nThe whole resolved config (`config.yaml`):\n\n"
            f"{_fenced(dump_config(cfg), 'yaml')}")


def _evaluation(cfg: Config | None, evaluation: dict[str, Any] | None, step: int | None) -> str:
    if evaluation is None:
        return ("## Held-out evaluation\n\nNone was recorded during training (`eval.every: 0`). "
                "`cyclestyle evaluate` measures FID, KID, cycle L1 and PSNR/SSIM on a test set.\n")
    protocol = _text(cfg.eval.fid_protocol) if cfg is not None else "not recorded"
    count = f"the first {cfg.eval.num_images} held-out images per domain" if cfg and cfg.eval.num_images else \
        "every held-out image"
    rows = "\n".join(f"| {_text(key.split('/')[0])} | {_text(key.split('/', 1)[-1])} | {_text(_number(value))} |"
                     for key, value in evaluation["metrics"].items())
    which = "These weights' evaluation" if evaluation["step"] == step else \
        f"The run's last evaluation (the weights are of step {step})"
    return (f"## Held-out evaluation\n\n{which}, at step {_text(evaluation['step'])}, on {count} "
            f"(FID protocol: `{protocol}`; see cyclestyle's docs/evaluation.md, \"FID protocols\", for which published "
            "tables it is comparable with; FID and KID are absent when the Inception weights were not on the "
            "training machine):\n\n| direction | metric | value |\n|---|---|---|\n" + rows + "\n")


# What a run's files (its config, its log) put in the card is text, never markup: a data folder
# named `<script>` or a metric named "x | y" shows as written, and cannot end a code block.


def _text(value: Any) -> str:
    """``value`` as plain text on one line of markdown: HTML escaped, and the characters that open
    code, links, images, emphasis or a table cell (an underscore inside a word, as in cycle_l1,
    opens nothing and stays as written)."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return re.sub(r"([\\`*\[\]!|~])", r"\\\1", text)


def _code(value: Any) -> str:
    """``value`` as inline code on one line, between more backticks than it holds in a row."""
    text = " ".join(str(value).split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks} {text} {ticks}"


def _fenced(text: str, language: str) -> str:
    """``text`` as a fenced code block whose fence is longer than any run of backticks in it."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{language}\n{text}{'' if text.endswith(chr(10)) else chr(10)}{fence}\n"


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _limitations() -> str:
    return ("## Intended use and limitations\n\nFor translating images that look like the training domain "
            "(same kind of scene, similar size): research, art and data augmentation. CycleGAN changes colour "
            "and texture well and geometry poorly; on images far from its training data it fails silently, "
            "and it reproduces the biases of its training images. Its outputs are synthetic images: do not "
            "present them as real photographs.\n")


# --------------------------------------------------------------------------------------------
# Pushing


def push(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Create the hub repository ``repo_id`` (if needed) and upload ``folder``, one that
    ``build_hub_folder`` built; returns the repository's URL. Needs a hub token
    (``huggingface-cli login``, or ``HF_TOKEN``)."""
    return _upload(folder, repo_id, "model", private)


def push_space(folder: str | Path, space: str, private: bool = False) -> str:
    """Upload the same ``folder`` to the Gradio Space ``space`` (created if needed), where its
    ``app.py`` serves the web app on the folder's generators; returns the Space's URL."""
    return _upload(folder, space, "space", private)


def _upload(folder: str | Path, repo_id: str, kind: str, private: bool) -> str:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    api = HfApi(library_name=LIBRARY)
    try:
        extra = {"space_sdk": "gradio"} if kind == "space" else {}
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=kind, **extra)
        api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=kind,
                          commit_message="Upload cyclestyle translator")
    except HfHubHTTPError as e:
        raise HubError(f"push to {repo_id}: {first_line(e)}") from None
    except OSError as e:
        raise HubError(f"push to {repo_id}: cannot reach the hub ({first_line(e)})") from None
    return str(url)
