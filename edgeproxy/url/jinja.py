"""The URL builder's Jinja2 filters (``UrlBuilder.jinja2_filters``, ``install_jinja2``): templates
write ``{{ key | edgeproxy_url("media", width=400) }}``. Jinja2 is not a dependency of edgeproxy; the
filters need only ``markupsafe`` (which comes with Jinja2) when ``edgeproxy_picture`` or
``edgeproxy_preload`` is called."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeproxy.url.builders import UrlBuilder


def filters(builder: UrlBuilder) -> dict[str, Callable[..., Any]]:
    """``builder``'s Jinja2 filters ``edgeproxy_url``, ``edgeproxy_srcset``, ``edgeproxy_picture`` and
    ``edgeproxy_preload`` (``preload_link``, for the ``<head>``).

    The filtered value is the object key, the first argument the origin, then the method's own
    arguments::

        {{ "photos/cat.jpg" | edgeproxy_url("media", width=400) }}
        <img srcset="{{ key | edgeproxy_srcset("media", [320, 640], aspect=(4, 3)) }}" ...>
        {{ product.image | edgeproxy_picture("media", [320, 640, 1280], alt=product.name,
                                             original=(product.w, product.h)) }}

    ``edgeproxy_picture`` and ``edgeproxy_preload`` return ``markupsafe.Markup`` (its HTML is already escaped, so
    autoescaping leaves it alone); the others return plain str, which autoescaping may escape
    harmlessly (the URLs hold no ``&``, ``<``, ``>`` or quotes). Raises as the methods do.
    """

    def edgeproxy_url(key: str, origin: str, **options: Any) -> str:
        return builder.url(origin, str(key), **options)

    def edgeproxy_srcset(key: str, origin: str, widths: Iterable[int] | None = None, **kwargs: Any) -> str:
        return builder.srcset(origin, str(key), widths, **kwargs)

    def edgeproxy_picture(key: str, origin: str, widths: Iterable[int], **kwargs: Any) -> str:
        from markupsafe import Markup  # comes with Jinja2, which is not a dependency of edgeproxy

        return Markup(builder.picture(origin, str(key), widths, **kwargs))  # escaped by picture

    def edgeproxy_preload(key: str, origin: str, widths: Iterable[int] | None = None, **kwargs: Any) -> str:
        from markupsafe import Markup

        return Markup(builder.preload_link(origin, str(key), widths, **kwargs))  # escaped by preload_link

    return {
        "edgeproxy_url": edgeproxy_url,
        "edgeproxy_srcset": edgeproxy_srcset,
        "edgeproxy_picture": edgeproxy_picture,
        "edgeproxy_preload": edgeproxy_preload,
    }
