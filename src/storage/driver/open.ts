// Builds the storage driver the configuration asks for. The S3 driver (and the AWS SDK with it)
// is loaded only when BERTH_STORAGE=s3, so the default install does not pay for it in memory.
import path from 'node:path';
import type { Config } from '../../config/index.ts';
import type { StorageDriver } from './driver.ts';
import { FsDriver } from './fs.ts';

interface Log {
  info(obj: object, msg: string): void;
}

export async function openDriver(config: Config, log: Log): Promise<StorageDriver> {
  if (config.storage !== 's3' || !config.s3) return new FsDriver(path.join(config.dataDir, 'storage'));
  const { S3Driver } = await import('./s3.ts');
  const s3 = config.s3;
  const driver = await S3Driver.create(s3);
  const bucket = await driver.ensureBucket();
  // The secret key is never logged.
  log.info({ endpoint: s3.endpoint ?? 'aws', bucket: s3.bucket, region: s3.region, prefix: s3.prefix, pathStyle: s3.forcePathStyle, redirect: s3.redirectSeconds > 0, created: bucket === 'created' }, 'object storage ready');
  return driver;
}
