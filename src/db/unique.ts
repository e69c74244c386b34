// A write refused by a unique constraint (Prisma's P2002, on both engines) becomes the conflict the
// API answers (409), with the caller's message: two nodes (or two requests) creating the same name
// at once get what a second request after the first gets, never a 500.
import { AppError } from '../lib/errors.ts';

/** True when `e` is a unique-constraint violation reported by Prisma. */
export function isUniqueViolation(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'P2002';
}

/** `write`'s result, or AppError CONFLICT with `message` when a unique constraint refused it. */
export async function conflictOnDuplicate<T>(write: Promise<T>, message: string): Promise<T> {
  try {
    return await write;
  } catch (e) {
    if (isUniqueViolation(e)) throw new AppError('CONFLICT', undefined, { message });
    throw e;
  }
}
