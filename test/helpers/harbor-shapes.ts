// Harbor's wire contract: field names and JSON types of its v2.0 API objects (fixtures/harbor-shapes.json,
// taken from Harbor's swagger definitions), checked against what Berth answers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const shapes = JSON.parse(fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/harbor-shapes.json'), 'utf8')) as Record<string, Record<string, string>>;

/** Every field of `obj` is one of Harbor's `name` with its JSON type; `extensions` are Berth's documented additions. */
export function assertHarborShape(name: string, obj: Record<string, unknown>, extensions: string[] = []): void {
  const props = shapes[name];
  assert.ok(props, `no shape for ${name}`);
  for (const [k, v] of Object.entries(obj)) {
    if (extensions.includes(k)) continue;
    const type = props[k];
    assert.ok(type, `${name}.${k} is not in Harbor's ${name}`);
    if (v === null || v === undefined || type === 'any') continue;
    const t = type === 'integer' || type === 'number' ? 'number' : type === 'array' ? 'object' : type;
    assert.equal(typeof v, t, `${name}.${k}: ${typeof v} vs ${type}`);
    if (type === 'array') assert.ok(Array.isArray(v), `${name}.${k} is an array`);
  }
}
