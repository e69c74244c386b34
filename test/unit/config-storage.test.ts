// BERTH_STORAGE and BERTH_S3_*: defaults, path style, prefix, redirect, and errors that name the
// variable without echoing the secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/index.ts';

const S3 = { BERTH_STORAGE: 's3', BERTH_S3_BUCKET: 'berth', BERTH_S3_ACCESS_KEY_ID: 'AK', BERTH_S3_SECRET_ACCESS_KEY: 'very-secret-value' };

test('the filesystem is the default; s3 has its defaults', () => {
  const fsConfig = loadConfig({});
  assert.equal(fsConfig.storage, 'fs');
  assert.equal(fsConfig.s3, undefined);
  const aws = loadConfig(S3);
  assert.equal(aws.storage, 's3');
  assert.deepEqual({ ...aws.s3 }, { endpoint: undefined, bucket: 'berth', region: 'us-east-1', accessKeyId: 'AK', secretAccessKey: 'very-secret-value', forcePathStyle: false, prefix: '', redirectSeconds: 0 });
});

test('an endpoint turns path-style addressing on unless told otherwise; prefix and redirect', () => {
  const rgw = loadConfig({ ...S3, BERTH_S3_ENDPOINT: 'http://127.0.0.1:7480', BERTH_S3_PREFIX: '/reg/one/', BERTH_S3_REDIRECT: 'true', BERTH_S3_REGION: 'eu-1' });
  assert.equal(rgw.s3?.forcePathStyle, true);
  assert.equal(rgw.s3?.prefix, 'reg/one/');
  assert.equal(rgw.s3?.region, 'eu-1');
  assert.ok(rgw.s3!.redirectSeconds > 0 && rgw.s3!.redirectSeconds <= 900, 'short-lived');
  assert.equal(loadConfig({ ...S3, BERTH_S3_ENDPOINT: 'http://h:1', BERTH_S3_FORCE_PATH_STYLE: 'false' }).s3?.forcePathStyle, false);
  // Without keys the SDK's default chain (instance role, profile) is used.
  assert.equal(loadConfig({ BERTH_STORAGE: 's3', BERTH_S3_BUCKET: 'berth' }).s3?.accessKeyId, undefined);
});

test('bad storage settings name the variable and never echo the secret', () => {
  const cases: [Record<string, string>, string][] = [
    [{ BERTH_STORAGE: 'nfs' }, 'BERTH_STORAGE'],
    [{ ...S3, BERTH_S3_BUCKET: '' }, 'BERTH_S3_BUCKET'],
    [{ ...S3, BERTH_S3_BUCKET: 'Not_A_Bucket' }, 'BERTH_S3_BUCKET'],
    [{ ...S3, BERTH_S3_ENDPOINT: 'rgw:7480' }, 'BERTH_S3_ENDPOINT'],
    [{ ...S3, BERTH_S3_ACCESS_KEY_ID: '' }, 'BERTH_S3_ACCESS_KEY_ID'],
    [{ ...S3, BERTH_S3_SECRET_ACCESS_KEY: '' }, 'BERTH_S3_SECRET_ACCESS_KEY'],
    [{ ...S3, BERTH_S3_REDIRECT: 'maybe' }, 'BERTH_S3_REDIRECT'],
  ];
  for (const [env, variable] of cases) {
    assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && e.variable === variable && !e.message.includes('very-secret-value'), JSON.stringify(env));
  }
});
