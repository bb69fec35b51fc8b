"""Layer names, preprocessing and the real VGG-16 weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brushwork import weights as wts
from brushwork.backbones import (
    CAFFE_MEAN_BGR,
    SPECS,
    build_backbone,
    get_spec,
)
from brushwork.errors import ConfigError
from brushwork.pixels import to_image, to_tensor


def test_book_indices_map_to_names() -> None:
    vgg19 = get_spec("vgg19")
    # d2l: style_layers, content_layers = [0, 5, 10, 19, 28], [25]
    assert [vgg19.book_index_to_name(i) for i in (0, 5, 10, 19, 28)] == [
        "conv1_1",
        "conv2_1",
        "conv3_1",
        "conv4_1",
        "conv5_1",
    ]
    assert vgg19.book_index_to_name(25) == "conv4_4"
    assert vgg19.content_layers == ("conv4_4",)
    assert get_spec("vgg16").content_layers == ("conv4_3",)  # last conv of block 4


def test_layer_names_follow_torchvision_feature_order() -> None:
    names = SPECS["vgg16"].layer_names()
    assert len(names) == 31  # torchvision's vgg16.features has 31 modules
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names[-1] == "pool5" and names.index("conv4_3") == 21


def test_unknown_layer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="conv6_1"):
        build_backbone("vgg16", layers=["conv6_1"])


def test_vgg16_matches_onnxruntime_on_the_original_graph() -> None:
    """Our PyTorch VGG-16 reproduces the ONNX graph's conv4_3 output (independent runtime)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(wts.locate_onnx()))
    name = "functional_1/block4_conv3_1/BiasAdd:0"
    model.graph.output.extend(
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)]
    )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 1, (1, 240, 240, 3)).astype(np.float32)  # the graph's fixed size
    # The Keras model's own preprocessing: RGB->BGR, 0..255, minus the Caffe mean.
    caffe = rgb[..., ::-1] * 255.0 - np.array(CAFFE_MEAN_BGR, dtype=np.float32)
    (ref,) = sess.run([name], {"input": np.ascontiguousarray(caffe)})
    net, _ = build_backbone("vgg16", layers=["conv4_3"])
    x = to_tensor_from_array(rgb)
    with torch.no_grad():
        ours = net(x, ["conv4_3"])["conv4_3"].numpy()
    assert ours.shape == ref.shape == (1, 512, 30, 30)
    assert np.abs(ours - ref).max() < 1e-4 * np.abs(ref).max()


def to_tensor_from_array(rgb: np.ndarray) -> torch.Tensor:
    from PIL import Image

    img = Image.fromarray((rgb[0] * 255).round().astype(np.uint8))
    x = to_tensor(img, torch.device("cpu"))
    # Use the exact float input, not its 8-bit rounding.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    exact = (torch.from_numpy(rgb).permute(0, 3, 1, 2) - mean) / std
    assert (exact - x).abs().max() < 0.01
    return exact


def test_caffe_input_transform() -> None:
    net, _ = build_backbone("vgg16", layers=["conv1_1"])
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    got = net.network_input((rgb - mean) / std).flatten().tolist()
    want = [0.9 * 255 - 103.939, 0.5 * 255 - 116.779, 0.2 * 255 - 123.68]  # B, G, R
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_preprocessing_round_trip() -> None:
    from PIL import Image

    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    back = np.asarray(to_image(to_tensor(Image.fromarray(arr), torch.device("cpu"))))
    np.testing.assert_array_equal(back, arr)


def test_truncated_and_frozen() -> None:
    net, _ = build_backbone("vgg16", layers=["conv1_1", "conv3_1"])
    assert net.names[-1] == "conv3_1"
    assert set(net.convs) == {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"}
    assert not any(p.requires_grad for p in net.parameters())


def _in_order(net, x: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """The trunk as the paper draws it, each layer after the one before: the reference
    for the forward pass, which runs a block's last ReLU after its max-pool."""
    h = net.network_input(x.float()).to(net._weight_dtype())
    out = {}
    for name in net.names:
        if name.startswith("conv"):
            h = net.convs[name](h)
        elif name.startswith("relu"):
            h = torch.relu(h)
        else:
            h = torch.nn.functional.max_pool2d(h, 2)
        out[name] = h
    return {n: out[n] for n in names}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "layers",
    [
        ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1", "conv4_3"],  # the default's
        ["relu1_2", "pool1", "pool3", "relu4_3"],  # a moved ReLU's own output, and pools
    ],
)
def test_relu_after_the_pool_gives_the_same_values_and_gradients(dtype, layers) -> None:
    # max(relu(a)) = relu(max(a)) and both pass the gradient to the same element, so the
    # reordered trunk must agree bit for bit, in bf16 and channels-last too.
    net, _ = build_backbone("vgg16", layers=layers)
    net = net.to(dtype).to(memory_format=torch.channels_last)
    x0 = torch.randn(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    grads, feats = [], []
    for run in (net, lambda x, names: _in_order(net, x, names)):
        x = x0.clone().requires_grad_(True)
        out = run(x, layers)
        # A loss on every layer; squares, so negative and positive values both count.
        loss = sum(((f.float() - 0.1) ** 2).mean() for f in out.values())
        loss.backward()
        assert x.grad is not None
        grads.append(x.grad)
        feats.append(out)
    for name in layers:
        assert torch.equal(feats[0][name], feats[1][name]), name
    assert grads[0].abs().max() > 0
    assert torch.equal(grads[0], grads[1])
