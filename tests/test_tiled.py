"""The exact tiled objective: the untiled loss and gradient, tile by tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brushwork import stylize
from brushwork.backbones import VGGFeatures, build_backbone, get_spec
from brushwork.balance import resolve_loss_weights
from brushwork.config import StyleConfig
from brushwork.errors import OutOfMemoryError
from brushwork.objective import Objective, StyleSource, Terms
from brushwork.pixels import normalize, resize, rgb_tensor
from brushwork.plan import plan_run
from brushwork.tiled import TiledObjective, receptive_halo, tile_boxes

CONTENT = ("conv4_2",)
STYLE = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def net() -> VGGFeatures:
    model, _ = build_backbone("vgg16", layers=CONTENT + STYLE)
    return model


def _terms(
    rainier: Path, autumn_oak: Path, kind: str, regions: bool, h: int, w: int
) -> tuple[Terms, torch.Tensor]:
    content = normalize(rgb_tensor(resize(Image.open(rainier).convert("RGB"), h, w), CPU))
    style = normalize(rgb_tensor(resize(Image.open(autumn_oak).convert("RGB"), 150, 224), CPU))
    weights = resolve_loss_weights(
        "caffe-bgr-255",
        optimizer="lbfgs",
        style_loss=kind,
        content_weight=None,
        style_weight=None,
        tv_weight=None,
        has_content=True,
        balance="auto",
        strength=1.0,
    )
    if regions:  # left half one style, right half the mirrored one (spatial control)
        left = torch.zeros(1, 1, h, w)
        left[..., : w // 2] = 1
        sources = [
            StyleSource([style], [1.0], left),
            StyleSource([style.flip(-1)], [1.0], 1 - left),
        ]
    else:
        sources = [StyleSource([style, style.flip(-2)], [2.0, 1.0])]
    kw = Terms(
        content=content,
        styles=sources,
        content_layers=CONTENT,
        style_layers=STYLE,
        style_layer_weights=(1.0, 0.5, 1.0, 2.0, 1.0),
        loss_weights=weights,
        style_loss=kind,
        prepare=lambda t: t,
        channels_last=False,
        relative_losses=True,
        generator=torch.Generator().manual_seed(3),
    )
    torch.manual_seed(0)
    return kw, content + 0.3 * torch.randn_like(content)


@pytest.mark.parametrize(
    ("kind", "regions"), [("gram", False), ("meancov", False), ("gram", True), ("meancov", True)]
)
def test_tiled_gradient_is_the_untiled_gradient(
    net: VGGFeatures, rainier: Path, autumn_oak: Path, kind: str, regions: bool
) -> None:
    # 139x185: neither side a multiple of the pooling grid, so the last tiles hold
    # slivers that only some layers see.
    kw, x0 = _terms(rainier, autumn_oak, kind, regions, 139, 185)
    x = x0.clone().requires_grad_(True)
    whole = Objective(net, kw)(x)
    whole.total.backward()  # type: ignore[no-untyped-call]
    g_whole = x.grad
    assert g_whole is not None

    tiled = TiledObjective(net, kw, tile=48)
    assert tiled.tiles(139, 185) == 3 * 4
    for _ in range(2):  # two evaluations: two random shifts of the grid
        x = x0.clone().requires_grad_(True)
        parts = tiled(x)
        assert not parts.total.requires_grad  # the gradient went to x.grad already
        for a, b in zip(parts, whole, strict=True):
            assert float(a) == pytest.approx(float(b.detach()), rel=1e-5)
        assert x.grad is not None
        err = float((x.grad - g_whole).norm() / g_whole.norm())
        assert err < 1e-3, err

    # With a halo narrower than the receptive field, tiles see zero padding where
    # their neighbours are.
    tiled.halo = 16
    x = x0.clone().requires_grad_(True)
    tiled(x)
    assert x.grad is not None
    err = float((x.grad - g_whole).norm() / g_whole.norm())
    assert err > 0.1, err


def test_halo_covers_the_receptive_field() -> None:
    spec = get_spec("vgg16")
    # conv5_1 sees 132 px (radius 66; rounded up to its 16 px pooling grid: 80).
    assert receptive_halo(spec, "conv5_1") == (80, 16)
    # conv4_2: 76 px, 3 poolings (8 px grid): radius 39 -> 40.
    assert receptive_halo(spec, "conv4_2") == (40, 8)
    assert receptive_halo(spec, "conv1_1") == (2, 1)


@pytest.mark.parametrize("offset", [(0, 0), (16, 48), (112, 96)])
def test_tile_interiors_partition_the_image(offset: tuple[int, int]) -> None:
    h, w = 203, 297
    cover = np.zeros((h, w), dtype=int)
    for b in tile_boxes(h, w, 128, 80, offset):
        cover[b.y0 : b.y1, b.x0 : b.x1] += 1
        assert b.hy0 == max(0, b.y0 - 80) and b.hx1 == min(w, b.x1 + 80)
        assert b.y0 % 16 == 0 and b.x0 % 16 == 0  # cuts on the pooling grid
    assert (cover == 1).all()


def test_plan_tiles_what_does_not_fit_and_refuses_what_never_can() -> None:
    cfg = StyleConfig(size=3072, max_memory=5.0)
    plan = plan_run(cfg, content_size=(2048, 1365), device=CPU, dtype=torch.bfloat16)
    top = plan.stages[-1]
    assert top.width == 3072
    assert top.tile >= 128 and top.tile % 16 == 0
    assert plan.estimated_bytes <= 5e9
    assert plan.stages[0].tile == 0  # the small scales still run whole
    sizes = [max(s.width, s.height) for s in plan.stages]
    assert all(b / a <= 2.0 for a, b in zip(sizes, sizes[1:], strict=False))
    # A tighter budget gives smaller tiles, never a bigger estimate than the budget.
    tight = plan_run(
        StyleConfig(size=3072, max_memory=4.0),
        content_size=(2048, 1365),
        device=CPU,
        dtype=torch.bfloat16,
    )
    assert tight.stages[-1].tile < top.tile and tight.estimated_bytes <= 4e9
    with pytest.raises(OutOfMemoryError, match=r"largest size that fits is \d+ px"):
        plan_run(
            StyleConfig(size=30000, max_memory=4.0),
            content_size=(2048, 1365),
            device=CPU,
            dtype=torch.bfloat16,
        )


def test_tiled_run_paints_like_the_untiled_run(rainier: Path, autumn_oak: Path) -> None:
    # No content budget: it corrects untiled stages only (brushwork.budget measures on
    # the whole image), and this compares the objectives.
    kw = dict(size=224, scales=1, iterations=12, precision="fp32", content_budget=0)
    whole: list[float] = []
    tiled: list[float] = []
    a = stylize(rainier, autumn_oak, **kw, callback=lambda p: whole.append(p.total_loss))
    b = stylize(rainier, autumn_oak, **kw, tile=96, callback=lambda p: tiled.append(p.total_loss))
    assert b.info["brushwork"]["stages_run"][0]["tile"] == 96
    assert tiled[0] == pytest.approx(whole[0], rel=1e-4)  # same objective at the start
    assert tiled[-1] < 0.5 * tiled[0]
    assert tiled[-1] < 1.1 * whole[-1]
    diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean() / 255
    assert diff < 0.03, diff  # the same picture, up to the drift of a chaotic optimizer
