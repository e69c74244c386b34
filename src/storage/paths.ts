// The on-disk layout, in one place. No other module builds a storage path.
//
// <root>/
// ├── blobs/
// │   └── <algorithm>/<first two hex chars>/<hex>/data     one copy of each blob (and manifest) for the whole registry
// └── uploads/
//     └── <uuid>/
//         ├── data                                         bytes received so far (appended by PATCH)
//         └── info.json                                    {repository, startedAt}: lets a session survive a restart
//
// Which repository may read which blob, manifests, tags and referrers live in the database
// (src/db); a blob becomes visible to a repository only after it is complete in blobs/ and linked.
import type { ParsedDigest } from '../lib/digest.ts';

export const paths = {
  blobData(d: ParsedDigest): string {
    return `blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}/data`;
  },
  blobDir(d: ParsedDigest): string {
    return `blobs/${d.algorithm}/${d.hex.slice(0, 2)}/${d.hex}`;
  },
  /** blobs/, blobs/<algorithm>/ or blobs/<algorithm>/<two hex chars>/, for walking the store. */
  blobsUnder(...parts: string[]): string {
    return ['blobs', ...parts].join('/');
  },
  uploadsRoot(): string {
    return 'uploads';
  },
  uploadDir(uuid: string): string {
    return `uploads/${uuid}`;
  },
  uploadData(uuid: string): string {
    return `uploads/${uuid}/data`;
  },
  uploadInfo(uuid: string): string {
    return `uploads/${uuid}/info.json`;
  },
};
