"""``edgeproxy purge``, ``prewarm`` and ``check``: a running proxy  and its CDN
asked to purge, to render ahead of traffic, to answer a synthetic probe."""

from __future__ import annotations

import argparse
import sys


def purge(args: argparse.Namespace) -> int:
    """POST ``/purge`` for ``args.origin``/``args.key`` to the proxy at ``args.url`` and print its answer.
    Returns 0 on 200, 1 on another status or a network error, 2 without an admin token."""
    import httpx

    from edgeproxy.settings_env import env_admin_token

    token = args.admin_token or env_admin_token()
    if not token:
        print("edgeproxy purge: give --admin-token or set EDGEPROXY_ADMIN_TOKEN", file=sys.stderr)
        return 2
    try:
        response = httpx.post(
            args.url.rstrip("/") + "/purge",
            json={"origin": args.origin, "key": args.key},
            headers={"Authorization": f"Bearer {token}"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as error:
        print(f"edgeproxy purge: {args.url}: {error}", file=sys.stderr)
        return 1
    print(response.text.strip())
    return 0 if response.status_code == 200 else 1


def prewarm(args: argparse.Namespace) -> int:
    """Request the derivatives of ``args.keys_file`` in every variant (``edgeproxy.prewarm``). Returns its exit
    status, or 2 on bad arguments."""
    from edgeproxy import prewarm
    from edgeproxy.settings_env import env_admin_token, env_signature_size, env_signing_key

    key = args.signing_key or env_signing_key()
    if not key:
        print("edgeproxy prewarm: give --signing-key or set EDGEPROXY_SIGNING_KEY", file=sys.stderr)
        return 2
    if not 1 <= args.concurrency <= 256:
        print("edgeproxy prewarm: --concurrency must be 1..256", file=sys.stderr)
        return 2
    variants = [*args.variant, *(f"pr:{name}" for name in args.preset)]
    if not variants:
        print("edgeproxy prewarm: give at least one --variant or --preset", file=sys.stderr)
        return 2
    admin = args.admin_token or env_admin_token()
    if args.optimise_url and not admin:
        print("edgeproxy prewarm: --optimise-url needs --admin-token or EDGEPROXY_ADMIN_TOKEN", file=sys.stderr)
        return 2
    return prewarm.main(
        args.base_url,
        args.keys_file,
        variants,
        signing_key=key,
        signature_size=args.signature_size or env_signature_size() or 32,
        concurrency=args.concurrency,
        timeout=args.timeout,
        progress=not args.no_progress,
        optimise_url=args.optimise_url,
        admin_token=admin,
    )


def probe(args: argparse.Namespace) -> int:
    """``edgeproxy check``: probe the derivatives ``args`` name (URLs, or a manifest in variants) with
    ``edgeproxy.check`` and print a table or JSON. Returns 0, 1 when a check fails (or the textfile cannot be
    written), 2 on bad arguments."""
    import json

    from edgeproxy import check
    from edgeproxy.settings_env import env_signature_size, env_signing_key

    accepts = args.accept or [check.DEFAULT_ACCEPT]
    targets: list[check.Target] = []
    try:
        if args.manifest is not None:
            key = args.key or env_signing_key()
            if not (key and args.base_url and args.variant):
                raise ValueError(
                    "--manifest needs --base-url, at least one --variant and --key (or EDGEPROXY_SIGNING_KEY)"
                )
            manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError(f"{args.manifest}: expected a JSON object of id -> entry")
            targets = check.manifest_targets(
                manifest,
                args.variant,
                base_url=args.base_url.rstrip("/"),
                key=key,
                signature_size=args.signature_size or env_signature_size() or 32,
                origin=args.manifest_origin,
                accepts=accepts,
            )
        targets.extend(check.url_targets(args.urls, accepts))
        if not targets:
            raise ValueError("give URLs, or --manifest FILE with --variant OPTIONS")
    except (OSError, ValueError) as error:
        print(f"edgeproxy check: {error}", file=sys.stderr)
        return 2
    results = check.run(targets, timeout=args.timeout, max_ttfb=args.max_ttfb, max_decode=args.max_decode)
    print(check.as_json(results) if args.json else check.table(results))
    if args.textfile:
        try:
            check.write_textfile(results, args.textfile)
        except OSError as error:
            print(f"edgeproxy check: {args.textfile}: {error}", file=sys.stderr)
            return 1
    failed = [r for r in results if not r.ok]
    for r in failed:
        names = ", ".join(dict.fromkeys(f.check for f in r.failures))
        print(f"edgeproxy check: FAILED {names}: {r.target} [{r.accept}]", file=sys.stderr)
    return 1 if failed else 0
