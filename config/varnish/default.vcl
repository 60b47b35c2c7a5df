vcl 4.1;

# edgeproxy behind Varnish (6.0 LTS or 7.x, with varnish-modules for xkey).
#
#   varnishd -a :80 -f /etc/varnish/default.vcl -s malloc,1g
#
# What this file does, in the order a request meets it (each part is commented where it is made):
#
#   backends, vcl_init    the proxies, each probed on /healthz, in a round-robin director
#                         (one by default; add a backend and one add_backend line per proxy).
#   vcl_recv              PURGE by surrogate key (xkey) for the purgers ACL; only GET, HEAD and
#                         PURGE; only transform URLs and /info URLs (/metrics, /readyz, /healthz,
#                         /purge and any other one-segment path are a 404 here and never reach the
#                         proxy); a query string is a 400 here; Accept is rewritten into one of
#                         three buckets before the Vary: Accept lookup, so that one URL makes at
#                         most three objects (and three renders) instead of one per browser build;
#                         the client hints (Sec-CH-Width, Sec-CH-DPR, Save-Data) are rewritten to
#                         the bucket the proxy rounds them to (sub edgeproxy_client_hints); grace
#                         (serving an expired object) is short while a proxy is healthy, long
#                         while none is.
#   vcl_backend_response  Surrogate-Key -> xkey (errors included); the proxy's 4xx are cached for
#                         their max-age (Varnish caches only 404 and a few others by default), 5xx
#                         for their max-age=1, never as a long hit-for-miss; grace for immutable
#                         derivatives, and for the fast tier of a quality target as long as its
#                         stale-while-revalidate says; none for errors, for URLs that expire
#                         (exp:) or for any other answer (moderation, origin outage).
#   vcl_backend_error     a fetch that failed (a proxy restarting: connection refused or reset,
#                         timeout) is retried once, on the director's next proxy.
#   vcl_deliver           Surrogate-Key, Cache-Tag, Server-Timing and xkey are stripped, unless
#                         the client is in the show_internal_headers ACL (the switch below).
#
# The Accept buckets are shared with the CloudFront Function (config/cloudfront/) and documented
# with real-world Accept strings in config/accept-buckets.json; tests/test_cdn_recipes.py runs this
# file in front of the proxy with every row of that table. Change them together. Likewise the
# client hint buckets and config/client-hint-buckets.json.

import directors;
import std;
import xkey;

# Health: Varnish asks every proxy GET /healthz each second (answered by the event loop even under
# full render load, docs/observability.md); a proxy is sick after 2 failures among the last 3
# probes (about 2 s after it stops) and healthy again after 2 successes (1 to 2 s after it
# answers). A sick proxy gets no requests from the director. .initial = .threshold: healthy from
# Varnish's start, before the first probe.
probe edgeproxy_health {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
    .initial = 2;
}

# The proxy (edgeproxy serve --host 127.0.0.1 --port 8080). Its own request deadline decides how
# long a render may take; keep .first_byte_timeout (default 60 s) above it.
backend default {
    .host = "127.0.0.1";
    .port = "8080";
    .probe = edgeproxy_health;
}

# More proxies (several pods, or two processes for restarts without errors): one backend each,
# with the same probe, and one add_backend line each in vcl_init below, e.g.
#
#   backend proxy2 {
#       .host = "10.0.0.12";
#       .port = "8080";
#       .probe = edgeproxy_health;
#   }
#
# With a single proxy, a restart still costs the requests that miss while it is down (a 503
# after the retry): run two behind this director (config/cdn.md, "Restarts").

sub vcl_init {
    new proxies = directors.round_robin();
    proxies.add_backend(default);
    # proxies.add_backend(proxy2);
}

# --------------------------------------------------------------------------------------------------
# SWITCH: who sees the proxy's internal headers.
#
# Surrogate-Key, Cache-Tag (the original's purge tag), Server-Timing (fetch, queue, render, total
# in ms) and xkey are stripped from every response, except to the clients listed here. Empty (the
# default): stripped for everyone. List addresses to keep them for those clients, e.g.
# "127.0.0.1"; to debug from the cache host, or "0.0.0.0"/0; and "::"/0; to keep them for
# everybody (a staging cache).
acl show_internal_headers {
}

# Who may send PURGE (cache invalidation by surrogate key). Localhost by default: run the purging
# job on the cache host, or add its addresses. THE PROXY ITSELF must be listed when its `varnish:`
# purge hook is used (POST /purge and `edgeproxy purge` send PURGE from the proxy's address): in
# the container example (docs/container.md, EDGEPROXY_PURGE_HOOKS='["varnish:http://varnish:6081"]')
# that is the proxy container's address on the container network, e.g. "10.88.0.0"/16 for
# podman's default network or "172.17.0.0"/16 for Docker's; in Kubernetes the pod network's CIDR.
# Otherwise the hook gets a 403 and POST /purge answers 502. Behind a TLS terminator that speaks
# the PROXY protocol, client.ip is the real client; otherwise it is the terminator's address.
acl purgers {
    "127.0.0.1";
    "::1";
}
# --------------------------------------------------------------------------------------------------

sub vcl_recv {
    # Invalidation: `PURGE / HTTP/1.1` with `xkey-purge: k0123456789abcdef [k... ...]` (one or
    # more Surrogate-Key tags, space-separated) removes every cached derivative of those originals,
    # whatever their URL, options or Accept bucket. The answer is 200 with the number of objects
    # removed (body and the Xkey-Purged header). For a softer invalidation that keeps the objects
    # for grace and revalidation, use xkey.softpurge instead.
    if (req.method == "PURGE") {
        unset req.http.Xkey-Purged;  # set below, from xkey's count, never by the client
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.xkey-purge) {
            return (synth(400, "PURGE needs an xkey-purge header: TAG [TAG...]"));
        }
        set req.http.Xkey-Purged = xkey.purge(req.http.xkey-purge);
        return (synth(200, "Purged"));
    }

    # The proxy serves GET and HEAD; nothing else is forwarded (POST /purge is the proxy's admin
    # route and is reached directly, never through the cache).
    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "Method Not Allowed"));
    }

    # Only transform URLs and /info URLs go to the proxy. A transform URL is /{signature}/{options...}/
    # {origin}/{key}, and a signature is base64url (or the development-only "unsafe"), so the first
    # segment is [A-Za-z0-9_-]+ and at least one segment follows. /info/{signature}/{origin}/{key}
    # (docs/info.md) has the same shape and passes on purpose: it is signed, answers JSON
    # cached moderation_max_age with the original's surrogate key (so a purge clears it), and the
    # Authorization header is removed below, so the CDN only ever stores the public answer.
    # Everything else is a 404 here: the operator routes (/metrics, /readyz:
    # docs/observability.md; /healthz has no business at the edge either; /purge is an admin route),
    # their percent-encoded spellings (the proxy decodes %6D before routing, Varnish does not), and
    # one-segment paths such as /favicon.ico, which the proxy would answer 404 anyway. The routes
    # are also named explicitly, for whoever edits the rule below.
    if (req.url ~ "(?i)^/(metrics|readyz|healthz|purge)(/|\?|$)" ||
        req.url !~ "^/[A-Za-z0-9_-]+/[^/?]") {
        return (synth(404, "Not Found"));
    }

    # Query strings: refused here with the proxy's own answer (400), not stripped. The query is not
    # signed and the proxy refuses it (docs/url-grammar.md); answering here saves the round trip
    # and keeps the CDN's behaviour identical to the proxy's, whereas stripping would silently
    # serve a URL other than the one asked for (a page relying on ?w=300 would get the wrong image,
    # cached). A bare trailing "?" carries no query (the proxy serves it): it is dropped, so it
    # shares the object of the URL without it.
    if (req.url ~ "\?$") {
        set req.url = regsub(req.url, "\?$", "");
    }
    if (req.url ~ "\?") {
        return (synth(400, "query strings are not part of signed URLs: put every option in the path"));
    }

    # The proxy reads neither cookies nor credentials (URLs are signed), and the builtin VCL would
    # pass (never cache) every request that carries them.
    unset req.http.Cookie;
    unset req.http.Authorization;

    # Accept -> one of three buckets (config/accept-buckets.json), before the Vary: Accept lookup.
    # f:auto answers differ only by which of AVIF and WebP Accept lists with q > 0, so:
    #
    #   AVIF and WebP with q > 0      -> Accept: image/avif,image/webp   (bucket avif+webp)
    #   WebP with q > 0, AVIF not     -> Accept: image/webp              (bucket webp)
    #   anything else                 -> Accept: */*                     (bucket none)
    #
    # "Anything else" includes no Accept, an empty one, wildcards only (*/* and image/* never
    # count: old clients send them without decoding either format), image/jxl (the proxy does not
    # negotiate JPEG XL), and AVIF without WebP (the proxy would answer GIF for an animated source
    # to such a client: none is always acceptable, a fourth bucket not worth its renders).
    #
    # The rules are the proxy's (edgeproxy.http.negotiate.accepted_image_types), in regular expressions:
    # - Every "," ";" "=" loses the whitespace around it, and the header is wrapped in commas, so
    #   each entry is ",type;param;param," and spacing such as "image/avif ; q = 0" is read right.
    # - An entry counts when its type is exactly image/avif or image/webp, case ignored ((?i)),
    #   followed by ";" or "," (so image/avif-sequence and image/webpx do not).
    # - Its q is its LAST parameter named q (Q too). It counts when there is no q parameter at all,
    #   or when that last q is a positive decimal: optional "+", digits with at most one ".", at
    #   least one non-zero digit (0, 0.0, 0.000, .0 are refusals; 1, 1.000, 0.001, .5 are not), and
    #   an optional exponent of up to two digits. An empty, bare or unparsable q ("q=", "q",
    #   "q=abc", "q=1x", "q=-1") is 0, as in the proxy. Any one counting entry is enough.
    # The vmod accept from varnish-modules is no substitute: it ignores parameters, so
    # "image/avif;q=0" would count as AVIF.
    # Only transform URLs reach this point (see above). If this Varnish also fronts other
    # applications, apply this block only to the proxy's host or prefix.
    set req.http.X-Accept-Entries = regsuball("," + req.http.Accept + ",", "\s*([,;=])\s*", "\1");
    if (req.http.X-Accept-Entries ~ "(?i),image/webp((;[^;,]*)*;q=\+?(?=[0-9.]*[1-9])([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?0*[0-9]{1,2})?)?(;(?!q[=;,])[^;,]*)*,") {
        if (req.http.X-Accept-Entries ~ "(?i),image/avif((;[^;,]*)*;q=\+?(?=[0-9.]*[1-9])([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?0*[0-9]{1,2})?)?(;(?!q[=;,])[^;,]*)*,") {
            set req.http.Accept = "image/avif,image/webp";
        } else {
            set req.http.Accept = "image/webp";
        }
    } else {
        set req.http.Accept = "*/*";
    }
    unset req.http.X-Accept-Entries;

    # Sec-CH-Width, Sec-CH-DPR, Save-Data -> the proxy's buckets, before the Vary lookup (below).
    call edgeproxy_client_hints;

    # Misses go to the proxies in turn, skipping sick ones (the probe above).
    set req.backend_hint = proxies.backend();

    # Grace: only immutable derivatives and fast tiers have any (vcl_backend_response). While a proxy
    # is healthy, an expired one is served at most 10 s past its TTL while it is fetched again in the
    # background; while none is (every proxy restarting or down), for as long as its grace (24 h for
    # an immutable derivative, its stale-while-revalidate for a fast tier).
    if (std.healthy(req.backend_hint)) {
        set req.grace = 10s;
    }

    # Cache lookup (the builtin vcl_hash: URL and Host). If several host names front the same
    # proxy, hash on req.url alone in a vcl_hash of your own to share their objects.
    return (hash);
}

# --------------------------------------------------------------------------------------------------
# Client hints -> buckets (config/client-hint-buckets.json). With client_hints = true the proxy
# reads Sec-CH-Width for w:auto URLs, Sec-CH-DPR for dpr:auto URLs and Save-Data for URLs without
# q, names each one it read in Vary, and rounds the hints UP to buckets. Varnish varies on the header
# as the client sent it, so Sec-CH-Width: 601, 602, ... would each make an object (and a render) of
# the same 640-pixel answer. So each header is rewritten to one of a few values, or removed:
#
#   Sec-CH-Width   160 240 320 368 424 480 560 640 750 828 960 1080 1240 1440 1680 1920 2240
#                  2560 3072 3840          (the first at or above the value, the last above them all)
#   Sec-CH-DPR     1 1.5 2 3 4             (likewise)
#   Save-Data      on                      ("on" in any case, else removed)
#
# THE BUCKETS MUST MATCH THE PROXY'S auto_width_buckets AND auto_dpr_buckets (these are the
# defaults): with other ones the proxy rounds Varnish's bucket up again, so clients get a larger
# image than they asked for, and two Varnish buckets may render the same proxy bucket twice.
# A hint is read only as a plain decimal, [ \t]*[0-9]{1,6}(\.[0-9]{1,20})?[ \t]*, which covers what
# browsers send (integer widths; DPRs such as 1, 1.5, 2.625, 1.100000023841858), and is rounded up
# exactly: 0 and 0.5 go to the first bucket (the proxy clamps them to 1), 640.0001 to 750 (and
# 1.0000000000000001 to 1.5, which the proxy's float() reads as 1; no browser sends it). Anything
# else (a sign, an exponent, "_", "inf", "640px", 7 integer digits) is removed, and the proxy
# answers as to no hint. That is safe because the backend sees the rewritten header, not the
# client's: the proxy renders for exactly the value the object is keyed on, so the cache stays
# coherent whatever a client sends. With client_hints off the proxy reads none of these headers.

sub edgeproxy_client_hints {
    set req.http.X-Hint = req.http.Sec-CH-Width;
    call edgeproxy_hint_thousandths;
    if (!req.http.X-Hint) {
        unset req.http.Sec-CH-Width;
    } elsif (std.integer(req.http.X-Hint, 0) <= 160000) {
        set req.http.Sec-CH-Width = "160";
    } elsif (std.integer(req.http.X-Hint, 0) <= 240000) {
        set req.http.Sec-CH-Width = "240";
    } elsif (std.integer(req.http.X-Hint, 0) <= 320000) {
        set req.http.Sec-CH-Width = "320";
    } elsif (std.integer(req.http.X-Hint, 0) <= 368000) {
        set req.http.Sec-CH-Width = "368";
    } elsif (std.integer(req.http.X-Hint, 0) <= 424000) {
        set req.http.Sec-CH-Width = "424";
    } elsif (std.integer(req.http.X-Hint, 0) <= 480000) {
        set req.http.Sec-CH-Width = "480";
    } elsif (std.integer(req.http.X-Hint, 0) <= 560000) {
        set req.http.Sec-CH-Width = "560";
    } elsif (std.integer(req.http.X-Hint, 0) <= 640000) {
        set req.http.Sec-CH-Width = "640";
    } elsif (std.integer(req.http.X-Hint, 0) <= 750000) {
        set req.http.Sec-CH-Width = "750";
    } elsif (std.integer(req.http.X-Hint, 0) <= 828000) {
        set req.http.Sec-CH-Width = "828";
    } elsif (std.integer(req.http.X-Hint, 0) <= 960000) {
        set req.http.Sec-CH-Width = "960";
    } elsif (std.integer(req.http.X-Hint, 0) <= 1080000) {
        set req.http.Sec-CH-Width = "1080";
    } elsif (std.integer(req.http.X-Hint, 0) <= 1240000) {
        set req.http.Sec-CH-Width = "1240";
    } elsif (std.integer(req.http.X-Hint, 0) <= 1440000) {
        set req.http.Sec-CH-Width = "1440";
    } elsif (std.integer(req.http.X-Hint, 0) <= 1680000) {
        set req.http.Sec-CH-Width = "1680";
    } elsif (std.integer(req.http.X-Hint, 0) <= 1920000) {
        set req.http.Sec-CH-Width = "1920";
    } elsif (std.integer(req.http.X-Hint, 0) <= 2240000) {
        set req.http.Sec-CH-Width = "2240";
    } elsif (std.integer(req.http.X-Hint, 0) <= 2560000) {
        set req.http.Sec-CH-Width = "2560";
    } elsif (std.integer(req.http.X-Hint, 0) <= 3072000) {
        set req.http.Sec-CH-Width = "3072";
    } else {
        set req.http.Sec-CH-Width = "3840";
    }

    set req.http.X-Hint = req.http.Sec-CH-DPR;
    call edgeproxy_hint_thousandths;
    if (!req.http.X-Hint) {
        unset req.http.Sec-CH-DPR;
    } elsif (std.integer(req.http.X-Hint, 0) <= 1000) {
        set req.http.Sec-CH-DPR = "1";
    } elsif (std.integer(req.http.X-Hint, 0) <= 1500) {
        set req.http.Sec-CH-DPR = "1.5";
    } elsif (std.integer(req.http.X-Hint, 0) <= 2000) {
        set req.http.Sec-CH-DPR = "2";
    } elsif (std.integer(req.http.X-Hint, 0) <= 3000) {
        set req.http.Sec-CH-DPR = "3";
    } else {
        set req.http.Sec-CH-DPR = "4";
    }
    unset req.http.X-Hint;

    if (req.http.Save-Data ~ "(?i)^[ \t]*on[ \t]*$") {
        set req.http.Save-Data = "on";
    } else {
        unset req.http.Save-Data;
    }
}

# req.http.X-Hint: a plain decimal x -> ceil(1000 x) (its integer part and first three decimals,
# padded with zeros, plus one when a non-zero decimal follows), exact at any number of decimals,
# so x <= bucket exactly when ceil(1000 x) <= 1000 bucket. Anything else -> removed.
sub edgeproxy_hint_thousandths {
    if (req.http.X-Hint !~ "^[ \t]*[0-9]{1,6}(\.[0-9]{1,20})?[ \t]*$") {
        unset req.http.X-Hint;
    } else {
        set req.http.X-Hint = regsub(req.http.X-Hint, "^[ \t]*([0-9]+)\.?([0-9]*)[ \t]*$", "\1.\2000");
        if (req.http.X-Hint ~ "\.[0-9]{3}[0-9]*[1-9]") {
            set req.http.X-Hint = 1 + std.integer(regsub(req.http.X-Hint, "^([0-9]+)\.([0-9]{3}).*$", "\1\2"), 0);
        } else {
            set req.http.X-Hint = regsub(req.http.X-Hint, "^([0-9]+)\.([0-9]{3}).*$", "\1\2");
        }
    }
}

sub vcl_backend_response {
    # Purge tags: the proxy sends one Surrogate-Key per original (also as Cache-Tag), on its
    # errors about the original too (404, 422, 451, 5xx...); xkey indexes the object, whatever its
    # status, under the keys of its xkey header, so one purge also clears a cached 404.
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }

    if (bereq.uncacheable) {
        return (deliver);
    }

    # Errors are cached for the max-age the proxy gives them: public, max-age=60 for 4xx (a bad
    # signature, an unsupported or corrupt original: the answer will not change), max-age=1 for
    # 5xx (an overload or origin failure should not be held). Varnish itself computes a TTL only
    # for 200, 203, 204, 300, 301, 302, 304, 307, 308, 404, 410 and 414 and gives every other
    # status -1, so without this 400, 403, 413, 415, 422 and the 5xx would all reach the proxy
    # every time (and become 120 s hit-for-miss objects in the builtin VCL).
    if (beresp.status >= 400 && beresp.ttl <= 0s &&
        beresp.http.Cache-Control !~ "(?i)no-store|no-cache|private") {
        if (beresp.http.Cache-Control ~ "(?i)(^|[,\s])s-maxage=[0-9]+") {
            set beresp.ttl = std.duration(regsub(beresp.http.Cache-Control,
                "(?i)^(.*[,\s])?s-maxage=([0-9]+).*$", "\2") + "s", 0s);
        } elsif (beresp.http.Cache-Control ~ "(?i)(^|[,\s])max-age=[0-9]+") {
            set beresp.ttl = std.duration(regsub(beresp.http.Cache-Control,
                "(?i)^(.*[,\s])?max-age=([0-9]+).*$", "\2") + "s", 0s);
        }
    }

    # Not serving stale: an error, or an answer that is neither immutable nor a fast tier (a URL
    # signed with exp:T is cacheable only until T, and a stale copy would outlive its expiry; a
    # moderated answer must not outlive its verdict; an original served stale by the proxy during
    # an origin outage is already stale), is never served in grace nor kept for revalidation.
    # Immutable derivatives, which change only through a purge (xkey.purge removes them, grace
    # included), may be served up to 24 h past their TTL while no proxy is healthy (vcl_recv).
    # The fast tier of a quality target (the first answer of a derivative whose optimised tier is
    # being made: public, max-age=300, stale-while-revalidate=86400; the proxy sends
    # stale-while-revalidate on nothing else) is kept for its max-age, never a year, and served stale
    # for as long as its stale-while-revalidate allows (RFC 5861): 10 s while a proxy is healthy,
    # during which the background fetch brings the optimised tier, immutable, with another ETag; the
    # whole of it while none is. Not kept longer for revalidation.
    if (beresp.status >= 400) {
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    } elsif (beresp.http.Cache-Control ~ "(?i)immutable") {
        set beresp.grace = 24h;
    } elsif (beresp.http.Cache-Control ~ "(?i)(^|[,\s])stale-while-revalidate=[0-9]+") {
        set beresp.grace = std.duration(regsub(beresp.http.Cache-Control,
            "(?i)^(.*[,\s])?stale-while-revalidate=([0-9]+).*$", "\2") + "s", 0s);
        set beresp.keep = 0s;
    } else {
        set beresp.grace = 0s;
        set beresp.keep = 0s;
    }

    # What Varnish must not store (no TTL, no-store, cookies, Vary: *): a hit-for-miss of 1 s
    # instead of the builtin 120 s, so that one uncacheable answer (say, a 500 without
    # Cache-Control from a crashing worker) does not switch off request coalescing for that URL
    # for two minutes.
    if (beresp.ttl <= 0s || beresp.http.Set-Cookie || beresp.http.Vary == "*" ||
        beresp.http.Cache-Control ~ "(?i)no-store|no-cache|private") {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
    }
    return (deliver);
}

sub vcl_backend_fetch {
    # A retry goes to another proxy than the one that failed. The round-robin director's turn is
    # shared by every fetch: under load, the next pick after a failure is often another fetch's, so
    # the retry could get the failing proxy again (a 503 while a proxy restarts). Resolved here to a
    # healthy proxy, and resolved once more if that is the one that failed (one proxy: the same one).
    if (bereq.retries > 0) {
        set bereq.backend = proxies.backend().resolve();
        if ("" + bereq.backend == bereq.http.X-Failed-Proxy) {
            set bereq.backend = proxies.backend().resolve();
        }
        unset bereq.http.X-Failed-Proxy;
    }
}

sub vcl_backend_error {
    # A fetch that failed (connection refused or reset, no answer within the timeouts: a proxy
    # stopping or starting before the probe noticed) is tried once more; the director hands the
    # retry to its next healthy proxy. Only GET and HEAD, which are idempotent (a miss is always
    # fetched with GET). An answer from the proxy, even a 5xx, is not retried: it is the proxy's
    # own answer (a 503 overload with Retry-After, a 502/504 about the origin).
    if (bereq.retries < 1 && (bereq.method == "GET" || bereq.method == "HEAD")) {
        set bereq.http.X-Failed-Proxy = beresp.backend.name;
        return (retry);
    }
    # Still failing: a short plain-text 503, never cached.
    set beresp.http.Content-Type = "text/plain; charset=utf-8";
    set beresp.http.Cache-Control = "no-store";
    set beresp.http.Retry-After = "1";
    set beresp.ttl = 0s;
    set beresp.grace = 0s;
    set beresp.keep = 0s;
    synthetic("503 no proxy answered" + {"
"});
    return (deliver);
}

sub vcl_deliver {
    # The switch at the top: internal headers are for the CDN and for debugging, not for clients.
    if (client.ip !~ show_internal_headers) {
        unset resp.http.Surrogate-Key;
        unset resp.http.Cache-Tag;
        unset resp.http.Server-Timing;
        unset resp.http.xkey;
    }
}

sub vcl_synth {
    # Answers made here (404 for non-transform paths, 400 for query strings, 405, PURGE results):
    # short plain text like the proxy's errors, and the proxy's error caching for 4xx.
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    if (req.method == "PURGE") {
        set resp.http.Cache-Control = "no-store";
        if (req.http.Xkey-Purged) {
            set resp.http.Xkey-Purged = req.http.Xkey-Purged;
            synthetic("purged " + req.http.Xkey-Purged + " objects" + {"
"});
            return (deliver);
        }
    } elsif (resp.status >= 400 && resp.status < 500) {
        set resp.http.Cache-Control = "public, max-age=60";
    }
    if (resp.status == 405) {
        set resp.http.Allow = "GET, HEAD";
    }
    synthetic(resp.status + " " + resp.reason + {"
"});
    return (deliver);
}
