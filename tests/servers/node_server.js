// Node's http module for the RED tests: node node_server.js PORT
// /sleep/MS answers after MS ms, /status/N with status N, anything else 200.
const http = require("http");
const port = Number(process.argv[2]);
http.createServer((req, res) => {
  const parts = req.url.split("?")[0].split("/").filter(Boolean);
  const answer = (status) => { res.writeHead(status, { "Content-Length": "3" }); res.end("ok\n"); };
  if (parts[0] === "sleep") setTimeout(() => answer(200), Number(parts[1]));
  else if (parts[0] === "status") answer(Number(parts[1]));
  else answer(200);
}).listen(port, "127.0.0.1");
