"""`tessera list | show | pretrain` (and `python -m tessera ...`).

Flags carry paths that are not recipe settings; `key.sub=value` arguments are recipe settings only.
Heavy imports wait until a command needs them, so `list` and `show` answer at once.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from tessera.config import ConfigError

def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors a user can fix (bad recipe, data or checkpoint): printed as one line, no traceback."""
    from tessera.data.lists import DatasetError
    from tessera.train.checkpoint import CheckpointError

    from tessera.data.robust import TooManyBadSamples

    errors: list[type[BaseException]] = [ConfigError, DatasetError, CheckpointError, TooManyBadSamples]
    try:
        from tessera.modalities.video.reading import VideoReadError

        errors.append(VideoReadError)
    except ImportError:  # decord missing: the video error cannot happen either
        pass
    return tuple(errors)


def _dump_yaml(config: dict) -> str:
    """Sections as blocks, lists on one line: how the shipped recipes are written."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def flow_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    Dumper.add_representer(list, flow_list)
    return yaml.dump(config, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)


def cmd_list(args: argparse.Namespace) -> int:
    from tessera.recipes import list_recipes, raw_recipe

    names = list_recipes()
    width = max(len(n) for n in names)
    for name in names:
        description = raw_recipe(name).get("description", "")
        print(f"{name:<{width}}  {description}")
    return 0


def resolved(recipe: str, overrides: list[str]):
    from tessera.config import to_dict
    from tessera.recipes import load_recipe

    cfg = load_recipe(recipe, overrides)
    return cfg, to_dict(cfg)


def cmd_show(args: argparse.Namespace) -> int:
    _, config = resolved(args.recipe, args.overrides)
    print(_dump_yaml(config), end="")
    return 0


# Settings that change how a run is watched or fed, never what it computes: a resume may change them.
RESUMABLE_CHANGES = frozenset({
    "train.max_steps", "train.progress", "train.checkpoint_every", "train.keep_every", "train.compile",
    "eval.every", "data.num_workers", "data.pin_memory",
})


def _check_same_config(run_dir: Path, config: dict) -> None:
    """A run dir resumes only under the config it started with; any difference that matters is named."""
    import yaml

    stored_path = run_dir / "config.yaml"
    if not stored_path.exists():
        return
    stored = yaml.safe_load(stored_path.read_text())
    diffs = [d for d in _differences(stored, config) if d[0] not in RESUMABLE_CHANGES]
    if diffs:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in diffs[:5])
        raise ConfigError(
            f"{run_dir} holds a run with another config ({shown}); resume it without changes or use a new --run-dir"
        )


def _differences(a, b, prefix: str = "") -> list[tuple[str, object, object]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
    return [] if a == b else [(prefix, a, b)]


def cmd_pretrain(args: argparse.Namespace) -> int:
    from tessera.recipes.build import run_pretraining
    from tessera.train.distributed import broadcast_object, init_distributed, shutdown

    cfg, config = resolved(args.recipe, args.overrides)
    dist = init_distributed(cfg.train.device)
    try:
        default = Path("runs") / cfg.name / datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.run_dir) if args.run_dir else broadcast_object(default, dist)
        resuming = (run_dir / "last.pt").exists()
        if resuming:
            _check_same_config(run_dir, config)
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(_dump_yaml(config))
            ranks = f" on {dist.world} processes" if dist.enabled else ""
            print(f"{'resuming' if resuming else 'starting'} {cfg.name} in {run_dir}{ranks}", file=sys.stderr)
        result = run_pretraining(cfg, run_dir, config, dist)
    finally:
        shutdown()
    loss = result.last_metrics.get("loss")
    if dist.is_main:
        print(
            f"done: step {result.step}, epoch {result.epoch}"
            + (f", loss {loss:.4f}" if loss is not None else "")
            + f"; checkpoint {run_dir / 'last.pt'}",
            file=sys.stderr,
        )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """On generated data: VideoMAE pretrained vs from scratch, then T-JEPA vs baselines on tables."""
    from tessera.demo import video_demo
    from tessera.recipes.tabular import demo_tables  # tables: T-JEPA vs baselines, about 15 s on 2 cores

    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / "demo" / datetime.now().strftime("%Y%m%d-%H%M%S")
    video_demo(args.minutes, run_dir / "video", seeds=args.seeds)
    demo_tables(run_dir / "tables")
    return 0


def _finetune_tabular(cfg, config: dict, init: Path | None, run_dir: Path) -> None:
    from tessera.recipes.tabular import run_finetune

    run_finetune(cfg, config, init, run_dir)


def _embed_tabular(cfg, config: dict, ckpt: Path, out: Path) -> None:
    from tessera.recipes.tabular import run_embed

    run_embed(cfg, config, ckpt, out)


def _finetune_video(cfg, config: dict, init: Path | None, run_dir: Path) -> None:
    from tessera.recipes.video_finetune import run_finetune

    run_finetune(cfg, config, init, run_dir)


def _embed_video(cfg, config: dict, ckpt: Path, out: Path) -> None:
    from tessera.recipes.video_finetune import run_embed

    run_embed(cfg, config, ckpt, out)


def _eval_video(cfg, config: dict, ckpt: Path, probe: str | None, out: Path | None) -> None:
    from tessera.recipes.video_finetune import run_eval

    run_eval(cfg, ckpt, probe, out)


# data.modality -> runner; a modality adds its own (fine-tuning: cfg, config, --init or None, run dir;
# embedding: cfg, config, --ckpt, --out; evaluation: cfg, config, --ckpt, --probe, --out)
FINETUNE_RUNNERS: dict = {"tabular": _finetune_tabular, "video": _finetune_video}
EMBED_RUNNERS: dict = {"tabular": _embed_tabular, "video": _embed_video}
EVAL_RUNNERS: dict = {"video": _eval_video}


def _runner(runners: dict, cfg, command: str):
    runner = runners.get(cfg.data.modality)
    if runner is None:
        raise ConfigError(f"`tessera {command}` has no runner for data.modality={cfg.data.modality!r}; "
                          f"modalities with one: {', '.join(sorted(runners))}")
    return runner


def cmd_finetune(args: argparse.Namespace) -> int:
    """Train task models from a pretrained checkpoint (--init); results and config go to the run dir."""
    cfg, config = resolved(args.recipe, args.overrides)
    runner = _runner(FINETUNE_RUNNERS, cfg, "finetune")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg.name / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(_dump_yaml(config))
    print(f"fine-tuning {cfg.name} in {run_dir}", file=sys.stderr)
    runner(cfg, config, Path(args.init) if args.init else None, run_dir)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Write the pretrained encoder's representation of the recipe's data to --out."""
    cfg, config = resolved(args.recipe, args.overrides)
    _runner(EMBED_RUNNERS, cfg, "embed")(cfg, config, Path(args.ckpt), Path(args.out))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint with the recipe's protocol (or a probe on its frozen features)."""
    cfg, config = resolved(args.recipe, args.overrides)
    out = Path(args.out) if args.out else None
    _runner(EVAL_RUNNERS, cfg, "eval")(cfg, config, Path(args.ckpt), args.probe, out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tessera", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="the shipped recipes").set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="print a recipe's resolved config")
    show.add_argument("recipe", help="a shipped recipe name or a path to a YAML file")
    show.add_argument("overrides", nargs="*", metavar="key.sub=value")
    show.set_defaults(func=cmd_show)

    pretrain = commands.add_parser("pretrain", help="pretrain; an existing --run-dir resumes")
    pretrain.add_argument("recipe")
    pretrain.add_argument("overrides", nargs="*", metavar="key.sub=value")
    pretrain.add_argument("--run-dir", help="run directory (default runs/<recipe>/<time>); an existing one resumes")
    pretrain.set_defaults(func=cmd_pretrain)

    demo = commands.add_parser("demo", help="pretrain a tiny VideoMAE on generated clips")
    demo.add_argument("--minutes", type=float, default=9.5,
                      help="budget of the video part (the tables add about 15 s); longer runs more steps")
    demo.add_argument("--seeds", type=int, help="fine-tuning seeds per arm (default: what the budget allows)")
    demo.add_argument("--run-dir", help="run directory (default runs/demo/<time>)")
    demo.set_defaults(func=cmd_demo)

    finetune = commands.add_parser("finetune", help="train task models on a pretrained checkpoint (--init)")
    finetune.add_argument("recipe")
    finetune.add_argument("overrides", nargs="*", metavar="key.sub=value")
    finetune.add_argument("--init", help="the pretraining checkpoint to start from (last.pt)")
    finetune.add_argument("--run-dir", help="run directory (default runs/<recipe>/<time>)")
    finetune.set_defaults(func=cmd_finetune)

    evaluate = commands.add_parser("eval", help="evaluate a checkpoint (multi-view test, or --probe)")
    evaluate.add_argument("recipe")
    evaluate.add_argument("overrides", nargs="*", metavar="key.sub=value")
    evaluate.add_argument("--ckpt", required=True, help="a fine-tuned checkpoint (best.pt), or any with --probe")
    evaluate.add_argument("--probe", choices=("linear", "knn"), help="probe frozen features instead")
    evaluate.add_argument("--out", help="where the per-video scores go (JSON; default beside the checkpoint)")
    evaluate.set_defaults(func=cmd_eval)

    embed = commands.add_parser("embed", help="write a pretrained encoder's representation of the data")
    embed.add_argument("recipe")
    embed.add_argument("overrides", nargs="*", metavar="key.sub=value")
    embed.add_argument("--ckpt", required=True, help="the pretraining checkpoint (last.pt)")
    embed.add_argument("--out", required=True, help="output file (.npy or .pt)")
    embed.set_defaults(func=cmd_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tessera.train.signals import NonFiniteTraining, StopRequested

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # settings may follow the flags: `--run-dir D k=v`
    if extra and (not hasattr(args, "overrides") or any(item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    for override in getattr(args, "overrides", []):
        if "=" not in override:
            print(f"tessera: error: {override!r} is not a key.sub=value setting", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"tessera: error: {error}", file=sys.stderr)
        return 2
    except _user_errors() as error:
        print(f"tessera: error: {error}", file=sys.stderr)
        return 2
    except StopRequested as stop:
        print(f"tessera: {stop}; run the same command to resume", file=sys.stderr)
        return 128 + stop.signum
    except NonFiniteTraining as error:
        print(f"tessera: error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("tessera: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
