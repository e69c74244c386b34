// The secret box: AES-256-GCM for secrets stored in the database, its key kept outside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SEALED_PREFIX, SecretBox, loadSecretKey } from '../../src/lib/secret-box.ts';

const KEY = 'k'.repeat(32);

test('a sealed value is versioned, hides the plain text, differs each time and opens again', () => {
  const box = SecretBox.fromMaterial(KEY);
  const a = box.seal('Bind-Passw0rd', 'ldap_search_password');
  const b = box.seal('Bind-Passw0rd', 'ldap_search_password');
  assert.ok(a.startsWith(SEALED_PREFIX));
  assert.ok(SecretBox.isSealed(a));
  assert.ok(!SecretBox.isSealed('Bind-Passw0rd'));
  assert.ok(!a.includes('Bind-Passw0rd'));
  assert.notEqual(a, b, 'a random IV per value');
  assert.equal(box.open(a, 'ldap_search_password'), 'Bind-Passw0rd');
  assert.equal(SecretBox.fromMaterial(KEY).open(b, 'ldap_search_password'), 'Bind-Passw0rd', 'the same key material gives the same key');
  assert.equal(box.open(box.seal(''), ''), '');
  assert.equal(box.open(box.seal('ünïcødé ✓'), ''), 'ünïcødé ✓');
});

test('a wrong key, another context, a changed byte or garbage is refused, never returned as text', () => {
  const box = SecretBox.fromMaterial(KEY);
  const sealed = box.seal('Bind-Passw0rd', 'ldap_search_password');
  assert.throws(() => SecretBox.fromMaterial('x'.repeat(32)).open(sealed, 'ldap_search_password'), /cannot be decrypted/);
  assert.throws(() => box.open(sealed, 'registry_credential'), /cannot be decrypted/);
  const body = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
  body[body.length - 20] ^= 1;
  assert.throws(() => box.open(SEALED_PREFIX + body.toString('base64url'), 'ldap_search_password'), /cannot be decrypted/);
  for (const bad of ['', 'plain', SEALED_PREFIX, SEALED_PREFIX + 'AAAA', 'enc:v9:' + body.toString('base64url')]) {
    assert.throws(() => box.open(bad, 'ldap_search_password'), /cannot be decrypted|not a sealed value|unknown/);
  }
  assert.throws(() => new SecretBox(Buffer.alloc(16)), /32 bytes/);
});

test('the key: BERTH_SECRET_KEY when given (no file), else a key file made once with mode 0600', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-key-'));
  try {
    const file = path.join(dir, 'secret.key');
    assert.deepEqual(loadSecretKey({ configured: KEY, keyFile: file }), { material: KEY, source: 'env', created: false });
    assert.ok(!fs.existsSync(file));

    const first = loadSecretKey({ keyFile: file });
    assert.equal(first.source, 'file');
    assert.equal(first.created, true);
    assert.ok(first.material.length >= 32);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const again = loadSecretKey({ keyFile: file });
    assert.equal(again.material, first.material);
    assert.equal(again.created, false);

    fs.chmodSync(file, 0o644);
    loadSecretKey({ keyFile: file });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'a key file readable by others is tightened');

    fs.writeFileSync(file, 'short\n');
    assert.throws(() => loadSecretKey({ keyFile: file }), /secret\.key.*32/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
