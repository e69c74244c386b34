// What a directory (LDAP / Active Directory) tells Berth about users and groups. The directory
// module (src/auth/ldap.ts) produces these; the identity and member services consume them.

/** A directory user as Berth sees it. */
export interface DirectoryUser {
  /** The entry's DN as the server spells it. */
  dn: string;
  /** The uid attribute's value (the directory's spelling of the login name). */
  username: string;
  email: string;
  realname: string;
  /** Normalised (lower-cased) group DNs, limited to groupBaseDn + groupFilter; nested groups included when config.nestedGroups. */
  groups: string[];
  /** Member (directly, or nested when config.nestedGroups) of groupAdminDn. */
  admin: boolean;
}

export interface DirectoryGroup {
  /** The group's DN as the server spells it. */
  dn: string;
  /** The groupAttributeName value (e.g. cn). */
  name: string;
}

