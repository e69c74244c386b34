// The on-disk layout, in one place. No other module builds a storage path.
//
// <root>/
// ├── blobs/
// │   └── <algorithm>/<first two hex chars>/<hex>/data     one copy of each blob (and manifest) for the whole registry
// └── uploads/
//     └── <uuid>/
//         ├── info.json                                    {repository, startedAt} (+ on object storage the
//         │                                                multipart id, its parts and the tail's length):
//         │                                                lets a session survive a restart (one node; on
//         │                                                PostgreSQL the record is an UploadSession row
//         │                                                every node reads, and there is no info.json)
//         ├── data                                         on a filesystem: bytes received so far (appended by
//         │                                                PATCH, renamed into blobs/ at completion); on object
//         │                                                storage: the multipart object the parts belong to
//         │                                                (only ever completed to re-read it, see uploads.ts)
//         └── tail/<offset>                                object storage only: received bytes after the last
//                                                          part (< the 5 MiB minimum part size), starting at
//                                                          byte <offset> of the blob
//
// Which repository may read which blob, manifests, tags and referrers live in the database
// (src/db); a blob becomes visible to a repository only after it is complete in blobs/ and linked.
import { parseDigest, type ParsedDigest } from '../lib/digest.ts';

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
  /** The digest whose blobData() is `path`, or null for any other path. */
  blobOfData(path: string): ParsedDigest | null {
    const m = /^blobs\/([a-z0-9]+)\/([0-9a-f]{2})\/([0-9a-f]+)\/data$/.exec(path);
    const d = m && m[3].startsWith(m[2]) ? parseDigest(`${m[1]}:${m[3]}`) : null;
    return d && paths.blobData(d) === path ? d : null;
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
  uploadTail(uuid: string, offset: number): string {
    return `uploads/${uuid}/tail/${offset}`;
  },
};
