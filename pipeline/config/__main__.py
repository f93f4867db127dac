"""`python -m pipeline.config [OVERRIDE...] [--out FILE]`: conf/ composed by Hydra and validated,
as YAML: what params.yaml holds (`make params` writes it)."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.config.atomic import atomic_file
from pipeline.config.cli import ArgumentParser, run_command
from pipeline.config.compose import compose, validate

DESCRIPTION = "Print conf/ composed by Hydra and validated, as YAML: what params.yaml holds (`make params`)."


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m pipeline.config", description=DESCRIPTION)
    parser.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides, e.g. optim.lr=0.5 model=mlp")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write FILE (e.g. params.yaml) instead of printing: "
        "whole, and only when the configuration is valid (a shell redirect would empty it first)",
    )
    args = parser.parse_args(argv)
    cfg = compose(args.overrides)
    validate(cfg)
    if args.out is None:
        print(OmegaConf.to_yaml(cfg, resolve=True), end="")
        return
    with atomic_file(args.out) as scratch:
        scratch.write_text(OmegaConf.to_yaml(cfg, resolve=True))


if __name__ == "__main__":
    run_command(main, sys.argv[1:])
