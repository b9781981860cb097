"""cyclestyle: unpaired image-to-image translation with CycleGAN and CUT, beside neural style
transfer (Gatys et al.; Johnson et al.'s fast networks).

The Python API is the library functions the ``cyclestyle`` commands call, importable from here::

    from cyclestyle import evaluate, load_config, make_toy_dataset, open_run, train, translate_image

    make_toy_dataset("data/toy")
    run_dir = train(load_config("configs/tiny.yaml", ["data.root=data/toy", "output_dir=runs/tiny"]))
    run = open_run(run_dir)
    zebra = translate_image(run.generator("AtoB"), horse)        # a PIL image, any size
    print(evaluate(run, "data/toy", "eval/tiny").directions["AtoB"].values)

(``docs/python.md`` walks through it.) The names are imported when first used (PEP 562), so
``import cyclestyle`` and ``cyclestyle --help`` do not load torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# name -> (module, attribute): the one place the API's names are found
_API: dict[str, tuple[str, str]] = {
    # configuration and training
    "load_config": ("cyclestyle.training.configure", "load_config"),
    "train": ("cyclestyle.training.loop", "train"),
    # a trained translator: open it, translate with it
    "open_run": ("cyclestyle.inference.run", "open_run"),
    "translate_image": ("cyclestyle.inference.translate", "translate_image"),
    "translate_files": ("cyclestyle.inference.files", "translate_files"),
    # measuring
    "evaluate": ("cyclestyle.evaluation.evaluate", "evaluate"),
    "compare": ("cyclestyle.evaluation.compare", "run_comparison"),
    # neural style transfer by optimisation (Gatys et al.)
    "GatysConfig": ("cyclestyle.style.gatys", "GatysConfig"),
    "load_vgg19": ("cyclestyle.style.gatys", "load_vgg19"),
    "stylize": ("cyclestyle.style.gatys", "stylize"),
    "stylize_files": ("cyclestyle.style.gatys", "stylize_files"),
    # models in and out
    "export_translator": ("cyclestyle.export.translator", "export_translator"),
    "import_official": ("cyclestyle.interop.official", "import_official"),
    "download_pretrained": ("cyclestyle.interop.pretrained", "download_pretrained"),
    "get_dataset": ("cyclestyle.interop.datasets", "get_dataset"),
    "build_hub_folder": ("cyclestyle.export.hub", "build_hub_folder"),
    "push": ("cyclestyle.export.hub", "push"),
    "push_space": ("cyclestyle.export.hub", "push_space"),
    # the web app (the [app] extra)
    "serve": ("cyclestyle.app.web", "serve"),
    # data and the demo
    "make_toy_dataset": ("cyclestyle.demo.toy", "make_toy_dataset"),
    "run_demo": ("cyclestyle.demo.run", "run_demo"),
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _API[name]
    except KeyError:
        raise AttributeError(f"module 'cyclestyle' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
