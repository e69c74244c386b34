// The web UI's build: Preact + TypeScript, bundled by Vite into web/dist, which the Berth server
// serves at / (index.html for unknown non-API paths). `npm run dev:web` serves the UI with hot
// reload and proxies the API to a Berth on :5000 (BERTH_URL to point elsewhere).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

const target = process.env.BERTH_URL ?? 'http://127.0.0.1:5000';
const proxied = ['/api', '/c', '/v2', '/service'];

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [preact({ prerender: { enabled: false } })],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // One small bundle: the whole UI is a few tens of kB; no chart or component library.
    chunkSizeWarningLimit: 150,
    reportCompressedSize: true,
  },
  server: {
    port: 5173,
    proxy: Object.fromEntries(proxied.map((p) => [p, { target, changeOrigin: false }])),
  },
});
