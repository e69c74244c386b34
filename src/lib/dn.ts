// DN comparison for group membership: one canonical form shared by the directory module and the
// services (see ldap-syntax.ts for the parser; hex escapes and spacing are handled there).
import { normalizeDn as parseAndNormalize } from './ldap-syntax.ts';

/** Canonical, lower-case form of a DN; falls back to a simple lower-casing for unparsable input. */
export function normalizeDn(dn: string): string {
  try {
    return parseAndNormalize(dn);
  } catch {
    return dn.trim().toLowerCase();
  }
}
