"""brushwork batch: jobs, names, manifests, resumability and the local executor.

Ray's executor has its own module (test_batch_ray.py), which starts Ray once.
Jobs are tiny (64 px, 6 L-BFGS iterations) real runs on the real VGG-16.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brushwork.batch.jobs import (
    JobRequest,
    build_jobs,
    config_hash,
    expand_inputs,
    is_done,
    pair_inputs,
    read_manifest,
)
from brushwork.batch.local import LocalExecutor
from brushwork.batch.runner import BatchPlanned, execute
from brushwork.batch.worker import JobOutcome
from brushwork.cli import main
from brushwork.config import make_config
from brushwork.errors import ConfigError, ImageError

TINY = ["--size", "64", "--iterations", "6"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pairs_names_and_hashes(folders: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = folders
    cs = expand_inputs([contents], "content")
    assert [p.name for p in cs] == ["oak.jpg", "rainier.png"]  # sorted, images only
    s2 = [styles / "starry.png", styles / "starry.png"]
    assert len(pair_inputs(cs, s2, "all")) == 4
    assert pair_inputs(cs, s2, "zip") == [(cs[0], s2[0]), (cs[1], s2[1])]
    with pytest.raises(ConfigError, match="as many contents as styles"):
        pair_inputs(cs, s2[:1], "zip")
    with pytest.raises(ImageError, match="does not exist"):
        expand_inputs([tmp_path / "nope.png"], "content")

    reqs = [JobRequest(c, styles / "starry.png") for c in cs]
    jobs = build_jobs(reqs, preset=None, overrides={"size": 64}, fmt="webp")
    cfg = make_config(None, size=64)
    # The hash is the SHA-256 of the resolved config as canonical JSON, computed here directly.
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    h8 = hashlib.sha256(text.encode()).hexdigest()[:8]
    assert config_hash(cfg)[:8] == h8
    assert [j.name for j in jobs] == [f"oak--starry--{h8}.webp", f"rainier--starry--{h8}.webp"]
    assert jobs[0].inputs["content"]["sha256"] == _sha(cs[0])
    # Same job twice is kept once; another option is another name.
    twice = build_jobs(reqs + reqs[:1], preset=None, overrides={"size": 64}, fmt="webp")
    assert len(twice) == 2
    other = build_jobs(reqs[:1], preset=None, overrides={"size": 65}, fmt="webp")
    assert other[0].name != jobs[0].name
    # A preset is part of the resolved config, so of the name.
    fast = build_jobs(reqs[:1], preset="fast", overrides={}, fmt="png")
    assert fast[0].config.scales == 1 and fast[0].config.size == 384


def test_name_clash_between_different_files_is_refused(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    contents, styles = folders
    other = tmp_path / "other"
    other.mkdir()
    Image.new("RGB", (80, 60), (10, 200, 30)).save(other / "rainier.png")
    reqs = [JobRequest(d / "rainier.png", styles / "starry.png") for d in (contents, other)]
    with pytest.raises(ConfigError, match="two different jobs would write rainier--starry"):
        build_jobs(reqs, preset=None, overrides={}, fmt="png")


def test_manifest_csv_and_jsonl(folders: tuple[Path, Path], tmp_path: Path) -> None:
    contents, styles = folders
    csv = tmp_path / "jobs.csv"
    csv.write_text(
        "content,style,strength,preserve-color,style_layers\n"
        "contents/rainier.png,styles/starry.png,0.5,,\n"
        'contents/rainier.png,styles/starry.png,4,luminance,"conv1_1,conv2_1"\n'
    )
    reqs = read_manifest(csv)
    assert reqs[0].content == tmp_path / "contents" / "rainier.png"  # relative to the manifest
    assert reqs[0].options == {"strength": 0.5}
    assert reqs[1].options == {
        "strength": 4.0,
        "preserve_color": "luminance",
        "style_layers": ("conv1_1", "conv2_1"),
    }
    jobs = build_jobs(reqs, preset=None, overrides={"size": 64, "strength": 2.0}, fmt="png")
    assert [j.config.strength for j in jobs] == [0.5, 4.0]  # the row wins over the flag
    assert jobs[0].config.size == 64 and jobs[0].name != jobs[1].name

    jsonl = tmp_path / "jobs.jsonl"
    jsonl.write_text(
        '{"content": "contents/oak.jpg", "style": "styles/starry.png", "seed": 7,'
        ' "clamp": false, "preset": "fast"}\n\n'
        '{"content": "contents/oak.jpg", "style": "styles/starry.png", "strength": "3"}\n'
    )
    reqs = read_manifest(jsonl)
    assert reqs[0].options == {"seed": 7, "clamp": False} and reqs[0].preset == "fast"
    assert reqs[1].options == {"strength": 3.0}

    bad = tmp_path / "bad.csv"
    bad.write_text("content,style,strength\na.png,b.png,1\na.png,b.png,-2\n")
    with pytest.raises(
        ConfigError, match=r"bad.csv line 3: strength must be > 0 and <= 1000, got -2"
    ):
        read_manifest(bad)
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text('{"content": "a.png", "style": "b.png", "strenght": 2}\n')
    with pytest.raises(ConfigError, match="unknown.jsonl line 1: unknown option 'strenght'"):
        read_manifest(unknown)


def test_local_batch_rerun_skips_and_matches_stylize(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from brushwork.engine import stylize

    contents, styles = folders
    out = tmp_path / "out"
    args = ["batch", "--content", str(contents), "--style", str(styles), "-o", str(out), *TINY]
    assert main([*args, "-q"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.endswith(".png")] == [
        n.removesuffix(".json") for n in names if n.endswith(".png.json")
    ]
    assert len([n for n in names if n.endswith(".png")]) == 2
    assert not [n for n in names if n.endswith(".part")]  # atomic writes leave no temp files
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["done"] == 2 and summary["counts"]["failed"] == 0
    rainier_out = next(out.glob("rainier--starry--*.png"))
    record = json.loads((out / (rainier_out.name + ".json")).read_text())
    assert record["inputs"]["content"]["sha256"] == _sha(contents / "rainier.png")
    assert record["inputs"]["style"]["sha256"] == _sha(styles / "starry.png")
    assert record["config"]["size"] == 64 and record["stopped"] is None
    assert record["batch"]["worker"]["pid"] == os.getpid()

    # The batch's picture is exactly what stylize makes with the same config.
    direct = stylize(contents / "rainier.png", styles / "starry.png", size=64, iterations=6)
    got = np.asarray(Image.open(rainier_out).convert("RGB"), dtype=np.int16)
    assert got.shape == np.asarray(direct).shape
    assert np.abs(got - np.asarray(direct, dtype=np.int16)).max() == 0

    # A rerun skips everything and touches nothing.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "0 done, 2 skipped, 0 failed" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")} == stamps
    assert json.loads((out / "summary.json").read_text())["counts"]["skipped"] == 2

    # A changed input redoes only its job; --force redoes all.
    Image.open(contents / "rainier.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        contents / "rainier.png"
    )
    assert main([*args, "-q"]) == 0
    counts = json.loads((out / "summary.json").read_text())["counts"]
    assert (counts["done"], counts["skipped"]) == (1, 1)
    assert main([*args, "-q", "--force"]) == 0
    assert json.loads((out / "summary.json").read_text())["counts"]["done"] == 2


def test_strength_sweep_manifest_loads_the_network_once(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    contents, styles = folders
    manifest = tmp_path / "sweep.jsonl"
    manifest.write_text(
        "".join(
            json.dumps(
                {"content": "contents/rainier.png", "style": "styles/starry.png", "strength": s}
            )
            + "\n"
            for s in (0.1, 10)
        )
    )
    # Started from the photo itself, the pixel distance from it is what the style painted
    # (the default start is already recoloured to the painting's palette). No content
    # budget: it would correct both runs toward one content distance (brushwork.budget).
    overrides = {"size": 64, "iterations": 6, "init": "content", "content_budget": 0}
    jobs = build_jobs(read_manifest(manifest), preset=None, overrides=overrides, fmt="png")
    executor = LocalExecutor()
    events: list[object] = []
    summary = execute(jobs, tmp_path / "sweep", executor, on_event=events.append)
    assert executor.networks.loads == 1  # one network for the whole batch
    assert isinstance(events[0], BatchPlanned) and events[0].to_run == 2
    assert summary.counts()["done"] == 2
    content = Image.open(contents / "rainier.png").convert("RGB")

    def distance(job_name: str) -> float:
        img = Image.open(tmp_path / "sweep" / job_name).convert("RGB")
        ref = np.asarray(content.resize(img.size, Image.Resampling.BICUBIC), dtype=np.float64)
        return float(np.abs(np.asarray(img, dtype=np.float64) - ref).mean())

    weak, strong = (distance(j.name) for j in jobs)
    # A 100x stronger style moves the picture further from the photo.
    assert strong > 1.5 * weak, (weak, strong)


def test_stop_keeps_finished_jobs_and_rerun_does_the_rest(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    contents, styles = folders
    reqs = [JobRequest(c, styles / "starry.png") for c in expand_inputs([contents], "content")]
    jobs = build_jobs(reqs, preset=None, overrides={"size": 64, "iterations": 6}, fmt="png")
    out = tmp_path / "out"
    out.mkdir()
    finished: list[str] = []

    def on_event(e: object) -> None:
        if isinstance(e, JobOutcome) and e.status == "done":
            finished.append(e.name)

    # Stop as soon as the first job is done (what Ctrl-C's flag does).
    summary = execute(
        jobs, out, LocalExecutor(), on_event=on_event, should_stop=lambda: bool(finished)
    )
    assert summary.interrupted
    assert [o.status for o in summary.outcomes] == ["done", "not run"]
    assert is_done(jobs[0], out) and not is_done(jobs[1], out)
    assert not (out / jobs[1].name).exists()
    again = execute(jobs, out, LocalExecutor())
    assert [o.status for o in again.outcomes] == ["skipped", "done"]


def test_bad_input_fails_once_and_exits_1(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contents, styles = folders
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "out"
    good = contents / "oak.jpg"
    argv = ["batch", "--content", str(good), str(broken), "--style", str(styles), "-o", str(out)]
    code = main([*argv, *TINY])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("broken--starry") == 2  # once as it happened, once in the table
    assert err.count("job broken--starry") == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {
        "done": 1,
        "skipped": 0,
        "failed": 1,
        "cancelled": 0,
        "not run": 0,
    }
    failed = [j for j in summary["jobs"] if j["status"] == "failed"]
    assert "broken.png" in failed[0]["error"] and "not an image file" in failed[0]["error"]
    assert not list(out.glob("broken--*"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2"], "--workers need --ray or --ray-address"),
        (["--pairs", "zip", "--style", "STYLE", "STYLE"], "as many contents as styles"),
        (["--strength", "-1"], "strength must be > 0 and <= 1000"),
        (["--manifest", "jobs.csv"], "either --manifest or --content"),
        (["--format", "gif"], "invalid choice"),
        (["--ray", "--ray-address", "x:1"], "not allowed with argument"),
        (["--ray-address", "127.0.0.1:1"], "no Ray cluster answers at 127.0.0.1:1"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    folders: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    contents, styles = folders
    style = str(styles / "starry.png")
    extra = [style if e == "STYLE" else e for e in extra]
    out = tmp_path / "out"
    argv = ["batch", "--content", str(contents), "--style", style, "-o", str(out), *extra]
    if "--pairs" in extra:  # two styles for two contents would zip: give one content only
        argv[2] = str(contents / "oak.jpg")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists() or not any(out.iterdir())


def test_output_folder_may_not_be_an_input_folder(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    contents, styles = folders
    argv = ["batch", "--content", str(contents), "--style", str(styles), "-o", str(contents)]
    assert main(argv) == 2
    assert "is an input directory" in capsys.readouterr().err


def test_ctrl_c_keeps_finished_jobs(folders: tuple[Path, Path], tmp_path: Path) -> None:
    """A real SIGINT to a real batch: exit 130, the finished job kept, nothing half-written."""
    import signal
    import subprocess
    import sys
    import time

    contents, styles = folders
    out = tmp_path / "out"
    argv = ["batch", "--content", str(contents), "--style", str(styles), "-o", str(out), "-q"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "brushwork", *argv, "--size", "64", "--iterations", "80"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("*.png.json")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted; 1 finished jobs kept" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["counts"]["done"] == 1
    assert summary["counts"]["cancelled"] == 1
    assert len(list(out.glob("*.png"))) == 1 and not list(out.glob(".*"))


def test_a_photo_enlarged_past_twice_its_size_is_noted_per_job(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The folder's photos are 96x64 and 96x67: --size 200 enlarges both 2.08x, and each
    # job says so once, beside the batch's progress (the CLI's note, job by job).
    contents, styles = folders
    out = tmp_path / "out"
    args = ["batch", "--content", str(contents), "--style", str(styles), "-o", str(out)]
    assert main([*args, "--size", "200", "--iterations", "1", "--scales", "1", "-q"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note:" in line]
    assert len(notes) == 2, notes
    assert any("job rainier--starry" in n and "96x64 px and is enlarged 2.1x" in n for n in notes)
    assert all(n.startswith("brushwork: note: job ") for n in notes)
    rows = json.loads((out / "summary.json").read_text())["jobs"]
    assert all("enlarged 2.1x to 200 px" in row["note"] for row in rows)
    assert main([*args, *TINY, "-q"]) == 0  # 64 px: no enlargement, no note
    assert "note:" not in capsys.readouterr().err
