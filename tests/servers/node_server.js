// Node's http module for the RED tests: node node_server.js PORT [CERT KEY]
// With CERT and KEY, its https module (Node's own bundled OpenSSL).
// /sleep/MS answers after MS ms, /status/N with status N, anything else 200.
const fs = require("fs");
const port = Number(process.argv[2]);
const handler = (req, res) => {
  const parts = req.url.split("?")[0].split("/").filter(Boolean);
  const answer = (status) => { res.writeHead(status, { "Content-Length": "3" }); res.end("ok\n"); };
  if (parts[0] === "sleep") setTimeout(() => answer(200), Number(parts[1]));
  else if (parts[0] === "status") answer(Number(parts[1]));
  else answer(200);
};
const server = process.argv.length > 4
  ? require("https").createServer({ cert: fs.readFileSync(process.argv[3]), key: fs.readFileSync(process.argv[4]) }, handler)
  : require("http").createServer(handler);
server.listen(port, "127.0.0.1");
