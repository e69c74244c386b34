// The response schemas of the OpenAPI document (src/api/responses.ts) against Harbor's swagger: a
// schema named after a Harbor definition has only Harbor's fields, with Harbor's JSON types
// (test/fixtures/harbor-shapes.json), except fields it documents as Berth's additions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import * as responses from '../../src/api/responses.ts';

const shapes = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../fixtures/harbor-shapes.json'), 'utf8')) as Record<string, Record<string, string>>;

function named(): Map<string, z.ZodType> {
  const out = new Map<string, z.ZodType>();
  for (const v of Object.values(responses)) {
    if (!(v instanceof z.ZodType)) continue;
    const id = z.globalRegistry.get(v)?.id;
    if (id) out.set(id, v);
  }
  return out;
}

test("response schemas named after Harbor's definitions have Harbor's field names and JSON types", () => {
  const schemas = named();
  const compared = [...schemas.keys()].filter((id) => shapes[id]);
  // the objects test/integration/api-artifacts.test.ts checks on real answers, at least
  for (const id of ['Artifact', 'AuditLog', 'GCHistory', 'GeneralInfo', 'Project', 'ProjectMemberEntity', 'ProjectSummary', 'Quota', 'Repository', 'Robot', 'RobotCreated', 'Search', 'Statistic', 'Storage', 'SystemInfo', 'Tag', 'UserGroup', 'UserResp']) {
    assert.ok(compared.includes(id), `responses.ts names a schema ${id}`);
  }
  const problems: string[] = [];
  for (const id of compared) {
    type Js = { type?: string; $ref?: string; description?: string; properties?: Record<string, Js>; definitions?: Record<string, Js> };
    const top = z.toJSONSchema(schemas.get(id)!, { io: 'output', target: 'openapi-3.0', unrepresentable: 'any' }) as Js;
    const deref = (s: Js): Js => (s.$ref ? top.definitions![s.$ref.split('/').pop()!] : s);
    const js = deref(top);
    assert.ok(js.properties, `${id} is an object`);
    for (const [field, p] of Object.entries(js.properties)) {
      const type = deref(p).type;
      const harbor = shapes[id][field];
      if (!harbor) {
        if (!/Berth's addition/.test(p.description ?? '')) problems.push(`${id}.${field} is not in Harbor's ${id} (describe it as "Berth's addition")`);
      } else if (harbor !== 'any' && type !== harbor) {
        problems.push(`${id}.${field}: ${type} here, ${harbor} in Harbor`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
