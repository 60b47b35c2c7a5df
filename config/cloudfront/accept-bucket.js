// edgeproxy: CloudFront Function (runtime cloudfront-js-2.0, event type viewer-request).
//
// Rewrites the viewer's Accept header into one of three buckets before CloudFront computes the
// cache key, so that the cache policy can key on Accept (the proxy answers f:auto URLs with
// Vary: Accept) without storing one copy per browser build:
//
//   avif+webp  Accept: image/avif,image/webp   AVIF and WebP both listed with q > 0
//   webp       Accept: image/webp              WebP listed with q > 0, AVIF not
//   none       Accept: */*                     anything else (no header, empty, wildcards only,
//                                              AVIF without WebP, everything refused with q=0)
//
// The rules are edgeproxy.http.negotiate.accepted_image_types, and the table config/accept-buckets.json
// (which the tests check against the proxy, this function and config/varnish/default.vcl) is the
// one truth:
// - an Accept entry counts when its media type is exactly image/avif or image/webp (ASCII case
//   ignored, whitespace around it ignored); wildcards (*/*, image/*) never count, nor do image/jxl
//   or look-alikes such as image/avif-sequence;
// - its q is the value of its last parameter named q (case ignored); no q means 1; a q that is
//   not a number (empty, "abc", "1x") is 0; the entry counts when q > 0 and finite. So
//   image/avif;q=0 is refused, and q=1.000, q=.5 and q = 0.5 are read as numbers;
// - AVIF without WebP goes to none: the proxy would answer GIF for an animated source to such a
//   client, and none (JPEG, PNG or GIF) is acceptable to every client.
//
// The function also answers, as config/varnish/default.vcl does, what must not reach the proxy
// through the CDN: a path that is not /{signature}/{...} (so /metrics, /readyz, /healthz, /purge)
// is a 404, and a query string is a 400 (the proxy refuses it anyway: it is not signed). The
// cache policy must still leave query strings out of the cache key (config/cloudfront/README.md).
//
// Client hints (config/client-hint-buckets.json, config/cloudfront/README.md): Sec-CH-Width and
// Sec-CH-DPR become the bucket they round up to (THE PROXY'S auto_width_buckets AND
// auto_dpr_buckets), Save-Data "on"; other values are removed. CloudFront ignores Vary, so a hint
// the URL does not read is removed too.
//
// Outside CloudFront (node --test config/cloudfront/) the pure functions are exported through
// module.exports; CloudFront's runtime has no `module`, and the typeof check keeps it quiet there.

var BUCKETS = {
    'avif+webp': 'image/avif,image/webp',
    'webp': 'image/webp',
    'none': '*/*'
};

// Python's float() on what a client may put in q: a plain decimal with an optional sign and
// exponent (1, 0.5, .5, 1., +1, 1e-3). Anything else is not a number, hence q = 0.
var NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function qValue(params) {
    var q = 1;
    for (var i = 0; i < params.length; i++) {
        var param = params[i];
        var eq = param.indexOf('=');
        var name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
        if (name !== 'q') {
            continue;
        }
        var value = eq < 0 ? '' : param.slice(eq + 1).trim();
        q = NUMBER.test(value) ? Number(value) : 0;
    }
    return q;
}

// Which of "avif" and "webp" the Accept header lists explicitly with q > 0.
function acceptedImageTypes(accept) {
    var found = {avif: false, webp: false};
    var items = String(accept || '').split(',');
    for (var i = 0; i < items.length; i++) {
        var parts = items[i].split(';');
        var media = parts[0].trim().toLowerCase();
        if (media !== 'image/avif' && media !== 'image/webp') {
            continue;
        }
        var q = qValue(parts.slice(1));
        if (q > 0 && isFinite(q)) {
            found[media.slice('image/'.length)] = true;
        }
    }
    return found;
}

// The bucket name: "avif+webp", "webp" or "none".
function acceptBucket(accept) {
    var found = acceptedImageTypes(accept);
    if (found.avif && found.webp) {
        return 'avif+webp';
    }
    return found.webp ? 'webp' : 'none';
}

// The Accept header the CDN keys on and forwards: the bucket's one spelling.
function normaliseAccept(accept) {
    return BUCKETS[acceptBucket(accept)];
}

var DEFAULT_PRESET_READS_HINTS = false;
var WIDTH_BUCKETS = [160, 240, 320, 368, 424, 480, 560, 640, 750, 828, 960, 1080, 1240, 1440, 1680, 1920, 2240, 2560, 3072, 3840];
var DPR_BUCKETS = [1, 1.5, 2, 3, 4];

// A plain decimal, spaces or tabs around it, as browsers send; anything else is removed.
var HINT = /^[ \t]*([0-9]{1,6})(?:\.([0-9]{1,20}))?[ \t]*$/;

// The first bucket at or above the hint (the last above them all), or null. Exact: ceil(1000 x) in
// integers, the first three decimals plus one when a non-zero digit follows, as in the VCL.
function hintBucket(value, buckets) {
    var match = HINT.exec(String(value || ''));
    if (!match) {
        return null;
    }
    var decimals = (match[2] || '') + '000';
    var thousandths = Number(match[1]) * 1000 + Number(decimals.slice(0, 3)) +
        (/[1-9]/.test(decimals.slice(3)) ? 1 : 0);
    for (var i = 0; i < buckets.length - 1 && buckets[i] * 1000 < thousandths; i++) {}
    return String(buckets[i]);
}

// Each hint header -> its bucket as a header value, or null (remove the header).
var HINTS = {
    'sec-ch-width': function (value) {
        return hintBucket(value, WIDTH_BUCKETS);
    },
    'sec-ch-dpr': function (value) {
        return hintBucket(value, DPR_BUCKETS);
    },
    'save-data': function (value) {
        return /^[ \t]*on[ \t]*$/i.test(String(value || '')) ? 'on' : null;
    }
};

// Which hints the URL's options can read: w:auto (width:auto), dpr:auto, no q (quality); all of
// them with pr: (preset:) or a segment that does not decode. Option names and "auto" are
// case-insensitive; options end at the first segment without ":" (the origin).
function hintsRead(uri) {
    var all = {'sec-ch-width': true, 'sec-ch-dpr': true, 'save-data': true};
    var read = {'sec-ch-width': false, 'sec-ch-dpr': false, 'save-data': true};
    var segments = uri.split('/');
    for (var i = 2; i < segments.length; i++) {
        var args;
        try {
            args = decodeURIComponent(segments[i]).split(':');
        } catch (e) {
            return all;
        }
        if (args.length < 2) {
            break;
        }
        var name = args[0].toLowerCase();
        var auto = args[1].toLowerCase() === 'auto';
        if (name === 'pr' || name === 'preset') {
            return all;
        } else if (name === 'w' || name === 'width') {
            read['sec-ch-width'] = auto;
        } else if (name === 'dpr') {
            read['sec-ch-dpr'] = auto && args.length === 2;
        } else if (name === 'q' || name === 'quality') {
            read['save-data'] = false;
        }
    }
    return DEFAULT_PRESET_READS_HINTS ? all : read;
}

// A transform URL: /{signature}/{at least one more segment}. A signature is base64url (or the
// development-only "unsafe"), so /metrics, /readyz, /healthz, /purge and percent-encoded
// spellings of them never match.
var TRANSFORM_PATH = /^\/[A-Za-z0-9_-]+\/[^\/]/;

function refusal(statusCode, statusDescription) {
    return {
        statusCode: statusCode,
        statusDescription: statusDescription,
        headers: {
            'content-type': {value: 'text/plain; charset=utf-8'},
            'cache-control': {value: 'public, max-age=60'}
        },
        body: statusCode + ' ' + statusDescription + '\n'
    };
}

function handler(event) {
    var request = event.request;
    if (!TRANSFORM_PATH.test(request.uri)) {
        return refusal(404, 'Not Found');
    }
    if (request.querystring && Object.keys(request.querystring).length > 0) {
        return refusal(400, 'query strings are not part of signed URLs');
    }
    var header = request.headers.accept;
    request.headers.accept = {value: normaliseAccept(header ? header.value : '')};
    var read = hintsRead(request.uri);
    for (var name in HINTS) {
        header = request.headers[name];
        var bucket = read[name] && header ? HINTS[name](header.value) : null;
        if (bucket === null) {
            delete request.headers[name];
        } else {
            request.headers[name] = {value: bucket};
        }
    }
    return request;
}

if (typeof module !== 'undefined') {
    module.exports = {
        BUCKETS: BUCKETS,
        acceptedImageTypes: acceptedImageTypes,
        acceptBucket: acceptBucket,
        normaliseAccept: normaliseAccept,
        HINTS: HINTS,
        hintsRead: hintsRead,
        handler: handler
    };
}
