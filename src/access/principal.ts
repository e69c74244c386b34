// Who is making a request, after authentication. Anonymous requests have no principal (null).
// A principal is small and self-contained so a bearer token can carry it without a database lookup.
export type Action = 'pull' | 'push' | 'delete';
export const ALL_ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

export interface Principal {
  kind: 'user' | 'robot';
  id: number;
  name: string;
  sysadmin: boolean;
}

/**
 * Decides which of the wanted actions a principal may perform on a repository.
 * The one place the /v2 API asks (src/services/access-service.ts implements it with the roles table).
 */
export interface RepositoryPolicy {
  allowedActions(principal: Principal | null, repository: string, wanted: readonly Action[]): Promise<Action[]>;
  /** Projects whose repositories the principal may list in the catalog: null means all. */
  visibleProjectIds(principal: Principal | null): Promise<number[] | null>;
  /**
   * The repository's project name when that project does not exist and the principal may create
   * projects (so it may be told, and told what to do); null otherwise, also when the project exists.
   * Anyone else gets the usual denial, which does not say whether a project exists.
   */
  missingProject?(principal: Principal, repository: string): Promise<string | null>;
}

/** System admins may do everything, nobody else anything (used before projects are wired, and in tests). */
export const adminOnlyPolicy: RepositoryPolicy = {
  async allowedActions(principal, _repository, wanted) {
    return principal?.sysadmin ? [...wanted] : [];
  },
  async visibleProjectIds(principal) {
    return principal?.sysadmin ? null : [];
  },
};
