// /api/v2.0/system/token-key: the token-signing key shared by every node, and its rotation (Berth's
// addition; Harbor rotates by redeploying a certificate). System admins only.
import express from 'express';
import type { TokenSigner } from '../auth/token.ts';
import { requireSysadmin } from './common.ts';
import { route } from './validate.ts';

export interface TokenKeyRouteDeps {
  tokens: Pick<TokenSigner, 'kid' | 'previousKid' | 'rotate'>;
}

export function tokenKeyRouter(deps: TokenKeyRouteDeps): express.Router {
  const r = express.Router();
  route(r, 'get /system/token-key', (_req, res) => {
    requireSysadmin(res);
    res.json({ kid: deps.tokens.kid, previous_kid: deps.tokens.previousKid });
  });
  // A new key signs from now on, on every node; tokens of the one before stay valid until they
  // expire. Rotating twice within a token lifetime drops the older key at once (a leaked key).
  route(r, 'post /system/token-key/rotate', async (_req, res) => {
    const admin = requireSysadmin(res);
    const { kid, previousKid } = await deps.tokens.rotate(admin.name);
    res.json({ kid, previous_kid: previousKid });
  });
  return r;
}
