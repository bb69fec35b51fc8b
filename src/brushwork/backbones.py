"""Feature extractors that own their preprocessing and their layer names.

Every backbone takes the composite image in one space, the d2l book's
ImageNet mean/std-normalized RGB, and applies its own input transform inside
``forward``. That way ``lr=0.01`` and the TV weight mean what they mean in the
book whatever network runs underneath.

Layers are named ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``;
nothing outside this module refers to a layer by index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from brushwork import weights as wts
from brushwork.errors import ConfigError, WeightsError
from brushwork.pixels import IMAGENET_MEAN, IMAGENET_STD

#: Caffe VGG mean pixel in BGR order, for 0..255 input.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class BackboneSpec:
    """Static description of a backbone: architecture, input space, layer names.

    ``input_space`` also sets the scale of the features, and with it the
    calibrated loss weights (:func:`brushwork.balance.calibrated_weights`).
    """

    name: str
    blocks: tuple[int, ...]  # convs per block
    channels: tuple[int, ...]  # output channels per block
    input_space: str  # "caffe-bgr-255" or "imagenet-rgb-normalized"
    content_layers: tuple[str, ...]
    source: str

    def layer_names(self) -> list[str]:
        names: list[str] = []
        for b, n in enumerate(self.blocks, start=1):
            for i in range(1, n + 1):
                names += [f"conv{b}_{i}", f"relu{b}_{i}"]
            names.append(f"pool{b}")
        return names

    def conv_names(self) -> list[str]:
        return [n for n in self.layer_names() if n.startswith("conv")]

    def pools_before(self, name: str) -> int:
        """How many 2x2 poolings come before layer ``name``'s output (pool{b} included)."""
        block = int(name.removeprefix("conv").removeprefix("relu").removeprefix("pool")[0])
        return block if name.startswith("pool") else block - 1

    def feature_size(self, name: str, h: int, w: int) -> tuple[int, int]:
        """Spatial size of layer ``name``'s output for an (h, w) input (2x2 pools floor)."""
        for _ in range(self.pools_before(name)):
            h, w = h // 2, w // 2
        return h, w

    def book_index_to_name(self, index: int) -> str:
        """Map an index into torchvision's ``vgg.features`` (the book's numbers) to a name."""
        names = self.layer_names()
        if not 0 <= index < len(names):
            raise ConfigError(f"{self.name} has no layer at index {index}")
        return names[index]


SPECS: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        name="vgg16",
        blocks=(2, 2, 3, 3, 3),
        channels=(64, 128, 256, 512, 512),
        input_space="caffe-bgr-255",
        content_layers=("conv4_3",),
        source=f"ImageNet VGG-16 (Oxford/Caffe via Keras) from PyPI "
        f"{wts.ONNX_DIST}=={wts.ONNX_DIST_VERSION}, converted once to the brushwork cache",
    ),
    "vgg19": BackboneSpec(
        name="vgg19",
        blocks=(2, 2, 4, 4, 4),
        channels=(64, 128, 256, 512, 512),
        input_space="imagenet-rgb-normalized",
        content_layers=("conv4_4",),
        source=f"torchvision {wts.TORCHVISION_FILES['vgg19'].url} (or a local weights file)",
    ),
}


def get_spec(name: str) -> BackboneSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r} (choose from {', '.join(SPECS)})") from None


class VGGFeatures(nn.Module):
    """A VGG trunk truncated after its deepest requested layer, frozen.

    ``forward(x, layers)`` takes x: (b, 3, h, w) ImageNet-normalized RGB, applies
    the backbone's own input transform, and returns a dict of the requested
    layers' activations, in the network's compute dtype and memory layout.
    """

    in_scale: Tensor
    in_shift: Tensor

    def __init__(
        self,
        spec: BackboneSpec,
        state: dict[str, Tensor],
        *,
        last_layer: str,
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.spec = spec
        names = spec.layer_names()
        if last_layer not in names:
            raise ConfigError(f"{spec.name} has no layer '{last_layer}'")
        self.names = names[: names.index(last_layer) + 1]
        self.pooling = pooling
        self.convs = nn.ModuleDict()
        in_ch = 3
        for b, (n, out_ch) in enumerate(zip(spec.blocks, spec.channels, strict=True), start=1):
            for i in range(1, n + 1):
                name = f"conv{b}_{i}"
                if name in self.names:
                    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
                    with torch.no_grad():
                        conv.weight.copy_(_expect(state, f"{name}.weight", conv.weight.shape))
                        bias = conv.bias
                        assert bias is not None
                        bias.copy_(_expect(state, f"{name}.bias", bias.shape))
                    self.convs[name] = conv
                in_ch = out_ch
        self.requires_grad_(False)
        self.eval()
        if spec.input_space == "caffe-bgr-255":
            # x_norm -> rgb01 = x*std + mean -> bgr255 - caffe_mean, as one affine map
            # per channel after the RGB->BGR flip.
            std = torch.tensor(IMAGENET_STD[::-1]) * 255.0
            shift = torch.tensor(IMAGENET_MEAN[::-1]) * 255.0 - torch.tensor(CAFFE_MEAN_BGR)
            self.register_buffer("in_scale", std.view(1, 3, 1, 1))
            self.register_buffer("in_shift", shift.view(1, 3, 1, 1))
            self.flip = True
        else:
            self.register_buffer("in_scale", torch.ones(1, 3, 1, 1))
            self.register_buffer("in_shift", torch.zeros(1, 3, 1, 1))
            self.flip = False

    def _weight_dtype(self) -> torch.dtype:
        conv = next(iter(self.convs.values()))
        assert isinstance(conv, nn.Conv2d)
        return conv.weight.dtype

    def network_input(self, x: Tensor) -> Tensor:
        """The backbone's own input transform of normalized RGB x."""
        if self.flip:
            x = x.flip(1)
        return x * self.in_scale.float() + self.in_shift.float()

    def forward(self, x: Tensor, layers: Iterable[str]) -> dict[str, Tensor]:
        wanted = set(layers)
        missing = wanted - set(self.names)
        if missing:
            raise ConfigError(f"layers not in this truncated {self.spec.name}: {sorted(missing)}")
        out: dict[str, Tensor] = {}
        # The input transform runs in fp32 (Caffe input spans 0..255, too wide for bf16's
        # 8-bit mantissa to keep sub-level detail), then the network's dtype takes over.
        dtype = self.in_scale.dtype if not self.convs else self._weight_dtype()
        h = self.network_input(x.float()).to(dtype)
        deferred = False  # a block's last ReLU, moved past the max-pool after it
        for i, name in enumerate(self.names):
            if not wanted:
                break
            if name.startswith("conv"):
                h = self.convs[name](h)
            elif name.startswith("relu"):
                if self._relu_commutes(i, wanted):
                    deferred = True
                    continue
                h = F.relu(h)
            else:
                h = F.max_pool2d(h, 2) if self.pooling == "max" else F.avg_pool2d(h, 2)
                if deferred:
                    h = F.relu(h)
                    deferred = False
            if name in wanted:
                out[name] = h
                wanted.discard(name)
        return out

    def _relu_commutes(self, i: int, wanted: set[str]) -> bool:
        """Whether the ReLU at ``self.names[i]`` may run after the max-pool that follows it.

        ReLU is monotone, so relu(maxpool(h)) = maxpool(relu(h)), and the gradients
        agree too (the pool picks the same element; both pass nothing where the max is
        <= 0). Pooling first runs the ReLU, forward and backward, on a quarter of the
        values: bit-identical results, about 4 % of a 512 px iteration (RESULTS.md).
        Not when the ReLU's own output is asked for, nor with average pooling.
        """
        nxt = i + 1
        return (
            self.pooling == "max"
            and self.names[i] not in wanted
            and nxt < len(self.names)
            and self.names[nxt].startswith("pool")
        )


def _expect(state: dict[str, Tensor], key: str, shape: torch.Size) -> Tensor:
    if key not in state:
        raise WeightsError(f"weights have no tensor '{key}'")
    t = state[key]
    if tuple(t.shape) != tuple(shape):
        raise WeightsError(
            f"weights tensor '{key}' has shape {tuple(t.shape)}, expected {tuple(shape)}"
        )
    return t


def torchvision_to_named(spec: BackboneSpec, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map torchvision's ``features.{index}.weight`` keys to our layer names.

    Files already keyed by our names (``conv1_1.weight``) pass through.
    """
    if any(k.startswith("conv1_1.") for k in state):
        return dict(state)
    pairs = [(f"features.{spec.layer_names().index(n)}", n) for n in spec.conv_names()]
    return wts.layer_tensors(state, pairs)


@dataclass(frozen=True)
class LoadedWeights:
    spec: BackboneSpec
    state: dict[str, Tensor]
    fingerprint: str
    origin: str


def load_weights(model: str, weights: str | Path | None = None) -> LoadedWeights:
    """Load a backbone's weights from its default source or a local file.

    ``vgg16`` takes the Caffe weights (default) or, given a torchvision
    ``.pth`` file, torchvision's VGG-16, which then runs in torchvision's input
    space (and so with the book's loss weights).
    """
    spec = get_spec(model)
    path = Path(weights).expanduser() if weights is not None else None
    if model == "vgg16" and path is None:
        state, digest = wts.load_vgg16_caffe(spec.conv_names())
        return LoadedWeights(spec, state, digest, str(wts.vgg16_cache_path()))
    if model == "vgg16" and path is not None and path.suffix == ".safetensors":
        # A local copy of our own cache format (Caffe weights, our names).
        state = wts.read_state_dict(path)
        return LoadedWeights(spec, state, wts.verify_vgg16(state, str(path)), str(path))
    if model == "vgg16":
        spec = dataclasses.replace(
            spec,
            input_space="imagenet-rgb-normalized",
            source=f"torchvision {wts.TORCHVISION_FILES['vgg16'].url}",
        )
    state, digest, origin = wts.torchvision_weights(model, path)
    return LoadedWeights(spec, torchvision_to_named(spec, state), digest, origin)


def build_backbone(
    model: str,
    *,
    layers: Iterable[str],
    weights: str | Path | None = None,
    pooling: str = "max",
) -> tuple[VGGFeatures, LoadedWeights]:
    """Build the truncated feature extractor for ``layers`` with frozen weights."""
    spec = get_spec(model)
    names = spec.layer_names()
    layers = list(layers)
    check_layers(spec, layers)
    if pooling not in ("max", "avg"):
        raise ConfigError(f"unknown pooling {pooling!r} (choose from max, avg)")
    loaded = load_weights(model, weights)
    last = max(layers, key=names.index)
    return VGGFeatures(loaded.spec, loaded.state, last_layer=last, pooling=pooling), loaded


def check_layers(spec: BackboneSpec, layers: Iterable[str]) -> None:
    names = spec.layer_names()
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise ConfigError(
            f"unknown layer(s) for {spec.name}: {', '.join(unknown)} "
            f"(valid: {names[0]} … {names[-1]}, e.g. conv4_2, relu3_1, pool2)"
        )
