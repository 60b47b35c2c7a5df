"""``edgeproxy sign``, ``surrogate-key`` and ``translate``: URLs and keys printed for a shell
(signed paths, surrogate keys, thumbor and imgproxy URLs as edgeproxy's)."""

from __future__ import annotations

import argparse
import sys


def sign(args: argparse.Namespace) -> int:
    """Print ``args.path`` signed (``--info``: the ``/info`` URL path). Returns 0, or 2 without a key or with a
    bad path or signature size."""
    from edgeproxy.settings_env import env_signature_size, env_signing_key
    from edgeproxy.url.signing import INFO_PREFIX, sign_path

    key = args.signing_key or env_signing_key()
    if not key:
        print("edgeproxy sign: give --signing-key or set EDGEPROXY_SIGNING_KEY", file=sys.stderr)
        return 2
    if not args.path.startswith("/"):
        print("edgeproxy sign: PATH must start with '/'", file=sys.stderr)
        return 2
    path = args.path
    if args.info:
        if path.startswith(INFO_PREFIX + "/"):
            print(f"edgeproxy sign: with --info, give PATH without {INFO_PREFIX}: /{{origin}}/{{key}}", file=sys.stderr)
            return 2
        path = INFO_PREFIX + path
    try:
        print(sign_path(path, key, args.signature_size or env_signature_size() or 32))
    except ValueError as error:
        print(f"edgeproxy sign: {error}", file=sys.stderr)
        return 2
    return 0


def surrogate_key(args: argparse.Namespace) -> int:
    """Print the surrogate key of ``args.origin``/``args.key`` (``Surrogate-Key``, ``Cache-Tag``). Returns 0."""
    from edgeproxy.service.validators import surrogate_key

    print(surrogate_key(args.origin, args.key))
    return 0


def _under(path: str, prefix: str) -> bool:
    return bool(prefix) and path.startswith(prefix + "/")


def translate(args: argparse.Namespace) -> int:
    """Print the edgeproxy URL for ``args.url``, a thumbor URL (``edgeproxy.compat.thumbor``) or an
    imgproxy URL (``edgeproxy.compat.imgproxy``), told apart by the settings' prefixes (a URL under
    neither is the one served at the root: its compatibility on, with an empty prefix); its scheme
    and host are kept. Exit 1 with the status and
    message the server would answer when it does not map; 2 on bad settings or a URL of neither."""
    from urllib.parse import urlsplit, urlunsplit

    from edgeproxy.compat import imgproxy, thumbor
    from edgeproxy.errors import ProxyError
    from edgeproxy.settings import SettingsError, load_settings

    try:
        settings = load_settings(args.config, signing_key=args.signing_key)
    except SettingsError as error:
        print(f"edgeproxy translate: {error}", file=sys.stderr)
        return 2
    parts = urlsplit(args.url)
    path, t_prefix, i_prefix = parts.path, settings.compat_thumbor_prefix, settings.compat_imgproxy_prefix
    try:
        if not parts.query and _under(path, t_prefix):
            native = thumbor.translate(path.removeprefix(t_prefix), thumbor.ThumborConfig.from_settings(settings))
        elif not parts.query and _under(path, i_prefix):
            native = imgproxy.translate(path.removeprefix(i_prefix), imgproxy.ImgproxyConfig.from_settings(settings))
        elif not parts.query and settings.compat_thumbor and not t_prefix:  # thumbor URLs at the root
            native = thumbor.translate(path, thumbor.ThumborConfig.from_settings(settings))
        elif not parts.query and settings.compat_imgproxy and not i_prefix:  # imgproxy URLs at the root
            native = imgproxy.translate(path, imgproxy.ImgproxyConfig.from_settings(settings))
        else:
            print(
                f"edgeproxy translate: {args.url}: not a thumbor URL under {t_prefix or '/'} or an imgproxy URL "
                f"under {i_prefix or '/'} (without a query)",
                file=sys.stderr,
            )
            return 2
    except ProxyError as error:
        print(f"edgeproxy translate: {error.status} {error.message}", file=sys.stderr)
        return 1
    except ValueError as error:  # settings a compatibility mount refuses (a key, an origin map)
        print(f"edgeproxy translate: {error}", file=sys.stderr)
        return 2
    print(urlunsplit((parts.scheme, parts.netloc, native, "", "")))
    return 0
