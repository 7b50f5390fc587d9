// A small real Node.js server for the Artillery fixture (loopback only, no database).
// GET /api/v1/health: a 0.5 ms busy loop; GET /api/v1/toybox: an 8 ms busy loop; JSON reply.
// One process, one event loop, the plain http module. Exits by itself after MAX_S seconds.
'use strict';
const http = require('http');
const PORT = Number(process.env.PORT || 18181);
const MAX_S = Number(process.env.MAX_S || 300);
const COST_MS = { '/api/v1/health': 0.5, '/api/v1/toybox': 8 };

function busy(ms) {
  const end = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  while (process.hrtime.bigint() < end) { /* spin */ }
}

const server = http.createServer((req, res) => {
  const cost = COST_MS[req.url.split('?')[0]];
  if (cost === undefined) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
    return;
  }
  busy(cost);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ok: true, url: req.url }));
});

server.listen(PORT, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${PORT}`));
setTimeout(() => { console.log('MAX_S reached, exiting'); process.exit(0); }, MAX_S * 1000).unref();
process.on('SIGTERM', () => server.close(() => process.exit(0)));
