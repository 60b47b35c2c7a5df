"""Purge hooks: after the proxy has dropped an original from its own caches, tell each CDN to drop
every derivative tagged with the original's surrogate key.

A hook is configured as ``KIND:TARGET`` (setting ``purge_hooks``):

- ``varnish:http://HOST:PORT`` -> ``PURGE /`` with ``xkey-purge: TAG`` (the shipped
  ``config/varnish/default.vcl`` answers it from its ``purgers`` ACL with varnish-modules' xkey);
- ``fastly:SERVICE_ID`` -> ``POST {fastly_api_url}/service/SERVICE_ID/purge/TAG`` with the
  ``Fastly-Key`` header (Fastly API, "purge by surrogate key");
- ``cloudflare:ZONE_ID`` -> ``POST {cloudflare_api_url}/zones/ZONE_ID/purge_cache`` with
  ``{"tags": [TAG]}`` and a bearer token (Cloudflare API, "purge cached content by tag");
- ``webhook:URL`` -> ``POST URL`` with ``{"surrogate_key", "origin", "key"}`` as JSON.

Each hook is tried up to ``1 + retries`` times (a transport error, 429 or 5xx is retried after
0.2 s, 0.4 s, ...); its result says what happened. Tokens never appear in a result or a log line.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

_log = logging.getLogger("edgeproxy.purge")
HOOK_KINDS = ("varnish", "fastly", "cloudflare", "webhook")


@dataclass(frozen=True, slots=True)
class PurgeHook:
    """One configured hook: ``kind`` (``HOOK_KINDS``) and its ``target`` (a URL, service or zone id)."""

    kind: str
    target: str

    @classmethod
    def parse(cls, text: str) -> PurgeHook:
        """``KIND:TARGET`` -> hook.

        Raises:
            ValueError: unknown kind, empty target, or a URL target that is not http(s)://.
        """
        kind, sep, target = text.partition(":")
        if not sep or kind not in HOOK_KINDS or not target:
            raise ValueError(f"purge hook {text!r}: expected KIND:TARGET with KIND one of {', '.join(HOOK_KINDS)}")
        if kind in ("varnish", "webhook") and not target.startswith(("http://", "https://")):
            raise ValueError(f"purge hook {text!r}: the target must be an http(s):// URL")
        return cls(kind, target)

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True, slots=True)
class CdnApis:
    """Where and as whom the CDN APIs are called (from settings; the URLs are settings so that
    tests and operators behind a gateway can point them elsewhere)."""

    fastly_url: str = "https://api.fastly.com"
    fastly_token: str | None = None
    cloudflare_url: str = "https://api.cloudflare.com/client/v4"
    cloudflare_token: str | None = None


def hook_request(hook: PurgeHook, tag: str, origin: str | None, key: str | None, apis: CdnApis) -> httpx.Request:
    """The HTTP request that purges ``tag`` through ``hook``."""
    if hook.kind == "varnish":
        return httpx.Request("PURGE", hook.target.rstrip("/") + "/", headers={"xkey-purge": tag})
    if hook.kind == "fastly":
        return httpx.Request("POST", f"{apis.fastly_url.rstrip('/')}/service/{hook.target}/purge/{tag}",
                             headers={"Fastly-Key": apis.fastly_token or "", "Accept": "application/json"})
    if hook.kind == "cloudflare":
        return httpx.Request("POST", f"{apis.cloudflare_url.rstrip('/')}/zones/{hook.target}/purge_cache",
                             json={"tags": [tag]}, headers={"Authorization": f"Bearer {apis.cloudflare_token or ''}"})
    return httpx.Request("POST", hook.target, json={"surrogate_key": tag, "origin": origin, "key": key})


async def _call(client: httpx.AsyncClient, hook: PurgeHook, request: httpx.Request, retries: int) -> dict[str, Any]:
    result: dict[str, Any] = {"hook": str(hook), "ok": False, "status": None, "attempts": 0, "error": None}
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(0.2 * 2 ** (attempt - 1))
        result["attempts"] = attempt + 1
        try:
            response = await client.send(request)
        except httpx.HTTPError as exc:
            result["status"], result["error"] = None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            continue
        result["status"] = response.status_code
        if response.is_success:
            result["ok"], result["error"] = True, None
            return result
        result["error"] = f"answered {response.status_code}"
        if response.status_code != 429 and response.status_code < 500:
            break  # a refusal (bad token, unknown zone) does not improve with retries
    _log.warning("purge hook failed", extra={"fields": {k: v for k, v in result.items() if k != "ok"}})
    return result


async def run_hooks(client: httpx.AsyncClient, hooks: list[PurgeHook], tag: str, *, origin: str | None = None,
                    key: str | None = None, apis: CdnApis, retries: int) -> list[dict[str, Any]]:
    """Call every hook (concurrently) for ``tag``; one result per hook, in order:
    ``{"hook", "ok", "status", "attempts", "error"}``. Never raises for a hook's failure."""
    calls = [_call(client, hook, hook_request(hook, tag, origin, key, apis), retries) for hook in hooks]
    return list(await asyncio.gather(*calls))
