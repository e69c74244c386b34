// A lean HTTP/1.1 client for sequential GETs on one keep-alive connection: write the request,
// read the status line, the headers and a Content-Length or chunked body, nothing else.
//
// Why: a paged walk is a chain of round trips, so the client's own cost per request is part of
// every page's latency. node:http's client costs about 100 µs per request here, more than a
// registry's whole answer for a page; Go clients (docker, containerd, skopeo) cost a fraction
// of that. Used for both registries alike, it measures the servers instead of the client.
import net from 'node:net';

export class RawConnection {
  #port;
  #sock = null;
  #buf = Buffer.alloc(0);
  #wake = null;
  #failure = null;

  constructor(port) {
    this.#port = port;
  }

  #connect() {
    const sock = net.connect(this.#port, '127.0.0.1');
    sock.setNoDelay(true);
    this.#buf = Buffer.alloc(0);
    this.#failure = null;
    sock.on('data', (d) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      this.#wake?.();
    });
    const fail = (err) => {
      this.#failure = err;
      if (this.#sock === sock) this.#sock = null;
      this.#wake?.();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed by the server')));
    this.#sock = sock;
  }

  /** GET path with extra headers; resolves to { status, headers (lower-case names), body }. */
  async get(path, headers = {}) {
    if (!this.#sock) this.#connect();
    let head = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.#port}\r\n`;
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) head += `${k}: ${v}\r\n`;
    this.#sock.write(head + '\r\n');
    for (;;) {
      const res = this.#parse();
      if (res) {
        if (res.headers.connection?.toLowerCase() === 'close') this.close();
        return res;
      }
      if (this.#failure) throw this.#failure;
      await new Promise((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  /** One whole response from the buffer (consumed), or null while incomplete. */
  #parse() {
    const buf = this.#buf;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    let p = end + 4;
    let body;
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) return null;
        const size = parseInt(buf.toString('latin1', p, le), 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size in response to ${lines[0]}`);
        if (buf.length < le + 2 + size + 2) return null;
        if (size === 0) {
          p = le + 4; // no trailers from either registry
          break;
        }
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length < p + len) return null;
      body = buf.subarray(p, p + len);
      p += len;
    }
    this.#buf = buf.subarray(p);
    return { status, headers, body };
  }

  close() {
    this.#sock?.destroy();
    this.#sock = null;
  }
}
