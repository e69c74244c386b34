// Who is making a request, after authentication. Anonymous requests have no principal (null).
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
 * The one place the /v2 API asks; the roles table (src/access/roles.ts) answers through it.
 */
export interface RepositoryPolicy {
  allowedActions(principal: Principal | null, repository: string, wanted: readonly Action[]): Promise<Action[]>;
  /** Which repositories' projects the principal may list in the catalog: null means all. */
  visibleProjectIds(principal: Principal | null): Promise<number[] | null>;
}

/** Until projects exist: system admins may do everything, nobody else anything. */
export const adminOnlyPolicy: RepositoryPolicy = {
  async allowedActions(principal, _repository, wanted) {
    return principal?.sysadmin ? [...wanted] : [];
  },
  async visibleProjectIds(principal) {
    return principal?.sysadmin ? null : [];
  },
};
