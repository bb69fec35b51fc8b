"""Jobs of a batch: pairing, manifests, output names, and which jobs a rerun can skip.

A job is one content image painted in one style with one resolved
:class:`~brushwork.config.StyleConfig`. Its output name is
``{content_stem}--{style_stem}--{hash8}.{ext}``, where ``hash8`` is the first 8 hex
digits of the SHA-256 of the resolved config as canonical JSON: the same job always
gets the same name, and a strength sweep gets one name per strength.

A rerun skips a job when its output and its run record (the JSON sidecar) are there,
the record's config equals the job's resolved config, its inputs have the same
SHA-256 and the run was not stopped early. Outputs and records are written
atomically (image first, record second), so a record never vouches for a
half-written or older image of another config.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from brushwork.config import DEVICE_RESOLVED, OPTIONS, StyleConfig, make_config
from brushwork.errors import ConfigError, ImageError
from brushwork.options import Option, for_surface

#: Files taken from a directory given as --content or --style (not recursive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: --format choices and the extension each writes.
OUTPUT_FORMATS = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
#: Manifest columns that are not style options.
MANIFEST_KEYS = ("content", "style", "preset")

Pairing = Literal["all", "zip"]


@dataclass(frozen=True)
class JobRequest:
    """One job as asked: two paths, a preset and per-job options, before resolution.

    ``where`` names the manifest line for messages (empty for --content/--style jobs).
    """

    content: Path
    style: Path
    preset: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class JobSpec:
    """A resolved job, ready for any executor (picklable, no open files).

    ``inputs`` maps "content"/"style" (and "init" when the config has an init
    image) to ``{"path": ..., "sha256": ...}``; it goes into the run record as is.
    ``options`` are the job's own options (a manifest row's), for the summary.
    """

    name: str
    content: str
    style: str
    config: StyleConfig
    inputs: Mapping[str, Mapping[str, str]]
    options: Mapping[str, Any] = field(default_factory=dict)


def expand_inputs(paths: Sequence[str | Path], what: str) -> list[Path]:
    """Files as given, and the image files directly inside directories (sorted by name).

    Raises :class:`ImageError` for a missing path or a directory without images.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                c
                for c in p.iterdir()
                if c.is_file() and c.suffix.lower() in IMAGE_SUFFIXES and not c.name.startswith(".")
            )
            if not found:
                raise ImageError(
                    f"{what} directory '{p}' has no image files ({', '.join(IMAGE_SUFFIXES)})"
                )
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise ImageError(f"{what} '{p}' does not exist")
    return out


def pair_inputs(
    contents: Sequence[Path], styles: Sequence[Path], pairing: Pairing = "all"
) -> list[tuple[Path, Path]]:
    """Every content with every style (content-major), or in order with ``zip``."""
    if pairing == "zip":
        if len(contents) != len(styles):
            raise ConfigError(
                f"--pairs zip needs as many contents as styles, got {len(contents)} "
                f"and {len(styles)}"
            )
        return list(zip(contents, styles, strict=True))
    return [(c, s) for c in contents for s in styles]


def _manifest_options() -> dict[str, Option]:
    return {o.name: o for o in for_surface(OPTIONS, "cli")}


def parse_option_value(opt: Option, value: Any) -> Any:
    """A manifest value (CSV text or a JSON value) as the option's kind, bounds checked.

    Raises :class:`ConfigError` naming the option.
    """
    name = opt.label
    if isinstance(value, str):
        text = value.strip()
        if opt.nullable and text.lower() in ("none", "null"):
            return None
        if opt.kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{name}: {text[:64]!r} is not a whole number") from None
        elif opt.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{name}: {text[:64]!r} is not a number") from None
        elif opt.kind == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ConfigError(f"{name} must be true or false, got {text[:64]!r}")
            value = lowered in ("true", "1", "yes", "on")
        elif opt.kind in ("names", "floats"):
            value = [v.strip() for v in text.split(",") if v.strip()]
        else:
            value = text
    if opt.kind in ("names", "floats") and isinstance(value, list | tuple):
        if opt.kind == "floats":
            try:
                value = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a list of numbers") from None
        else:
            value = tuple(str(v) for v in value)
    if opt.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if opt.kind == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false")
    if opt.kind in ("choice", "path") and value is not None and not isinstance(value, str):
        raise ConfigError(f"{name} must be text, got {value!r}")
    opt.check(value)
    return value


def _row_request(row: Mapping[str, Any], base: Path, where: str) -> JobRequest:
    """One manifest row -> a request; paths are relative to the manifest's folder."""
    known = _manifest_options()
    options: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for raw_key, value in row.items():
        if raw_key is None:
            raise ConfigError(f"{where}: more cells than header columns")
        key = str(raw_key).strip().removeprefix("--").replace("-", "_")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # an empty cell: the flag, the preset or the default applies
        if key in MANIFEST_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: {key} must be text, got {value!r}")
            fields[key] = value.strip()
            continue
        opt = known.get(key)
        if opt is None:
            raise ConfigError(f"{where}: unknown option {str(raw_key)[:64]!r}")
        try:
            options[key] = parse_option_value(opt, value)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
        if opt.kind == "path" and options[key] is not None:
            options[key] = str(base / options[key])
    for needed in ("content", "style"):
        if needed not in fields:
            raise ConfigError(f"{where}: no {needed} path")
    return JobRequest(
        content=base / fields["content"],
        style=base / fields["style"],
        preset=fields.get("preset"),
        options=options,
        where=where,
    )


def read_manifest(path: Path) -> list[JobRequest]:
    """Jobs from a CSV (header row) or JSONL (one object per line) manifest.

    Columns/keys: ``content``, ``style`` (paths relative to the manifest's
    folder), optional ``preset``, and any style option by its name (``strength``,
    ``style_weight`` or ``style-weight``). Empty cells leave an option unset.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"manifest '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read manifest '{path}': {e}") from None
    base = path.parent
    requests: list[JobRequest] = []
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {i}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{where}: not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{where}: expected a JSON object")
            requests.append(_row_request(row, base, where))
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None:
            raise ConfigError(f"manifest '{path}' is empty")
        for row in reader:
            where = f"{path.name} line {reader.line_num}"
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            requests.append(_row_request(row, base, where))
    else:
        raise ConfigError(f"manifest '{path}' must end in .csv or .jsonl")
    if not requests:
        raise ConfigError(f"manifest '{path}' lists no jobs")
    return requests


def canonical_config(config: StyleConfig) -> Any:
    """The config as its run record stores it (JSON types: lists, not tuples)."""
    return json.loads(json.dumps(config.to_dict(), sort_keys=True))


def config_hash(config: StyleConfig) -> str:
    """SHA-256 of the resolved config as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def output_name(content: Path, style: Path, config: StyleConfig, fmt: str) -> str:
    """``{content_stem}--{style_stem}--{hash8}.{ext}``."""
    return f"{content.stem}--{style.stem}--{config_hash(config)[:8]}{OUTPUT_FORMATS[fmt]}"


def build_jobs(
    requests: Iterable[JobRequest],
    *,
    preset: str | None,
    overrides: Mapping[str, Any],
    fmt: str,
    hashes: dict[Path, str] | None = None,
) -> list[JobSpec]:
    """Resolve every request's config (defaults < preset < flags < the row) and name it.

    Every config is checked before anything runs (bounds, layers, device), so a bad
    option in row 900 is refused at once. Identical jobs are kept once; two
    different jobs that would write the same name are refused.

    Raises:
        ConfigError: for a bad option, an unknown preset or a name clash.
        ImageError: for an input file that does not exist.
    """
    from brushwork.plan import check_config
    from brushwork.weights import file_sha256

    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    hashes = {} if hashes is None else hashes

    def sha(path: Path, what: str, where: str) -> dict[str, str]:
        key = path.resolve()
        if key not in hashes:
            if not path.is_file():
                state = "is a directory" if path.is_dir() else "does not exist"
                raise ImageError(f"{where + ': ' if where else ''}{what} '{path}' {state}")
            hashes[key] = file_sha256(path)
        return {"path": str(path), "sha256": hashes[key]}

    jobs: dict[str, JobSpec] = {}
    for req in requests:
        prefix = f"{req.where}: " if req.where else ""
        try:
            cfg = make_config(req.preset or preset, **{**overrides, **req.options})
            check_config(cfg, n_styles=1)
        except ConfigError as e:
            raise ConfigError(f"{prefix}{e}") from None
        inputs = {
            "content": sha(req.content, "content", req.where),
            "style": sha(req.style, "style", req.where),
        }
        if cfg.init_image is not None:
            inputs["init"] = sha(Path(cfg.init_image), "init image", req.where)
        name = output_name(req.content, req.style, cfg, fmt)
        spec = JobSpec(
            name=name,
            content=str(req.content),
            style=str(req.style),
            config=cfg,
            inputs=inputs,
            options=dict(req.options),
        )
        seen = jobs.get(name)
        if seen is not None:
            if _same_inputs(seen.inputs, inputs):
                continue  # the same job twice (a path listed twice): run it once
            raise ConfigError(
                f"{prefix}two different jobs would write {name}: {seen.content} + {seen.style} "
                f"and {req.content} + {req.style}; rename one of the files"
            )
        jobs[name] = spec
    return list(jobs.values())


def _same_inputs(a: Mapping[str, Mapping[str, str]], b: Mapping[str, Mapping[str, str]]) -> bool:
    return {k: v["sha256"] for k, v in a.items()} == {k: v["sha256"] for k, v in b.items()}


def check_outdir(outdir: Path, jobs: Sequence[JobSpec], input_dirs: Sequence[Path]) -> None:
    """Refuse an output folder that is an input folder or would overwrite an input file.

    Creates the folder and test-writes it (``images.check_output``).
    """
    from brushwork.images import check_output, sidecar_path

    out = outdir.resolve()
    for d in input_dirs:
        if d.is_dir() and d.resolve() == out:
            raise ConfigError(
                f"output directory '{outdir}' is an input directory; a rerun would take the "
                "results for inputs"
            )
    inputs = {Path(i["path"]).resolve() for job in jobs for i in job.inputs.values()}
    for job in jobs:
        target = out / job.name
        if target in inputs or sidecar_path(target) in inputs:
            raise ConfigError(f"output '{outdir / job.name}' is an input; refusing to overwrite it")
    if jobs:
        check_output(outdir / jobs[0].name, {})


def is_done(job: JobSpec, outdir: Path) -> bool:
    """True when ``outdir`` holds this job's finished output and a record that matches it."""
    from brushwork.images import sidecar_path

    out = outdir / job.name
    try:
        if out.stat().st_size == 0:
            return False
        record = json.loads(sidecar_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("stopped") is not None:
        return False
    inputs = record.get("inputs")
    if not isinstance(inputs, dict) or set(inputs) != set(job.inputs):
        return False
    for what, info in job.inputs.items():
        got = inputs[what]
        if not isinstance(got, dict) or got.get("sha256") != info["sha256"]:
            return False
    got = record.get("config")
    if not isinstance(got, dict):
        return False
    want = canonical_config(job.config)
    # A field the job leaves unset is resolved for the device by the run
    # (StyleConfig.for_device) and recorded resolved: any recorded value matches it.
    for name in DEVICE_RESOLVED:
        if want.get(name) is None and name in got:
            want[name] = got[name]
    return bool(got == want)
