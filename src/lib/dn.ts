/** Canonical form of an LDAP distinguished name for comparisons: lower case, no spaces around separators. */
export function normalizeDn(dn: string): string {
  return dn
    .trim()
    .split(/(?<!\\),/)
    .map((rdn) => rdn.split(/(?<!\\)=/).map((s) => s.trim()).join('='))
    .join(',')
    .toLowerCase();
}
