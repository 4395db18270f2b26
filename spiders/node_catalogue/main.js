// A spider in plain Node.js (standard library only) that needs no database
// driver: it writes one JSON object per line to the pipe the crawlfleet node
// names in CRAWLFLEET_ITEMS_PIPE (or to stdout when run by hand).
//
//   node main.js [--base_url=http://127.0.0.1:8900] [--max_pages=N]
"use strict";

const fs = require("fs");
const http = require("http");

function option(name, fallback) {
  const prefix = `--${name}=`;
  const arg = process.argv.slice(2).find((a) => a.startsWith(prefix));
  if (arg) return arg.slice(prefix.length);
  const fromTask = JSON.parse(process.env.CRAWLFLEET_ARGS || "{}")[name];
  return fromTask !== undefined ? String(fromTask) : fallback;
}

const baseUrl = option("base_url", process.env.CRAWLFLEET_DEMO_URL || "http://127.0.0.1:8900").replace(/\/$/, "");
const maxPages = parseInt(option("max_pages", "0"), 10) || Infinity;
const out = process.env.CRAWLFLEET_ITEMS_PIPE
  ? fs.createWriteStream(process.env.CRAWLFLEET_ITEMS_PIPE, { flags: "a" })
  : process.stdout;

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    }).on("error", reject);
  });
}

function decode(text) {
  return text
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&#x27;|&#39;/g, "'").replace(/&amp;/g, "&");
}

function products(html, pageUrl) {
  const items = [];
  const pods = html.split('<article class="product_pod">').slice(1);
  for (const pod of pods) {
    const link = /<h3><a href="([^"]+)" title="([^"]*)"/.exec(pod);
    const price = /class="price_color">[^0-9]*([0-9.]+)</.exec(pod);
    if (!link) continue;
    items.push({
      title: decode(link[2]),
      price: price ? parseFloat(price[1]) : null,
      url: new URL(link[1], pageUrl).href,
      crawled_by: "node.js",
    });
  }
  return items;
}

async function main() {
  let url = `${baseUrl}/catalogue/page-1.html`;
  let pages = 0;
  let count = 0;
  while (url && pages < maxPages) {
    const res = await get(url);
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
    pages += 1;
    for (const item of products(res.body, url)) {
      out.write(JSON.stringify(item) + "\n");
      count += 1;
    }
    console.log(`[node_catalogue] page ${pages}: ${count} items so far`);
    const next = /<li class="next"><a href="([^"]+)"/.exec(res.body);
    url = next ? new URL(next[1], url).href : null;
  }
  if (out !== process.stdout) await new Promise((resolve) => out.end(resolve));
  console.log(`[node_catalogue] done: ${count} items from ${pages} pages`);
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
