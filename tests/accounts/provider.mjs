// A real OpenID Provider for the tests: the certified `oidc-provider` package (npm, v9),
// on a loopback port, configured by the test through one JSON argument:
//
//   node provider.mjs '{"clients": [...], "accounts": {"alice": {...claims}}}'
//
// It prints one line `{"issuer": "http://127.0.0.1:PORT"}` when it listens, and serves:
// - the provider itself (discovery, authorization with its own login and consent pages
//   from `devInteractions`, token, JWKS, userinfo); PKCE is required of every client;
//   the login page takes any password, the login name must be one of `accounts`;
// - /__test/mode (POST JSON {"mode": ...}) makes the token endpoint misbehave on purpose,
//   the way a broken or hostile provider would: an id_token with another issuer, another
//   audience (or authorized party), an old expiry or issue time, another nonce, a signature by a key its JWKS does not have
//   (under the real key's kid, or under a new kid), or a new signing key that the JWKS
//   does publish (rotation). "none" is the honest provider again.
// - /__test/stats: how often discovery, JWKS and the token endpoint were asked.
import http from 'node:http';
import { randomBytes } from 'node:crypto';

import { exportJWK, generateKeyPair, SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] || '{}');

async function signingKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

const realKey = await signingKey('real-1');
// Never published: a token signed with it must fail, whatever kid it claims.
const foreignKey = await signingKey('foreign-1');
// Published only once rotation starts.
const rotatedKey = await signingKey('rotated-1');

let mode = 'none';
const stats = { discovery: 0, jwks: 0, token: 0 };

function publicJwk({ d, p, q, dp, dq, qi, ...rest }) {
  return rest;
}

async function resign(idToken, changes, key, kid) {
  const original = decodeJwt(idToken);
  const claims = { ...original, ...(typeof changes === 'function' ? changes(original) : changes) };
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
  const header = { ...decodeProtectedHeader(idToken), kid };
  const { importJWK } = await import('jose');
  return new SignJWT(claims).setProtectedHeader(header).sign(await importJWK(key, 'RS256'));
}

async function tampered(idToken, issuer) {
  const now = Math.floor(Date.now() / 1000);
  switch (mode) {
    case 'issuer': return resign(idToken, { iss: 'http://127.0.0.1:9/other-issuer' }, realKey, realKey.kid);
    case 'audience': return resign(idToken, { aud: 'another-client', azp: undefined }, realKey, realKey.kid);
    // Several audiences, ours among them, but authorized for another party (OIDC Core §3.1.3.7).
    case 'azp': return resign(idToken, (t) => ({ aud: [t.aud, 'another-client'], azp: 'another-client' }),
      realKey, realKey.kid);
    // Past the relying party's 60 s of leeway, issued recently enough to pass its age check.
    case 'expired': return resign(idToken, { iat: now - 300, exp: now - 120 }, realKey, realKey.kid);
    // Valid for another hour, but issued an hour ago: no token endpoint hands out such a one.
    case 'old': return resign(idToken, { iat: now - 3600, exp: now + 3600 }, realKey, realKey.kid);
    case 'nonce': return resign(idToken, { nonce: 'not-the-nonce' }, realKey, realKey.kid);
    case 'signature': return resign(idToken, {}, foreignKey, realKey.kid);
    case 'unknown-kid': return resign(idToken, {}, foreignKey, foreignKey.kid);
    case 'rotated': return resign(idToken, {}, rotatedKey, rotatedKey.kid);
    default: return idToken;
  }
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const accounts = config.accounts || {};
const provider = new Provider(issuer, {
  clients: config.clients || [],
  jwks: { keys: [realKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
});
provider.on('server_error', (ctx, err) => console.error('provider server_error', err));

provider.use(async (ctx, next) => {
  if (ctx.path === '/.well-known/openid-configuration') stats.discovery += 1;
  if (ctx.path === '/jwks') stats.jwks += 1;
  if (ctx.path === '/token') stats.token += 1;
  await next();
  if (ctx.path === '/jwks' && mode === 'rotated' && ctx.status === 200) {
    ctx.body = { keys: [publicJwk(realKey), publicJwk(rotatedKey)] };
  }
  if (ctx.path === '/token' && ctx.status === 200 && mode !== 'none') {
    const body = typeof ctx.body === 'string' ? JSON.parse(ctx.body) : ctx.body;
    if (body && body.id_token) {
      ctx.body = { ...body, id_token: await tampered(body.id_token, issuer) };
    }
  }
});

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url === '/__test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ...stats, mode }));
    return;
  }
  if (req.url === '/__test/mode' && req.method === 'POST') {
    let raw = '';
    req.on('data', (chunk) => { raw += chunk; });
    req.on('end', () => {
      mode = JSON.parse(raw).mode;
      res.writeHead(204);
      res.end();
    });
    return;
  }
  callback(req, res);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(JSON.stringify({ issuer }));
