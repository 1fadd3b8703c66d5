// Node's http2 module over TLS for the RED tests: node node_h2_server.js PORT CERT KEY
// (h2 only, through Node's own bundled OpenSSL). Answers as node_server.js does:
// /sleep/MS after MS ms, /status/N with status N, anything else 200.
const fs = require("fs");
const http2 = require("http2");
const port = Number(process.argv[2]);
const server = http2.createSecureServer({ cert: fs.readFileSync(process.argv[3]), key: fs.readFileSync(process.argv[4]) });
server.on("stream", (stream, headers) => {
  const parts = headers[":path"].split("?")[0].split("/").filter(Boolean);
  const answer = (status) => { stream.respond({ ":status": status, "content-length": "3" }); stream.end("ok\n"); };
  if (parts[0] === "sleep") setTimeout(() => answer(200), Number(parts[1]));
  else if (parts[0] === "status") answer(Number(parts[1]));
  else answer(200);
});
server.listen(port, "127.0.0.1");
