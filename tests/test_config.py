"""StyleConfig, its option description, presets and make_config."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from brushwork.config import (
    CPU_ITERATIONS,
    FAST_CPU_ITERATIONS,
    MAX_SEED,
    OPTIONS,
    PRESETS,
    Stage,
    StyleConfig,
    StyleOptions,
    cpu_iterations,
    make_config,
    pyramid_sizes,
    rescale_stages,
)
from brushwork.errors import ConfigError


def test_style_options_mirror_config_fields_names_and_types() -> None:
    hints = typing.get_type_hints(StyleConfig)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(StyleConfig)}
    assert typing.get_type_hints(StyleOptions) == fields


def test_every_field_has_one_description() -> None:
    assert [o.name for o in OPTIONS] == [f.name for f in dataclasses.fields(StyleConfig)]
    by_name = {o.name: o for o in OPTIONS}
    assert by_name["optimizer"].choices == ("adam", "lbfgs")
    assert by_name["init"].choices == ("recolored", "content", "noise", "style-stats", "image")
    assert (
        by_name["model_weights"].kind == "path"
        and "studio" not in by_name["model_weights"].surfaces
    )
    assert by_name["init_image"].kind == "path" and "studio" not in by_name["init_image"].surfaces
    assert by_name["stages"].surfaces == frozenset()
    assert (by_name["seed"].low, by_name["seed"].high) == (0, 2**64 - 1)


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("lr", float("inf"), "finite"),
        ("lr", float("nan"), "finite"),
        ("lr", 0.0, "> 0"),
        ("lr", 10**400, "digit"),
        ("content_weight", float("inf"), "finite"),
        ("style_weight", -1.0, ">= 0"),
        ("tv_weight", float("nan"), "finite"),
        ("iterations", 0, ">= 1"),
        ("iterations", 10**9, "<= 100000"),
        ("scales", 100_000_000, "<= 24"),
        ("scales", 1_000_000, "<= 24"),
        ("seed", 1180591620717411303424, "<= 18446744073709551615"),
        ("seed", -1, ">= 0"),
        ("size", 8, ">= 16"),
        ("style_scale", 0.0, "> 0"),
        ("style_blend", (1.0, float("inf")), "finite"),
        ("style_layer_weights", (1, 1, 1, 1, -2), ">= 0"),
        ("optimizer", "sgd", "one of adam, lbfgs"),
    ],
)
def test_validate_refuses_out_of_bounds(option: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as e:
        StyleConfig(**{option: value}).validate()  # type: ignore[arg-type]
    assert needle in str(e.value), str(e.value)
    assert option.replace("_", " ") in str(e.value)


def test_validate_accepts_the_extremes() -> None:
    StyleConfig(seed=MAX_SEED, iterations=1, scales=24, size=16).validate()


def test_config_is_the_source_of_defaults() -> None:
    """The CLI with no flags, the studio's form and the CLI's help all take their
    defaults from StyleConfig's fields; none restates one."""
    import re

    from brushwork.cli import _config_overrides, build_parser
    from brushwork.web.forms import form_fields

    parser = build_parser()
    args = parser.parse_args(["stylize", "photo.jpg", "art.jpg", "-o", "out.png"])
    assert _config_overrides(args) == {} and make_config() == StyleConfig()
    defaults = StyleConfig()
    for f in form_fields():
        assert f.to_json()["default"] == _json(getattr(defaults, f.name)), f.name
    sub = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    text = re.sub(r"\s+", " ", sub["stylize"].format_help())
    for opt in OPTIONS:
        if "cli" in opt.surfaces:
            assert f"(default: {opt.shown_default()})" in text, opt.name
            assert opt.default == getattr(defaults, opt.name)


def _json(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def test_presets_and_overrides() -> None:
    assert make_config("d2l", iterations=3).style_fit == "stretch"
    assert make_config("fast", size=200).size == 200  # a flag the user gives wins
    assert make_config("d2l", optimizer="lbfgs").optimizer == "lbfgs"
    # quality matches whole feature distributions; the user's loss still wins.
    assert make_config("quality").style_loss == "sliced"
    assert make_config("quality", style_loss="gram").style_loss == "gram"
    with pytest.raises(ConfigError, match="unknown preset"):
        make_config("nope")
    with pytest.raises(ConfigError, match="unknown option"):
        make_config(colour="red")


def test_d2l_size_and_iterations_scale_its_stages() -> None:
    """d2l: size is the last stage's long side and iterations the last stage's; the
    stages keep their 1:4 sizes and 5:3 iterations (decay periods scale with them)."""
    cfg = make_config("d2l", size=256, iterations=10)
    assert cfg.stages == (Stage(64, 17, 7), Stage(256, 10, 3))
    assert (cfg.size, cfg.iterations) == (256, 10)  # the record says what runs
    assert make_config("d2l").stages == PRESETS["d2l"]["stages"]
    assert make_config("d2l", size=450).stages == (Stage(112, 500, 200), Stage(450, 300, 100))
    with pytest.raises(ConfigError, match="scales"):
        make_config("d2l", scales=3)
    with pytest.raises(ConfigError, match="iterations must be >= 1"):
        make_config("d2l", iterations=0)


def test_rescale_stages_keeps_ratios() -> None:
    stages = (Stage(100, 40, 20), Stage(400, 20, 10))
    assert rescale_stages(stages, size=800) == (Stage(200, 40, 20), Stage(800, 20, 10))
    assert rescale_stages(stages, lr_decay_every=5) == (Stage(100, 40, 10), Stage(400, 20, 5))


def test_init_image_implies_init_image_mode() -> None:
    assert StyleConfig(init_image="a.png").init == "image"
    with pytest.raises(ConfigError, match="only used with init"):
        StyleConfig(init="noise", init_image="a.png").validate()
    with pytest.raises(ConfigError, match="needs an init image"):
        StyleConfig(init="image").validate()


def test_iterations_left_unset_depend_on_the_device() -> None:
    cfg = StyleConfig()
    assert cfg.iterations is None
    assert [s.iterations for s in cfg.for_device("cpu").resolved_stages()] == [30, 30]
    assert [s.iterations for s in cfg.for_device("cuda").resolved_stages()] == [300, 300]
    # Sizes only, before the device is known: read as the CPU's count.
    assert cfg.resolved_stages() == cfg.for_device("cpu").resolved_stages()
    # A number the user gives wins on every device.
    assert StyleConfig(iterations=7).for_device("cuda").iterations == 7
    assert make_config("fast").for_device("cuda").iterations == 30


def test_cpu_iterations_keep_a_square_canvas_to_a_3_2_photos_work() -> None:
    # Iterations x pixels at the same long side: 30 x 512*341 against n x 512*512.
    assert cpu_iterations(512, 341) == cpu_iterations(341, 512) == CPU_ITERATIONS == 30
    assert cpu_iterations(512, 512) == round(30 * 512 * 341 / (512 * 512)) == 20
    assert cpu_iterations(512, 384) == round(30 * (2 / 3) / (384 / 512)) == 27  # 4:3
    assert cpu_iterations(1024, 256) == 30  # a panorama costs less; it keeps the count
    cfg = StyleConfig()
    assert cfg.for_device("cpu", (512, 512)).iterations == 20
    assert cfg.for_device("cuda", (512, 512)).iterations == 300
    assert StyleConfig(iterations=30).for_device("cpu", (512, 512)).iterations == 30


def test_a_cpu_with_amx_bf16_runs_more_iterations_up_to_1024_px() -> None:
    """bf16 on AMX tiles runs a 512 px default in about 9 s at 30 (2026-12-03), so its
    default doubles the count (config.FAST_CPU_ITERATIONS); prints keep theirs."""
    fast = StyleConfig().for_device("cpu", (512, 341), fast_cpu=True)
    assert fast.iterations == FAST_CPU_ITERATIONS == 2 * CPU_ITERATIONS == 60
    assert [s.iterations for s in fast.resolved_stages()] == [60, 60]
    # The square canvas keeps a 3:2 photo's work, as at 30: 60 x 2/3.
    assert StyleConfig().for_device("cpu", (512, 512), fast_cpu=True).iterations == 40
    assert cpu_iterations(512, 512, FAST_CPU_ITERATIONS) == 40
    assert StyleConfig(size=1024).for_device("cpu", (1024, 683), fast_cpu=True).iterations == 60
    assert StyleConfig(size=2048).for_device("cpu", (2048, 1365), fast_cpu=True).iterations == 30
    # Not a CPU, or a count the user gave: unchanged.
    assert StyleConfig().for_device("cuda", fast_cpu=True).iterations == 300
    assert StyleConfig(iterations=7).for_device("cpu", fast_cpu=True).iterations == 7


def test_whole_floats_become_ints() -> None:
    # JSON gives 30.0 for 30; the optimizer's range() and the stage sizes need ints.
    cfg = StyleConfig(iterations=30.0, size=300.0, scales=2.0, seed=7.0)  # type: ignore[arg-type]
    cfg.validate()
    assert [type(v) for v in (cfg.iterations, cfg.size, cfg.scales, cfg.seed)] == [int] * 4
    assert all(type(st.iterations) is int and type(st.size) is int for st in cfg.resolved_stages())
    with pytest.raises(ConfigError, match="whole number"):
        StyleConfig(iterations=2.5).validate()  # type: ignore[arg-type]


def test_pyramid_sizes() -> None:
    assert pyramid_sizes(512, 128, 1) == [512]
    assert pyramid_sizes(512, 128, 3) == [128, 256, 512]
    assert pyramid_sizes(1024, 128, 0) == [128, 181, 256, 362, 512, 724, 1024]


def test_stages_come_back_from_a_record() -> None:
    cfg = make_config("d2l")
    again = StyleConfig(**cfg.to_dict())
    assert again == cfg
