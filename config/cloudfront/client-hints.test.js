// node --test config/cloudfront/*.test.js  (Node 18+; no dependencies)
//
// Every row of config/client-hint-buckets.json (the table the shipped VCL and the proxy's own
// negotiation are checked against in tests/test_cdn_recipes.py) through the function's rules and
// its CloudFront handler; which URLs keep which hint; the cache policy that keys on them.

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');

const fn = require('./accept-bucket.js');

const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'client-hint-buckets.json'), 'utf8'));
const policy = JSON.parse(fs.readFileSync(path.join(__dirname, 'cache-policy.json'), 'utf8'));
// A URL that reads all three hints: w:auto, dpr:auto, no q.
const READS_ALL = '/sig/w:auto/dpr:auto/f:webp/demo/photo.jpg';

function event(uri, headers) {
    const cf = {host: {value: 'images.example.com'}, accept: {value: 'image/avif,image/webp,*/*'}};
    for (const [name, value] of Object.entries(headers)) {
        if (value !== null) {
            cf[name.toLowerCase()] = {value};
        }
    }
    return {
        version: '1.0',
        context: {eventType: 'viewer-request'},
        viewer: {ip: '192.0.2.1'},
        request: {method: 'GET', uri, querystring: {}, headers: cf, cookies: {}},
    };
}

test('the table covers every hint, browser values and junk', () => {
    assert.ok(table.cases.length >= 60, `${table.cases.length} cases`);
    assert.deepEqual(Object.keys(table.buckets), ['Sec-CH-Width', 'Sec-CH-DPR', 'Save-Data']);
    assert.ok(table.cases.every((row) => typeof row.browser === 'boolean'), 'every row says browser: true or false');
    for (const header of Object.keys(table.buckets)) {
        const rows = table.cases.filter((row) => row.header === header);
        assert.ok(rows.some((row) => row.value === null && row.bucket === null), `${header}: no header`);
        assert.ok(rows.some((row) => row.bucket === null && row.value !== null), `${header}: a removed value`);
        for (const bucket of table.buckets[header]) {
            assert.ok(rows.some((row) => row.bucket === bucket), `${header}: no row for bucket ${bucket}`);
        }
    }
});

for (const row of table.cases) {
    test(`${row.header}: ${JSON.stringify(row.value)} -> ${JSON.stringify(row.bucket)}`, () => {
        const name = row.header.toLowerCase();
        if (row.value !== null) {
            assert.equal(fn.HINTS[name](row.value), row.bucket);
        }
        if (row.bucket !== null) {
            assert.ok(table.buckets[row.header].includes(row.bucket), row.bucket);
            assert.equal(fn.HINTS[name](row.bucket), row.bucket, 'a bucket is its own bucket');
        }
        const request = fn.handler(event(READS_ALL, {[row.header]: row.value}));
        assert.equal(request.uri, READS_ALL);
        assert.deepEqual(request.headers[name], row.bucket === null ? undefined : {value: row.bucket});
        assert.deepEqual(request.headers.host, {value: 'images.example.com'});
        assert.deepEqual(request.headers.accept, {value: 'image/avif,image/webp'});
    });
}

test('a hint the URL does not read is removed (CloudFront keys on it whatever the URL)', () => {
    const hints = {'Sec-CH-Width': '601', 'Sec-CH-DPR': '2.625', 'Save-Data': 'on'};
    const cases = [
        // uri, then the hints kept: [Sec-CH-Width, Sec-CH-DPR, Save-Data]
        ['/sig/w:300/f:webp/demo/photo.jpg', [null, null, 'on']],
        ['/sig/w:300/dpr:2/q:60/demo/photo.jpg', [null, null, null]],
        ['/sig/w:auto/demo/photo.jpg', ['640', null, 'on']],
        ['/sig/width:auto:400/quality:70/demo/photo.jpg', ['640', null, null]],
        ['/sig/W:AUTO/DPR:Auto/demo/photo.jpg', ['640', '3', 'on']],
        ['/sig/w%3Aauto/demo/photo.jpg', ['640', null, 'on']],
        ['/sig/w:300/dpr:auto/demo/photo.jpg', [null, '3', 'on']],
        ['/sig/pr:hero/demo/photo.jpg', ['640', '3', 'on']],
        ['/sig/preset:thumb:hero/q:50/demo/photo.jpg', ['640', '3', 'on']],
        ['/sig/%E0%A4%A/demo/photo.jpg', ['640', '3', 'on']],  // undecodable: keep all
        ['/sig/w:300/demo/w:auto/dpr:auto/photo.jpg', [null, null, 'on']],  // options end at the origin
    ];
    for (const [uri, kept] of cases) {
        const request = fn.handler(event(uri, hints));
        const got = ['sec-ch-width', 'sec-ch-dpr', 'save-data'].map((name) =>
            request.headers[name] ? request.headers[name].value : null);
        assert.deepEqual(got, kept, uri);
    }
});

test('the cache policy keys on Accept and the three hints, nothing else', () => {
    const params = policy.ParametersInCacheKeyAndForwardedToOrigin;
    const headers = params.HeadersConfig.Headers;
    assert.equal(params.HeadersConfig.HeaderBehavior, 'whitelist');
    assert.deepEqual(headers.Items, ['Accept', ...Object.keys(table.buckets)]);
    assert.equal(headers.Quantity, headers.Items.length);
    assert.equal(params.CookiesConfig.CookieBehavior, 'none');
    assert.equal(params.QueryStringsConfig.QueryStringBehavior, 'none');
    assert.equal(policy.MinTTL, 0);
    // Every header the function rewrites is in the key, and every header of the key is rewritten.
    assert.deepEqual(headers.Items.map((h) => h.toLowerCase()).sort(), ['accept', ...Object.keys(fn.HINTS)].sort());
});

test('the function fits CloudFront Functions\' 10 KB limit', () => {
    const size = fs.statSync(path.join(__dirname, 'accept-bucket.js')).size;
    assert.ok(size <= 10 * 1024, `${size} bytes`);
});
