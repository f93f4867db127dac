"""Podman for tests/test_image.py: an engine whose storage, networks and settings live in one directory
(what it makes goes with that directory, and the host's own images are never touched), a Debian base
image made with mmdebstrap (no registry is assumed reachable), and the host pip's package sources
lent to a build."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

CONTAINERS_CONF = """\
# runc: crun fails on hosts with hybrid cgroups; ulimits: within the host's (tests/podman.py, ulimits).
# cgroupfs and file events: no systemd needed. Its state and networks in {root}.
[containers]
default_ulimits = ["nofile={nofile}", "nproc={nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{root}/libpod"

[network]
network_config_dir = "{root}/networks"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


def ulimits() -> tuple[str, str]:
    """nofile and nproc for podman, as `soft:hard`: the host's hard limits (podman's defaults for root exceed them
    and runc cannot raise them), nproc also at most the kernel's pid_max (above it runc fails here too)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    return f"{nofile}:{nofile}", f"{nproc}:{nproc}"


class Podman:
    """`podman` and `podman-compose` with everything they keep under `root`."""

    def __init__(self, root: Path):
        self.root = root
        containers_conf, storage_conf = root / "containers.conf", root / "storage.conf"
        nofile, nproc = ulimits()
        containers_conf.write_text(CONTAINERS_CONF.format(root=root, nofile=nofile, nproc=nproc))
        storage_conf.write_text(STORAGE_CONF.format(root=root))
        self.env = {**os.environ, "CONTAINERS_CONF": str(containers_conf), "CONTAINERS_STORAGE_CONF": str(storage_conf)}
        graphroot = self("info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
        assert graphroot == str(root / "storage"), f"podman ignores {storage_conf}: its storage is {graphroot}"

    def __call__(self, *args, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """podman ARGS; its output captured, and shown in full when it fails (check)."""
        return run(["podman", *args], env=self.env, check=check, **kwargs)

    def compose(self, *args, env: dict, check: bool = True) -> subprocess.CompletedProcess:
        """podman-compose ARGS, with the compose file's variables from `env`."""
        return run(["podman-compose", *args], env={**self.env, **env}, check=check)

    def remove(self) -> None:
        """Everything it made: containers, images, volumes, networks, then the directory."""
        self("rm", "--all", "--force", "--time", "0", check=False)
        self("system", "reset", "--force", check=False)
        remove_tree(self.root)


def run(cmd: list, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    if kwargs.get("input") is None:  # no input: nothing read from the caller's terminal either
        kwargs.pop("input", None)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    done = subprocess.run([str(part) for part in cmd], capture_output=True, text=True, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))}: exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr}")
    return done


def remove_tree(directory: Path) -> None:
    """rm -rf, after unmounting what is mounted under it (podman's storage, a killed mmdebstrap's /proc):
    rmtree would otherwise fail there, or descend into the mounts."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{directory}/")), reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    shutil.rmtree(directory, ignore_errors=True)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this host for bookworm (a one-line or a deb822 source), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in (path for path in sources if path.is_file()):
        text = source.read_text()
        for uri, suite in re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.MULTILINE):
            if suite == "bookworm":
                return uri
        for stanza in text.split("\n\n"):
            fields = dict(re.findall(r"^(\w+):\s*(.*)$", stanza, re.MULTILINE))
            if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    return "http://deb.debian.org/debian"


def make_base(podman: Podman, name: str) -> None:
    """Image `name`: Debian bookworm (minbase, with python3, python3-venv, git and ca-certificates) made with
    mmdebstrap, trusting the certificate authorities this host adds (a proxy's, say) for apt and for pip.
    mmdebstrap: apt resolves and downloads (debootstrap took 65-100 s here, mmdebstrap 25-45 s), dpkg without
    fsync while it bootstraps (force-unsafe-io, not kept in the image), apt's lists and downloads left out,
    and the tree streamed to `podman import` as a tarball. Its working tree lies under the podman directory, so a
    run killed half-way leaves nothing behind that the podman fixture does not remove."""
    work = podman.root / "mmdebstrap"
    work.mkdir()
    hooks = [
        "copy-in /usr/local/share/ca-certificates /usr/local/share",
        'chroot "$1" update-ca-certificates',
        'printf "[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n" > "$1/etc/pip.conf"',
        'rm "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"',  # the force-unsafe-io below: for the bootstrap only
    ]
    command = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=python3,python3-venv,git,ca-certificates",
        "--dpkgopt=force-unsafe-io",
        *(f"--customize-hook={hook}" for hook in hooks),
        "bookworm",
        "-",
        debian_mirror(),
    ]
    log = work / "mmdebstrap.log"
    with open(log, "w") as err:
        bootstrap = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, env={**os.environ, "TMPDIR": str(work)}
        )
    try:
        imported = podman("import", "-", name, stdin=bootstrap.stdout, check=False)
    except BaseException:
        bootstrap.terminate()  # mmdebstrap unmounts and removes its tree on SIGTERM
        raise
    finally:
        bootstrap.stdout.close()
        bootstrap.wait()
    assert bootstrap.returncode == 0 and imported.returncode == 0, (
        f"the base: mmdebstrap exit {bootstrap.returncode}, podman import exit {imported.returncode}\n"
        f"{log.read_text()[-4000:]}\n{imported.stderr}"
    )


def pip_sources(pip_conf: Path) -> list[str]:
    """This host pip's package sources (index-url, extra-index-url, find-links: from its config files and PIP_*
    variables) written to `pip_conf` for a build, and the `--volume` options that lend it the local ones read-only,
    at the same paths: the build takes the wheels already on this disk (torch and its CUDA libraries: gigabytes)
    and the rest from the index, as the host's pip does. A local index's files lie beside its `simple/`."""
    listed = run([sys.executable, "-m", "pip", "config", "list"]).stdout  # lines like global.find-links='/x'
    sources: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        key = name.rsplit(".", 1)[-1]
        if key in ("index-url", "extra-index-url", "find-links"):
            sources.setdefault(key, [])
            sources[key] += [item for item in value.strip("'").split() if item not in sources[key]]
    pip_conf.write_text("[global]\n" + "".join(f"{key} = {' '.join(items)}\n" for key, items in sources.items()))
    local = [Path(item.removeprefix("file://")) for items in sources.values() for item in items]
    directories = {path.parent if path.name == "simple" else path for path in local if path.is_dir()}
    volumes = [f"--volume={pip_conf}:/etc/xdg/pip/pip.conf:ro"]
    return volumes + [f"--volume={directory}:{directory}:ro" for directory in sorted(directories)]
