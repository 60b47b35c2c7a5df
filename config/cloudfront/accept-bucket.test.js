// node --test config/cloudfront/  (Node 18+; no dependencies)
//
// Every row of config/accept-buckets.json, the table that also drives the Varnish test and is
// checked against the proxy's own rules (tests/test_cdn_recipes.py), through the function's pure
// rules and through its CloudFront handler with a CloudFront-shaped event.

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');

const fn = require('./accept-bucket.js');

const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'accept-buckets.json'), 'utf8'));

function event(uri, accept, querystring) {
    const headers = {host: {value: 'images.example.com'}};
    if (accept !== null) {
        headers.accept = {value: accept};
    }
    return {
        version: '1.0',
        context: {eventType: 'viewer-request'},
        viewer: {ip: '192.0.2.1'},
        request: {method: 'GET', uri, querystring: querystring || {}, headers, cookies: {}},
    };
}

test('the table has at least 20 cases and the three buckets', () => {
    assert.ok(table.cases.length >= 20, `${table.cases.length} cases`);
    assert.deepEqual(table.buckets, fn.BUCKETS);
});

for (const row of table.cases) {
    test(`${row.client}: ${JSON.stringify(row.accept)} -> ${row.bucket}`, () => {
        assert.equal(fn.acceptBucket(row.accept), row.bucket);
        assert.equal(fn.normaliseAccept(row.accept), table.buckets[row.bucket]);
        // The bucket's own spelling stays in the bucket (normalising twice changes nothing).
        assert.equal(fn.acceptBucket(table.buckets[row.bucket]), row.bucket);

        const request = fn.handler(event('/sig/w:300/f:auto/demo/photo.jpg', row.accept));
        assert.equal(request.uri, '/sig/w:300/f:auto/demo/photo.jpg');
        assert.deepEqual(request.headers.accept, {value: table.buckets[row.bucket]});
        assert.deepEqual(request.headers.host, {value: 'images.example.com'});
    });
}

test('operator routes and one-segment paths are a 404 at the edge', () => {
    for (const uri of ['/metrics', '/readyz', '/healthz', '/purge', '/', '/%6Detrics', '//metrics',
                       '/metrics/', '/favicon.ico']) {
        const response = fn.handler(event(uri, '*/*'));
        assert.equal(response.statusCode, 404, uri);
    }
});

test('a query string is a 400 at the edge', () => {
    const response = fn.handler(event('/sig/w:300/demo/photo.jpg', 'image/webp', {cb: {value: '1'}}));
    assert.equal(response.statusCode, 400);
    assert.match(response.body, /query string/);
});
