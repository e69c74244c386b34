// BERTH_TRUSTED_PROXIES: only the listed proxies' X-Forwarded-For and X-Forwarded-Proto are believed;
// X-Forwarded-For is walked from the right past trusted hops, and the first untrusted hop is the client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { clientAddress, ProxyTrust, requestProtocol, useProxyTrust } from '../../src/http/raw.ts';

function req(peer: string, headers: Record<string, string> = {}, trust?: ProxyTrust): IncomingMessage {
  const r = { socket: { remoteAddress: peer, encrypted: false }, headers } as unknown as IncomingMessage;
  if (trust) useProxyTrust(r, trust);
  return r;
}

test('addresses and CIDRs, IPv4 and IPv6; an IPv4-mapped peer matches an IPv4 entry', () => {
  const trust = new ProxyTrust(['10.0.0.0/8', '192.0.2.5', '2001:db8::/32', '::1']);
  for (const a of ['10.1.2.3', '::ffff:10.1.2.3', '::FFFF:10.200.0.1', '192.0.2.5', '2001:db8:1::7', '::1']) assert.ok(trust.trusts(a), a);
  for (const a of ['11.0.0.1', '::ffff:11.0.0.1', '192.0.2.6', '2001:db9::1', '127.0.0.1', '', 'garbage', undefined]) assert.ok(!trust.trusts(a), String(a));
});

test('a load balancer in a listed CIDR is believed; the client is the first untrusted hop from the right', () => {
  const trust = new ProxyTrust(['10.0.0.0/8']);
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': '203.0.113.9' }, trust)), '203.0.113.9');
  assert.equal(clientAddress(req('::ffff:10.0.0.5', { 'x-forwarded-for': '203.0.113.9' }, trust)), '203.0.113.9');
  // the client may prepend anything; the hops our proxies appended are on the right
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': '1.1.1.1, 203.0.113.9, 10.2.0.1' }, trust)), '203.0.113.9');
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': '10.9.0.1, 10.2.0.1' }, trust)), '10.9.0.1', 'all hops trusted: the leftmost');
  assert.equal(clientAddress(req('10.0.0.5', {}, trust)), '10.0.0.5', 'no header: the peer');
});

test('from a peer that is not listed X-Forwarded-For and X-Forwarded-Proto are ignored, loopback included', () => {
  const trust = new ProxyTrust(['10.0.0.0/8']);
  assert.equal(clientAddress(req('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, trust)), '127.0.0.1');
  assert.equal(clientAddress(req('198.51.100.4', { 'x-forwarded-for': '203.0.113.9' }, trust)), '198.51.100.4');
  assert.equal(requestProtocol(req('127.0.0.1', { 'x-forwarded-proto': 'https' }, trust)), 'http');
  assert.equal(requestProtocol(req('10.0.0.5', { 'x-forwarded-proto': 'https' }, trust)), 'https');
});

test('hops with ports or brackets are addresses; a hop that is not an address is never taken as the client', () => {
  const trust = new ProxyTrust(['10.0.0.0/8']);
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': '203.0.113.9:51234' }, trust)), '203.0.113.9');
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': '[2001:db8::9]:443' }, trust)), '2001:db8::9');
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': 'admin, ' }, trust)), '10.0.0.5');
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': 'unknown, 10.3.0.1' }, trust)), '10.3.0.1');
});

test('X-Forwarded-Proto from a trusted proxy means https only when it says https', () => {
  const trust = new ProxyTrust(['10.0.0.0/8']);
  assert.equal(requestProtocol(req('10.0.0.5', { 'x-forwarded-proto': 'HTTPS, http' }, trust)), 'https');
  assert.equal(requestProtocol(req('10.0.0.5', { 'x-forwarded-proto': 'javascript' }, trust)), 'http');
});

test('a request never bound to a trust list believes loopback only (the default)', () => {
  assert.equal(clientAddress(req('::1', { 'x-forwarded-for': '203.0.113.9' })), '203.0.113.9');
  assert.equal(clientAddress(req('10.0.0.5', { 'x-forwarded-for': '203.0.113.9' })), '10.0.0.5');
});
