// Frees request-body buffers while they are young.
//
// node:http hands each 64 KiB of a request body to JavaScript as a fresh Buffer. V8 schedules a
// scavenge by how much of its own heap is allocated, and a Buffer is a few hundred bytes of heap
// for 64 KiB outside it: a push at a few hundred MB/s piles up 30-50 MB of dead body buffers
// between two scavenges, and V8 weighs that external memory when it decides to start a full
// collection: it ran a mark-compact every one or two 8 MiB blobs (measured with --trace-gc), most
// of a push's GC cost. A minor GC (a scavenge of the young generation: about a millisecond, since
// nearly all of it is dead) after every 8 MiB of body received keeps them from piling up.
import v8 from 'node:v8';
import vm from 'node:vm';

type MinorGc = (options: { type: 'minor' }) => void;

/** V8's gc(), taken from a fresh context so that the application's global scope never has it. */
function grabGc(): MinorGc | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as MinorGc;
  } catch {
    return null; // a runtime without it only loses the optimisation
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}

const EVERY = 8 * 1024 * 1024;
let gc: MinorGc | null | undefined;
let received = 0;

/** Counts request-body bytes handed to JavaScript; runs a minor GC after every 8 MiB. */
export function bodyBytesReceived(n: number): void {
  received += n;
  if (received < EVERY) return;
  received = 0;
  if (gc === undefined) gc = grabGc();
  gc?.({ type: 'minor' });
}
