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
0.2 s, 0.4 s, ...); its result says what happened. Tokens never appear in a result or a log line:
the CDN API tokens are settings of their own, and a URL target is shown as ``PurgeHook.shown``,
with what may be a secret in it masked (``mask_url``): its userinfo (``https://user:pass@host``),
its query values (``?token=...``), its fragment, and path segments that look like tokens (Slack's
``/services/T…/B…/TOKEN``, Discord's ``/api/webhooks/ID/TOKEN``). The request itself is sent with
them (userinfo as HTTP Basic authentication, RFC 7617).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

_log = logging.getLogger("edgeproxy.purge")
HOOK_KINDS = ("varnish", "fastly", "cloudflare", "webhook")
#: What a masked secret is shown as.
HIDDEN = "***"
#: Path segments treated as tokens: 16+ characters with a digit, or with both cases (random-looking),
#: or 32+ characters of anything.
_TOKEN_CHARS = 16
_LONG_SEGMENT = 32


def _looks_like_token(segment: str) -> bool:
    if len(segment) >= _LONG_SEGMENT:
        return True
    return len(segment) >= _TOKEN_CHARS and (
        any(c.isdigit() for c in segment) or (any(c.islower() for c in segment) and any(c.isupper() for c in segment))
    )


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` that ``mask_url`` hides, raw and percent-decoded, longest first."""
    parts = urlsplit(url)
    found = []
    userinfo, at, _host = parts.netloc.rpartition("@")
    if at:
        found += [userinfo, *userinfo.split(":")]
    found += [segment for segment in parts.path.split("/") if _looks_like_token(segment)]
    for pair in parts.query.split("&"):
        name, eq, value = pair.partition("=")
        found.append(value if eq else name)
    found.append(parts.fragment)
    found += [unquote(piece) for piece in found]
    return sorted({piece for piece in found if piece}, key=len, reverse=True)


def mask_url(url: str) -> str:
    """``url`` with every part that may be a secret replaced by ``HIDDEN``: the userinfo
    (``https://***@host/``), each query value (``?token=***&team=***``; a bare query item whole), the
    fragment, and each path segment that looks like a token (16 characters or more with a digit or
    both cases, or 32 or more). Scheme, host, port and the other path segments stay readable."""
    parts = urlsplit(url)
    _userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"{HIDDEN}@{host}" if at else parts.netloc
    path = "/".join(HIDDEN if _looks_like_token(segment) else segment for segment in parts.path.split("/"))
    query = (
        "&".join(
            f"{name}={HIDDEN}" if eq else (HIDDEN if name else "")
            for name, eq, _value in (pair.partition("=") for pair in parts.query.split("&"))
        )
        if parts.query
        else ""
    )
    return urlunsplit((parts.scheme, netloc, path, query, HIDDEN if parts.fragment else ""))


@dataclass(frozen=True, slots=True)
class PurgeHook:
    """One configured hook: ``kind`` (``HOOK_KINDS``) and its ``target`` (a URL, service or zone id).
    ``str()`` and ``repr()`` give ``shown``, never the target's secrets."""

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

    @property
    def shown(self) -> str:
        """``KIND:TARGET`` as answers, logs and ``check-config`` show it: a URL target through
        ``mask_url`` (service and zone ids are no secrets)."""
        return f"{self.kind}:{mask_url(self.target) if self.kind in ('varnish', 'webhook') else self.target}"

    def mask(self, text: str) -> str:
        """``text`` (an error message) with every secret of the target replaced by ``HIDDEN``."""
        if self.kind not in ("varnish", "webhook"):
            return text
        text = text.replace(self.target, mask_url(self.target))
        for secret in _secrets(self.target):
            text = text.replace(secret, HIDDEN)
        return text

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"PurgeHook({self.shown!r})"


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
        return httpx.Request(
            "POST",
            f"{apis.fastly_url.rstrip('/')}/service/{hook.target}/purge/{tag}",
            headers={"Fastly-Key": apis.fastly_token or "", "Accept": "application/json"},
        )
    if hook.kind == "cloudflare":
        return httpx.Request(
            "POST",
            f"{apis.cloudflare_url.rstrip('/')}/zones/{hook.target}/purge_cache",
            json={"tags": [tag]},
            headers={"Authorization": f"Bearer {apis.cloudflare_token or ''}"},
        )
    return httpx.Request("POST", hook.target, json={"surrogate_key": tag, "origin": origin, "key": key})


async def _call(client: httpx.AsyncClient, hook: PurgeHook, request: httpx.Request, retries: int) -> dict[str, Any]:
    result: dict[str, Any] = {"hook": hook.shown, "ok": False, "status": None, "attempts": 0, "error": None}
    for attempt in range(retries + 1):
        if attempt:
            await asyncio.sleep(0.2 * 2 ** (attempt - 1))
        result["attempts"] = attempt + 1
        try:
            response = await client.send(request)
        except httpx.HTTPError as exc:
            result["status"], result["error"] = (
                None,
                hook.mask(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__),
            )
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


async def run_hooks(
    client: httpx.AsyncClient,
    hooks: list[PurgeHook],
    tag: str,
    *,
    origin: str | None = None,
    key: str | None = None,
    apis: CdnApis,
    retries: int,
) -> list[dict[str, Any]]:
    """Call every hook (concurrently) for ``tag``; one result per hook, in order:
    ``{"hook", "ok", "status", "attempts", "error"}``. Never raises for a hook's failure."""
    calls = [_call(client, hook, hook_request(hook, tag, origin, key, apis), retries) for hook in hooks]
    return list(await asyncio.gather(*calls))


@dataclass(frozen=True, slots=True)
class Hooks:
    """The configured purge ``hooks``, called through ``client`` (operator-configured CDN endpoints:
    no SSRF guard) with ``apis`` and up to ``retries`` extra attempts each."""

    client: httpx.AsyncClient
    hooks: tuple[PurgeHook, ...]
    apis: CdnApis
    retries: int

    async def purge(self, tag: str, origin: str | None = None, key: str | None = None) -> list[dict[str, Any]]:
        """Purge ``tag`` through every hook (``run_hooks``): one result per hook, in order."""
        return await run_hooks(
            self.client, list(self.hooks), tag, origin=origin, key=key, apis=self.apis, retries=self.retries
        )

    async def aclose(self) -> None:
        """Close the hooks' HTTP client."""
        await self.client.aclose()
