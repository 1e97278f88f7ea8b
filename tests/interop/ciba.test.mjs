// ciba.test.mjs — interop tests of the gateway's OpenID Connect provider
// with real relying-party libraries: openid-client (discovery, CIBA poll
// mode, introspection, revocation, userinfo) and jose (JWKS, JWT access
// tokens per RFC 9068, ID tokens). Run by tests/integration/interop.sh
// against a private stack (tests/integration/stack.sh); it prints the lines
// tests/run.sh counts: "ok - NAME", "not ok - NAME: reason", "# ...".
//
//   MPKIGW_ISSUER=https://127.0.0.1:PORT NODE_EXTRA_CA_CERTS=server.crt \
//     node tests/interop/ciba.test.mjs
//
// Environment:
//   MPKIGW_ISSUER     the issuer (required): discovery at
//                     $MPKIGW_ISSUER/.well-known/openid-configuration
//   MPKIGW_RESOURCE   the licensing resource (default $MPKIGW_ISSUER/licensing)
//   INTEROP_FLOW_S    seconds one CIBA flow may take (default 60)
// The relying parties (stack.sh's default clients file): demo-rp /
// demo-rp-secret (client_secret_basic and _post, ES256 ID tokens),
// demo-rp-rs256 / demo-rp-rs256-secret (RS256 ID tokens), licensing-rs /
// licensing-rs-secret (resource server of MPKIGW_RESOURCE). The demo SIMs
// (configs/demo-subscribers.csv): +96899000001 (Omantel, civil number
// 10000001), +96895000001 (Ooredoo, 10000011), +96899000009 (ported to
// Ooredoo, 10000019) approve after 1 s; +96899000002 refuses; +96899000004's
// certificate is revoked.
//
// Each CIBA flow polls once right after bc-authorize and expects
// authorization_pending (the phone cannot have answered yet), then lets
// openid-client poll at the announced interval.

import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';

// Node 18 has Web Crypto but not as a global in modules; openid-client and
// jose need globalThis.crypto, so set it before loading them.
if (!globalThis.crypto) {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true, writable: true });
}
const client = await import('openid-client');
const jose = await import('jose');

const CIBA = 'urn:openid:params:grant-type:ciba';
const issuer = process.env.MPKIGW_ISSUER;
if (!issuer) {
  console.log('not ok - setup: MPKIGW_ISSUER is not set (the gateway\'s issuer, https://127.0.0.1:PORT)');
  process.exit(1);
}
const resource = process.env.MPKIGW_RESOURCE || `${issuer}/licensing`;
const flowMs = 1000 * Number(process.env.INTEROP_FLOW_S || 60);

// ---- TAP-like output -----------------------------------------------------

let passed = 0;
let failed = 0;
const oneLine = (s) => String(s).replace(/\s*\n\s*/g, ' ').slice(0, 600);
const diag = (text) => {
  for (const line of String(text).split('\n')) console.log(`# ${line}`);
};
const ok = (name) => {
  passed++;
  console.log(`ok - ${name}`);
};
const notOk = (name, reason) => {
  failed++;
  console.log(`not ok - ${name}: ${oneLine(reason)}`);
};
const skip = (name, why) => console.log(`# skip: ${name}: ${why}`);
const finish = () => {
  console.log(`# ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
};

// Why a request failed, with the server's own words where there are any.
async function why(e) {
  if (e instanceof client.ResponseBodyError) {
    return `HTTP ${e.status} ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`;
  }
  if (e instanceof client.WWWAuthenticateChallengeError) {
    const body = await e.response?.clone().text().catch(() => '') ?? '';
    return `HTTP ${e.status} WWW-Authenticate ${JSON.stringify(e.cause)} ${body.slice(0, 200)}`;
  }
  let msg = e?.message ?? String(e);
  if (e?.code && !(e instanceof assert.AssertionError)) msg = `${e.code}: ${msg}`;
  for (let c = e?.cause, depth = 0; c && depth < 4; c = c.cause, depth++) {
    if (c instanceof Response) {
      const body = await c.clone().text().catch(() => '');
      msg += ` <- HTTP ${c.status} ${c.headers.get('content-type') ?? ''} ${body.slice(0, 300)}`;
      break;
    }
    msg += ` <- ${c.message ?? c.code ?? JSON.stringify(c)}`;
  }
  return msg;
}

// The OAuth error code of a failed request ("" when there is none).
async function oauthError(e) {
  if (e instanceof client.ResponseBodyError) return e.error;
  if (e instanceof client.WWWAuthenticateChallengeError) {
    const body = await e.response?.clone().json().catch(() => undefined);
    if (typeof body?.error === 'string') return body.error;
    for (const ch of e.cause ?? []) if (ch.parameters?.error) return ch.parameters.error;
  }
  return '';
}

// check(NAME, async fn): ok when fn resolves (its value is returned), not
// ok with the reason when it throws (undefined is returned).
async function check(name, fn) {
  try {
    const v = await fn();
    ok(name);
    return v ?? true;
  } catch (e) {
    notOk(name, await why(e));
    return undefined;
  }
}

// expectError(PROMISE, CODES, STATUS?): PROMISE must fail with one of the
// OAuth error codes (and the HTTP status, when given).
async function expectError(promise, codes, status) {
  let got;
  try {
    got = await promise;
  } catch (e) {
    const code = await oauthError(e);
    if (!codes.includes(code)) throw new Error(`expected ${codes.join(' or ')}, got ${await why(e)}`);
    if (status !== undefined && e.status !== status) {
      throw new Error(`expected HTTP ${status} with ${code}, got HTTP ${e.status}`);
    }
    return code;
  }
  throw new Error(`expected ${codes.join(' or ')}, got a success: ${oneLine(JSON.stringify(got)).slice(0, 200)}`);
}

const versionOf = (pkg) => {
  try {
    return JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url))).version;
  } catch {
    return '?';
  }
};
diag(`node ${process.version}, openid-client ${versionOf('openid-client')}, jose ${versionOf('jose')}; issuer ${issuer}, resource ${resource}`);

// ---- discovery -------------------------------------------------------------

const discoveryUrl = `${issuer}/.well-known/openid-configuration`;
let config0;
const meta = await check(`discovery: openid-client discovers ${discoveryUrl} (issuer matches)`, async () => {
  config0 = await client.discovery(new URL(issuer), 'demo-rp', undefined, client.ClientSecretBasic('demo-rp-secret'), {
    timeout: 10,
  });
  return config0.serverMetadata();
});
if (!meta) {
  diag(`no OpenID Provider metadata at ${discoveryUrl}: the gateway's OpenID provider (issue 6) is`);
  diag('not built in or not configured (oidc.issuer); every test below needs it, so the run stops here');
  finish();
}

await check('discovery: issuer is exactly MPKIGW_ISSUER; endpoints are https under it', () => {
  assert.equal(meta.issuer, issuer);
  const eps = {
    token_endpoint: '/token',
    backchannel_authentication_endpoint: '/bc-authorize',
    introspection_endpoint: '/introspect',
    revocation_endpoint: '/revoke',
    userinfo_endpoint: '/userinfo',
  };
  for (const [k, path] of Object.entries(eps)) assert.equal(meta[k], issuer + path, k);
  assert.ok(typeof meta.jwks_uri === 'string' && meta.jwks_uri.startsWith(`${issuer}/`), 'jwks_uri');
});
await check('discovery: CIBA metadata: grant type, delivery modes poll and ping', () => {
  assert.ok(meta.grant_types_supported?.includes(CIBA), `grant_types_supported ${JSON.stringify(meta.grant_types_supported)}`);
  for (const m of ['poll', 'ping']) {
    assert.ok(meta.backchannel_token_delivery_modes_supported?.includes(m), `backchannel_token_delivery_modes_supported lacks ${m}`);
  }
});
await check('discovery: ES256 and RS256 ID tokens; client_secret_basic and client_secret_post', () => {
  for (const a of ['ES256', 'RS256']) {
    assert.ok(meta.id_token_signing_alg_values_supported?.includes(a), `id_token_signing_alg_values_supported lacks ${a}`);
  }
  assert.ok(!meta.id_token_signing_alg_values_supported.includes('none'), 'alg none offered');
  for (const m of ['client_secret_basic', 'client_secret_post']) {
    assert.ok(meta.token_endpoint_auth_methods_supported?.includes(m), `token_endpoint_auth_methods_supported lacks ${m}`);
  }
});
await check('discovery over HTTP/2 (node:http2, ALPN h2) gives the same document', async () => {
  const doc = await new Promise((resolve, reject) => {
    const session = http2.connect(issuer);
    session.on('error', reject);
    session.setTimeout(10000, () => reject(new Error('timeout')));
    const req = session.request({ ':path': '/.well-known/openid-configuration', accept: 'application/json' });
    let status;
    let body = '';
    req.on('response', (h) => {
      status = h[':status'];
    });
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('error', reject);
    req.on('end', () => {
      const alpn = session.alpnProtocol;
      session.close();
      if (alpn !== 'h2') return reject(new Error(`ALPN ${alpn}`));
      if (status !== 200) return reject(new Error(`HTTP ${status} ${body.slice(0, 200)}`));
      try {
        resolve(JSON.parse(body));
      } catch (e) {
        reject(e);
      }
    });
  });
  assert.deepEqual(doc, meta);
});

// ---- JWKS --------------------------------------------------------------------

const JWKS = jose.createRemoteJWKSet(new URL(meta.jwks_uri), { timeoutDuration: 10000 });
await check('jwks_uri: public EC P-256 and RSA keys, each with a kid, no private parts', async () => {
  const res = await fetch(meta.jwks_uri);
  assert.equal(res.status, 200);
  const { keys } = await res.json();
  assert.ok(Array.isArray(keys) && keys.length >= 2, 'keys');
  const kids = new Set();
  for (const k of keys) {
    assert.ok(typeof k.kid === 'string' && k.kid.length > 0, 'a key without kid');
    assert.ok(!kids.has(k.kid), `kid ${k.kid} twice`);
    kids.add(k.kid);
    for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.ok(!(p in k), `private member ${p} in ${k.kid}`);
    await jose.importJWK(k, k.alg ?? (k.kty === 'EC' ? 'ES256' : 'RS256'));
  }
  assert.ok(keys.some((k) => k.kty === 'EC' && k.crv === 'P-256'), 'no EC P-256 key');
  assert.ok(keys.some((k) => k.kty === 'RSA'), 'no RSA key');
});

// ---- relying parties -----------------------------------------------------------

function rp(clientId, secret, { post = false, alg } = {}) {
  const md = alg ? { id_token_signed_response_alg: alg } : undefined;
  const auth = post ? client.ClientSecretPost(secret) : client.ClientSecretBasic(secret);
  return new client.Configuration(meta, clientId, md, auth);
}
const demoRp = rp('demo-rp', 'demo-rp-secret', { alg: 'ES256' });
const demoRpPost = rp('demo-rp', 'demo-rp-secret', { post: true, alg: 'ES256' });
const demoRs256 = rp('demo-rp-rs256', 'demo-rp-rs256-secret', { alg: 'RS256' });
const licensingRs = rp('licensing-rs', 'licensing-rs-secret');

const nowS = () => Math.floor(Date.now() / 1000);

// A CIBA flow that the user approves; a line per step. Returns
// { tokens, at } (at: the access token's verified claims) or undefined.
async function approvedFlow({ label, hint, cfg, clientId, alg, res, scope = 'openid profile', sub, authName }) {
  const params = { scope, login_hint: hint, binding_message: `Interop test ${label}`, requested_expiry: '60' };
  if (res) params.resource = res;
  const start = await check(`${label}: bc-authorize (${authName}) answers auth_req_id, expires_in, interval, a 4-digit verification_code`, async () => {
    const r = await client.initiateBackchannelAuthentication(cfg, params);
    assert.ok(r.auth_req_id.length >= 22, `auth_req_id "${r.auth_req_id}" is too short for 128 bits`);
    assert.ok(r.expires_in > 0 && r.expires_in <= 60, `expires_in ${r.expires_in} (requested_expiry 60)`);
    assert.ok(Number.isInteger(r.interval) && r.interval >= 1, `interval ${r.interval}`);
    assert.match(String(r.verification_code), /^[0-9]{4}$/, 'verification_code');
    return r;
  });
  if (!start) return skip(`${label}: the rest of the flow`, 'no auth_req_id');
  await check(`${label}: a poll right away answers authorization_pending`, () =>
    expectError(client.genericGrantRequest(cfg, CIBA, { auth_req_id: start.auth_req_id }), ['authorization_pending'], 400));
  const t0 = Date.now();
  const tokens = await check(`${label}: polling at the interval ends with tokens (Bearer, expires_in, scope, ID token)`, async () => {
    const t = await client.pollBackchannelAuthenticationGrant(cfg, start, undefined, { signal: AbortSignal.timeout(flowMs) });
    assert.equal(t.token_type, 'bearer'); // openid-client lower-cases it
    assert.equal(typeof t.access_token, 'string');
    assert.equal(typeof t.id_token, 'string', 'id_token');
    assert.ok(Number.isInteger(t.expires_in) && t.expires_in > 0, `expires_in ${t.expires_in}`);
    assert.ok(t.scope?.split(' ').includes('openid'), `scope ${t.scope}`);
    return t;
  });
  if (!tokens) return skip(`${label}: token checks`, 'no tokens');
  diag(`${label}: tokens after ${Date.now() - t0} ms of polling`);
  const at = await check(`${label}: access token: at+jwt, signature via jwks_uri, iss, ${res ? 'aud = the resource (a string)' : 'aud'}, exp`, async () => {
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, JWKS, {
      issuer,
      ...(res ? { audience: res } : {}),
      typ: 'at+jwt',
      algorithms: ['ES256', 'RS256'],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
    });
    assert.ok(protectedHeader.kid, 'kid in the header');
    if (res) assert.equal(typeof payload.aud, 'string', `aud ${JSON.stringify(payload.aud)} is not a single string`);
    return payload;
  });
  if (at) {
    await check(`${label}: access token claims: sub ${sub}, client_id, scope, amr ["mpki"], acr, auth_time, jti`, () => {
      assert.equal(at.sub, sub);
      assert.equal(at.client_id, clientId);
      assert.ok(typeof at.scope === 'string' && at.scope.split(' ').includes('openid'), `scope ${at.scope}`);
      assert.ok(Array.isArray(at.amr) && at.amr.includes('mpki'), `amr ${JSON.stringify(at.amr)}`);
      assert.ok(typeof at.acr === 'string' && at.acr.length > 0, `acr ${at.acr}`);
      assert.ok(Number.isInteger(at.auth_time) && at.auth_time <= at.iat + 1 && at.auth_time > nowS() - 300, `auth_time ${at.auth_time}`);
      assert.ok(typeof at.jti === 'string' && at.jti.length >= 16, `jti ${at.jti}`);
      assert.ok(at.exp > nowS() && at.exp - at.iat <= 86400 && Math.abs(at.exp - at.iat - tokens.expires_in) <= 5, `exp ${at.exp} iat ${at.iat} expires_in ${tokens.expires_in}`);
    });
  }
  await check(`${label}: ID token: ${alg}, signature via jwks_uri, iss, aud ${clientId}, sub, typ JWT or none`, async () => {
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, JWKS, {
      issuer,
      audience: clientId,
      algorithms: [alg],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    });
    assert.ok(protectedHeader.typ === undefined || /^(application\/)?jwt$/i.test(protectedHeader.typ), `typ ${protectedHeader.typ}`);
    assert.equal(payload.sub, sub);
    assert.equal(tokens.claims()?.sub, sub, 'openid-client claims()');
    if (payload.amr !== undefined) assert.ok(payload.amr.includes('mpki'), `amr ${JSON.stringify(payload.amr)}`);
  });
  await check(`${label}: the auth_req_id gives no second set of tokens`, () =>
    expectError(client.genericGrantRequest(cfg, CIBA, { auth_req_id: start.auth_req_id }), ['invalid_grant', 'expired_token']));
  return { tokens, at };
}

// A CIBA flow that must end in access_denied, at bc-authorize or at the
// token endpoint.
async function deniedFlow(label, hint) {
  const params = { scope: 'openid', login_hint: hint, binding_message: `Interop test ${label}`, requested_expiry: '60' };
  await check(`${label}: access_denied`, async () => {
    let start;
    try {
      start = await client.initiateBackchannelAuthentication(demoRp, params);
    } catch (e) {
      if ((await oauthError(e)) === 'access_denied') return diag(`${label}: refused at bc-authorize`);
      throw e;
    }
    await expectError(client.pollBackchannelAuthenticationGrant(demoRp, start, undefined, { signal: AbortSignal.timeout(flowMs) }), ['access_denied']);
  });
}

// ---- the flows -------------------------------------------------------------------

const omantel = await approvedFlow({
  label: '+96899000001 (Omantel)', hint: 'tel:+96899000001', cfg: demoRp, clientId: 'demo-rp', alg: 'ES256',
  res: resource, sub: '10000001', authName: 'client_secret_basic',
});
if (omantel) {
  const token = omantel.tokens.access_token;
  await check('introspection by the token\'s client: active, same sub, client_id, scope, exp', async () => {
    const r = await client.tokenIntrospection(demoRp, token);
    assert.equal(r.active, true, JSON.stringify(r));
    assert.equal(r.sub, '10000001');
    assert.equal(r.client_id, 'demo-rp');
    assert.ok(r.scope?.split(' ').includes('openid'), `scope ${r.scope}`);
    assert.equal(r.exp, omantel.at?.exp ?? r.exp);
  });
  await check('introspection by the resource server in the token\'s aud (licensing-rs): active, same sub', async () => {
    const r = await client.tokenIntrospection(licensingRs, token);
    assert.equal(r.active, true, JSON.stringify(r));
    assert.equal(r.sub, '10000001');
  });
  await check('introspection by another client (demo-rp-rs256): only {"active":false}', async () => {
    const r = await client.tokenIntrospection(demoRs256, token);
    assert.deepEqual(r, { active: false });
  });
  await check('revocation (RFC 7009) of the access token: 200', () => client.tokenRevocation(demoRp, token));
  await check('introspection after revocation: only {"active":false}', async () => {
    assert.deepEqual(await client.tokenIntrospection(demoRp, token), { active: false });
  });
  await check('revocation of an unknown token: 200', () => client.tokenRevocation(demoRp, 'no-such-token-' + Date.now()));
}

await approvedFlow({
  label: '+96895000001 (Ooredoo)', hint: 'tel:+96895000001', cfg: demoRpPost, clientId: 'demo-rp', alg: 'ES256',
  res: resource, sub: '10000011', authName: 'client_secret_post',
});
await approvedFlow({
  label: '+96899000009 (ported to Ooredoo)', hint: 'tel:+96899000009', cfg: demoRp, clientId: 'demo-rp', alg: 'ES256',
  res: resource, sub: '10000019', authName: 'client_secret_basic',
});

// A token for /userinfo: no resource; the civil number as login_hint.
const forUserinfo = await approvedFlow({
  label: 'civil number 10000001 as login_hint, no resource', hint: '10000001', cfg: demoRp, clientId: 'demo-rp',
  alg: 'ES256', sub: '10000001', authName: 'client_secret_basic',
});
if (forUserinfo) {
  await check('userinfo with that token: sub 10000001 (openid-client checks the expected subject)', async () => {
    const u = await client.fetchUserInfo(demoRp, forUserinfo.tokens.access_token, '10000001');
    assert.equal(u.sub, '10000001');
  });
}
await check('userinfo with a garbage token: 401', async () => {
  try {
    await client.fetchUserInfo(demoRp, 'garbage.token.here', client.skipSubjectCheck);
  } catch (e) {
    if (e.status === 401 || e.cause?.status === 401) return;
    throw e;
  }
  throw new Error('userinfo answered a garbage token');
});

await approvedFlow({
  label: 'RS256 client demo-rp-rs256, +96895000001', hint: 'tel:+96895000001', cfg: demoRs256, clientId: 'demo-rp-rs256',
  alg: 'RS256', res: resource, sub: '10000011', authName: 'client_secret_basic',
});

await deniedFlow('+96899000002 refuses on the phone', 'tel:+96899000002');
await deniedFlow('+96899000004 (revoked certificate)', 'tel:+96899000004');

// ---- errors at bc-authorize ---------------------------------------------------------

const bcParams = { scope: 'openid', login_hint: 'tel:+96899000777', binding_message: 'Interop test' };
await check('an unknown number (tel:+96899000777): unknown_user_id (400)', () =>
  expectError(client.initiateBackchannelAuthentication(demoRp, bcParams), ['unknown_user_id'], 400));
await check('a wrong client secret (client_secret_basic): invalid_client (401)', () =>
  expectError(client.initiateBackchannelAuthentication(rp('demo-rp', 'wrong-secret'), { ...bcParams, login_hint: 'tel:+96899000001' }), ['invalid_client'], 401));
await check('a wrong client secret (client_secret_post): invalid_client (401)', () =>
  expectError(client.initiateBackchannelAuthentication(rp('demo-rp', 'wrong-secret', { post: true }), { ...bcParams, login_hint: 'tel:+96899000001' }), ['invalid_client'], 401));
await check('an unknown client: invalid_client (401)', () =>
  expectError(client.initiateBackchannelAuthentication(rp('no-such-rp', 'demo-rp-secret'), { ...bcParams, login_hint: 'tel:+96899000001' }), ['invalid_client'], 401));
await check('no login_hint: invalid_request (400)', () =>
  expectError(client.initiateBackchannelAuthentication(demoRp, { scope: 'openid', binding_message: 'Interop test' }), ['invalid_request'], 400));

finish();
