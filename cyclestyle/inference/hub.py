"""Trained translators on the Hugging Face Hub, read: the folder a repository holds, and ``hf://`` ids.

A hub folder, as ``huggingface_hub`` conventions expect (one ``model.safetensors`` with a
``config.json`` beside it per network, a ``README.md`` model card at the top):

    README.md                 the model card: training config, data, steps, held-out metrics, use, license
    config.json               library, directions, step, the run's model config
    config.yaml               the run's resolved config (what ``open_run`` reports as ``run.config``)
    AtoB/model.safetensors    G_A (A→B), the run's own file: its metadata rebuilds the network
    AtoB/config.json          that network's architecture, channels and arguments
    BtoA/…                    the same for G_B (B→A)
    app.py, requirements.txt  the web app, for the folder uploaded as a Gradio Space (never fetched here)

``open_run`` takes such a folder, and ``hf://USER/NAME[@REVISION]``, which ``snapshot_download``
resolves into the local hub cache (``HF_HUB_CACHE``; with ``HF_HUB_OFFLINE=1`` from the cache only).
The weights stay this toolkit's safetensors files rather than ``PyTorchModelHubMixin``'s: the mixin
saves one module per folder and drops the metadata that lets a file rebuild its network alone.
Writing such a folder from a run, and pushing it, is ``export/hub.py``'s.
"""

from __future__ import annotations

from pathlib import Path

from ..models.weights import CheckpointError

HUB_PREFIX = "hf://"
WEIGHTS = "model.safetensors"
LIBRARY = "cyclestyle"
HUB_PATTERNS = ["*.safetensors", "*.json", "*.yaml", "*.md"]  # what is fetched: nothing that could be code
GENERATOR_OF = {"AtoB": ("G_A", "A", "B"), "BtoA": ("G_B", "B", "A")}


class HubError(CheckpointError):
    """A hub id that cannot be resolved or a folder that cannot be built; one line why."""


# --------------------------------------------------------------------------------------------
# Reading: hub folders and hf:// ids


def hub_files(folder: Path) -> dict[str, Path]:
    """The generator file of each direction in a hub folder (empty if it is not one)."""
    return {d: folder / d / WEIGHTS for d in GENERATOR_OF if (folder / d / WEIGHTS).is_file()}


def resolve_hub_id(text: str) -> Path:
    """The local folder of ``hf://USER/NAME[@REVISION]``: downloaded into the hub cache, or found
    there (offline). Failures are one line: offline and not cached, unknown repository, no network."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    repo_id, _, revision = text[len(HUB_PREFIX):].partition("@")
    try:
        return Path(snapshot_download(repo_id, revision=revision or None, library_name=LIBRARY,
                                      allow_patterns=HUB_PATTERNS))
    except LocalEntryNotFoundError:
        raise HubError(f"{text}: not in the local hub cache, and the hub cannot be reached (offline, or "
                       "HF_HUB_OFFLINE=1); download it once while online, or pass its folder") from None
    except HFValidationError as e:
        raise HubError(f"{text}: not a hub repository id USER/NAME ({first_line(e)})") from None
    except HfHubHTTPError as e:
        raise HubError(f"{text}: the hub refused: {first_line(e)}") from None
    except OSError as e:  # connection errors of the HTTP client
        raise HubError(f"{text}: cannot reach the hub ({first_line(e)})") from None


def first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
