// Prints, as JSON, the <picture> (and preload <link>) markup of the pages tests/test_lighthouse.py
// serves, written by the JavaScript URL builder (clients/js): the same specification the Python
// builder gets, read as JSON on stdin: {baseUrl, signingKey, images: [{origin, key, args, preload}]}.
// Out: {"pictures": [html, ...], "preloads": [html, ...]} in the order given.
import { readFileSync } from "node:fs";
import { UrlBuilder } from "../../clients/js/index.js";

const spec = JSON.parse(readFileSync(0, "utf8"));
const builder = new UrlBuilder({ baseUrl: spec.baseUrl, signingKey: spec.signingKey });
const pictures = [];
const preloads = [];
for (const image of spec.images) {
  pictures.push(builder.picture(image.origin, image.key, image.args));
  if (image.preload) preloads.push(builder.preloadLink(image.origin, image.key, image.args));
}
process.stdout.write(JSON.stringify({ pictures, preloads }));
