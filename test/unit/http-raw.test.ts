// One trust-proxy rule for every route (the /v2 helpers outside Express and the Express routes):
// only a proxy on the same host (loopback) may set the client address and scheme.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { clientAddress, requestProtocol } from '../../src/http/raw.ts';
import { isRegistryUrl } from '../../src/registry/router.ts';

function req(peer: string, headers: Record<string, string> = {}, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as IncomingMessage;
}

test('a direct client is its peer address, whatever X-Forwarded-For says', () => {
  assert.equal(clientAddress(req('10.0.0.7', { 'x-forwarded-for': '1.2.3.4' })), '10.0.0.7');
  assert.equal(clientAddress(req('::ffff:10.0.0.7')), '::ffff:10.0.0.7');
});

test('behind a loopback proxy the client is the last hop that is not loopback', () => {
  assert.equal(clientAddress(req('127.0.0.1', { 'x-forwarded-for': '1.2.3.4' })), '1.2.3.4');
  assert.equal(clientAddress(req('::1', { 'x-forwarded-for': '9.9.9.9, 1.2.3.4, 127.0.0.1' })), '1.2.3.4');
  assert.equal(clientAddress(req('127.0.0.1')), '127.0.0.1');
});

test('the scheme is https on TLS, or when a loopback proxy says so', () => {
  assert.equal(requestProtocol(req('10.0.0.7', {}, true)), 'https');
  assert.equal(requestProtocol(req('10.0.0.7', { 'x-forwarded-proto': 'https' })), 'http');
  assert.equal(requestProtocol(req('127.0.0.1', { 'x-forwarded-proto': 'https, http' })), 'https');
  assert.equal(requestProtocol(req('127.0.0.1')), 'http');
});

test('registry URLs are /v2, /v2/... and /v2?...; nothing else', () => {
  for (const u of ['/v2', '/v2/', '/v2/_catalog', '/v2?x=1', '/v2/library/a/manifests/latest']) assert.ok(isRegistryUrl(u), u);
  for (const u of ['/v20', '/v2x/', '/api/v2.0/projects', '/', '/service/token']) assert.ok(!isRegistryUrl(u), u);
});
