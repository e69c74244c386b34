// berth-http: the appliance's port-80 listener when Berth serves HTTPS on 443. It offers the
// appliance CA at /ca.crt (so clients can trust a generated certificate) and redirects everything
// else to HTTPS. Configuration: /var/lib/berth/config/http80.json (written by berth-setup).
import fs from 'node:fs';
import http from 'node:http';

export interface Http80Config {
  redirectBase: string | null;
  caFile: string | null;
}

export function handler(cfg: Http80Config): http.RequestListener {
  return (req, res) => {
    const url = req.url ?? '/';
    if ((url === '/ca.crt' || url === '/ca.pem') && (req.method === 'GET' || req.method === 'HEAD')) {
      let pem: Buffer | undefined;
      try {
        pem = cfg.caFile ? fs.readFileSync(cfg.caFile) : undefined;
      } catch {
        pem = undefined;
      }
      if (!pem) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('this appliance uses a supplied certificate; no appliance CA\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert', 'content-disposition': 'attachment; filename="berth-ca.crt"', 'content-length': pem.length });
      res.end(req.method === 'HEAD' ? undefined : pem);
      return;
    }
    let base = cfg.redirectBase;
    if (!base) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (!/^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/.test(host)) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('use https://\n');
        return;
      }
      base = `https://${host}`;
    }
    // 308 keeps the method and body (a registry client's PUT/POST stays a PUT/POST)
    res.writeHead(308, { location: base + (url.startsWith('/') ? url : '/'), 'content-type': 'text/plain' }).end('use https\n');
  };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const file = process.env.BERTH_HTTP80_CONFIG ?? '/var/lib/berth/config/http80.json';
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Http80Config;
  const port = Number(process.env.BERTH_HTTP80_PORT ?? 80);
  const server = http.createServer(handler(cfg));
  server.listen(port, '0.0.0.0', () => console.log(`berth-http: listening on :${port} (redirect to ${cfg.redirectBase ?? 'https://<Host>'}; CA ${cfg.caFile ? 'offered at /ca.crt' : 'not offered'})`));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
