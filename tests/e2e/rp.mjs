// rp.mjs — a tiny relying party for the end-to-end test of the gateway's
// authorization code flow (tests/e2e/codeflow.test.mjs): plain HTTP on
// 127.0.0.1, npm openid-client for everything OpenID Connect (discovery,
// PKCE S256, state, nonce, the code exchange with ID token validation, the
// refresh_token grant, RP-initiated logout).
//
//   MPKIGW_ISSUER=https://127.0.0.1:8443 NODE_EXTRA_CA_CERTS=var/tls/server.crt \
//     node tests/e2e/rp.mjs            # then open http://127.0.0.1:9300/
//
// codeflow.test.mjs imports startRp() and runs it in its own process.
//
// Routes:
//   GET  /             signed in or not, links to /login (Arabic, English)
//   GET  /login?lang=  starts the flow: 302 to the gateway's /authorize with
//                      response_type=code, PKCE S256, state, nonce and, when
//                      lang is given, ui_locales
//   GET  /callback     the redirect URI: exchanges the code (openid-client
//                      checks state, nonce, iss, the ID token's signature),
//                      then 303 to /me
//   GET  /me           the ID token's claims (#sub, #claims), the token
//                      fingerprints (#at, #rt), the refresh and logout buttons
//   POST /refresh      the refresh_token grant, then 303 to /me
//   POST /logout       ends the RP's session, 302 to the gateway's
//                      end_session_endpoint (id_token_hint, and
//                      post_logout_redirect_uri + state when configured)
//   GET  /logged-out   the post-logout redirect URI
//   GET  /healthz      {"status":"ok"}
// Errors are pages with the text in #rp-error (HTTP 4xx/5xx).
//
// Environment (startRp's options override it):
//   MPKIGW_ISSUER          the gateway (required)
//   E2E_RP_PORT            the port (default 9300); the redirect URI is
//                          http://127.0.0.1:PORT/callback
//   E2E_CLIENT_ID, E2E_CLIENT_SECRET   default demo-rp / demo-rp-secret
//   E2E_SCOPE              default "openid profile"
//   E2E_POST_LOGOUT        1: send post_logout_redirect_uri
//                          http://127.0.0.1:PORT/logged-out (it must be
//                          registered for the client); else the gateway's
//                          own signed-out page ends the logout

import { createHash, randomBytes, webcrypto } from 'node:crypto';
import http from 'node:http';
import { pathToFileURL } from 'node:url';

// Node 18 has Web Crypto but not as a global in modules (openid-client
// needs globalThis.crypto).
if (!globalThis.crypto) {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true, writable: true });
}
const client = await import('openid-client');

const COOKIE = 'e2e_rp_sid'; // cookies ignore ports: a name of the RP's own
const SESSION_MAX = 256;

const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// A short, stable fingerprint of a token: enough to see that it changed,
// without putting tokens into pages and screenshots.
const fp = (t) => (t ? createHash('sha256').update(t).digest('base64url').slice(0, 12) : '');

function page(res, status, title, body) {
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} — Demo RP</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#14181c}
header{background:#3d2a6b;color:#fff;padding:12px 16px;font-weight:600}
main{padding:12px 16px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;padding:8px;border-radius:8px;font-size:.8rem}
button,a.btn{display:inline-block;margin:6px 6px 6px 0;padding:10px 14px;border:0;border-radius:8px;
  background:#0b5f8a;color:#fff;font-size:1rem;text-decoration:none}
.err{color:#b3261e;font-weight:600}
</style></head>
<body><header>Demo RP (openid-client)</header><main>
<h1>${esc(title)}</h1>
${body}
</main></body></html>
`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

function redirect(res, status, location, cookie) {
  const headers = { location, 'cache-control': 'no-store' };
  if (cookie !== undefined) headers['set-cookie'] = cookie;
  res.writeHead(status, headers);
  res.end();
}

function cookieOf(req) {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE && v) return v;
  }
  return undefined;
}

// Why a request failed, with the server's own words where there are any.
async function why(e) {
  if (e instanceof client.ResponseBodyError) {
    return `HTTP ${e.status} ${e.error}${e.error_description ? ` (${e.error_description})` : ''}`;
  }
  let msg = e?.message ?? String(e);
  if (e?.code) msg = `${e.code}: ${msg}`;
  for (let c = e?.cause, depth = 0; c && depth < 4; c = c.cause, depth++) {
    if (c instanceof Response) {
      const body = await c.clone().text().catch(() => '');
      msg += ` <- HTTP ${c.status} ${body.slice(0, 300)}`;
      break;
    }
    msg += ` <- ${c.message ?? c.code ?? JSON.stringify(c)}`;
  }
  return msg;
}

// startRp(options): listens, resolves to { url, redirectUri, postLogoutUri,
// close(), log }. log collects one line per flow step (for diagnostics).
export async function startRp(opts = {}) {
  const issuer = opts.issuer ?? process.env.MPKIGW_ISSUER;
  if (!issuer) throw new Error('MPKIGW_ISSUER is not set (the gateway, https://127.0.0.1:PORT)');
  const port = Number(opts.port ?? process.env.E2E_RP_PORT ?? 9300);
  const clientId = opts.clientId ?? process.env.E2E_CLIENT_ID ?? 'demo-rp';
  const secret = opts.clientSecret ?? process.env.E2E_CLIENT_SECRET ?? 'demo-rp-secret';
  const scope = opts.scope ?? process.env.E2E_SCOPE ?? 'openid profile';
  const postLogout = opts.postLogout ?? process.env.E2E_POST_LOGOUT === '1';
  const base = `http://127.0.0.1:${port}`;
  const redirectUri = `${base}/callback`;
  const postLogoutUri = `${base}/logged-out`;
  const sessions = new Map(); // sid -> { flow: {verifier, state, nonce}, tokens, claims, refreshed }
  const log = [];
  let config;

  const note = (s) => {
    log.push(s);
    if (opts.verbose) console.log(`# rp: ${s}`);
  };

  async function configuration() {
    if (!config) {
      config = await client.discovery(new URL(issuer), clientId, undefined, client.ClientSecretBasic(secret), {
        timeout: 10,
      });
    }
    return config;
  }

  function newSession() {
    if (sessions.size >= SESSION_MAX) sessions.delete(sessions.keys().next().value);
    const sid = randomBytes(18).toString('base64url');
    const s = {};
    sessions.set(sid, s);
    return [sid, s];
  }

  const sessionCookie = (sid) => `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`;

  async function login(req, res, url) {
    const cfg = await configuration();
    const [sid, s] = newSession();
    const verifier = client.randomPKCECodeVerifier();
    s.flow = { verifier, state: client.randomState(), nonce: client.randomNonce() };
    const params = {
      redirect_uri: redirectUri,
      scope,
      state: s.flow.state,
      nonce: s.flow.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    };
    const lang = url.searchParams.get('lang');
    if (lang) params.ui_locales = lang;
    const to = client.buildAuthorizationUrl(cfg, params);
    note(`login: 302 to ${to.origin}${to.pathname} (ui_locales ${lang ?? 'none'})`);
    redirect(res, 302, to.href, sessionCookie(sid));
  }

  async function callback(req, res, url, s) {
    if (!s?.flow) {
      note('callback: no flow in this session');
      return page(res, 400, 'Sign-in failed', '<p id="rp-error" class="err">No sign-in was started in this browser session.</p>');
    }
    if (url.searchParams.get('error')) {
      const e = `${url.searchParams.get('error')} ${url.searchParams.get('error_description') ?? ''}`.trim();
      note(`callback: error ${e}`);
      s.flow = undefined;
      return page(res, 400, 'Sign-in failed', `<p id="rp-error" class="err">${esc(e)}</p>`);
    }
    const cfg = await configuration();
    const flow = s.flow;
    s.flow = undefined; // one exchange per flow, whatever happens
    const tokens = await client.authorizationCodeGrant(cfg, new URL(url.pathname + url.search, base), {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    s.tokens = { ...tokens };
    s.claims = tokens.claims();
    s.refreshed = 0;
    note(`callback: tokens for sub ${s.claims?.sub} (refresh token: ${tokens.refresh_token ? 'yes' : 'no'})`);
    redirect(res, 303, '/me');
  }

  async function me(req, res, s) {
    if (!s?.tokens) {
      return page(res, 200, 'Not signed in', `<p id="signed-out">Not signed in.</p>
<p><a class="btn" id="login-ar" href="/login?lang=ar">تسجيل الدخول</a>
<a class="btn" id="login-en" href="/login?lang=en">Sign in</a></p>`);
    }
    let userinfo;
    try {
      userinfo = await client.fetchUserInfo(await configuration(), s.tokens.access_token, s.claims.sub);
    } catch (e) {
      userinfo = { error: await why(e) };
    }
    const t = s.tokens;
    return page(res, 200, 'Signed in', `<p>Subject: <b id="sub">${esc(s.claims.sub)}</b></p>
<p>Name: <span id="name">${esc(s.claims.name ?? userinfo.name ?? '')}</span></p>
<p>Access token <code id="at">${esc(fp(t.access_token))}</code>, expires in <span id="at-exp">${esc(t.expires_in ?? '')}</span> s;
refresh token <code id="rt">${esc(fp(t.refresh_token))}</code>; refreshed <span id="refreshed">${s.refreshed}</span> times</p>
<form method="post" action="/refresh"><button id="refresh" type="submit">Refresh</button></form>
<form method="post" action="/logout"><button id="logout" type="submit">Sign out</button></form>
<h2>ID token</h2><pre id="claims">${esc(JSON.stringify(s.claims, null, 1))}</pre>
<h2>UserInfo</h2><pre id="userinfo">${esc(JSON.stringify(userinfo, null, 1))}</pre>`);
  }

  async function refresh(req, res, s) {
    if (!s?.tokens?.refresh_token) {
      return page(res, 400, 'Refresh failed', '<p id="rp-error" class="err">No refresh token in this session.</p>');
    }
    const cfg = await configuration();
    const old = s.tokens;
    const t = await client.refreshTokenGrant(cfg, old.refresh_token);
    // A refresh may return no new ID token or refresh token: keep the old.
    s.tokens = { ...old, ...t, id_token: t.id_token ?? old.id_token, refresh_token: t.refresh_token ?? old.refresh_token };
    if (t.id_token) s.claims = t.claims();
    s.refreshed += 1;
    note(`refresh: new access token ${fp(t.access_token)} (was ${fp(old.access_token)}), refresh token ${t.refresh_token ? 'rotated' : 'kept'}`);
    redirect(res, 303, '/me');
  }

  async function logout(req, res, sid, s) {
    const idToken = s?.tokens?.id_token;
    sessions.delete(sid);
    if (!idToken) return redirect(res, 303, '/me', `${COOKIE}=; Path=/; Max-Age=0`);
    const cfg = await configuration();
    const params = { id_token_hint: idToken, client_id: clientId };
    if (postLogout) {
      const [nsid, ns] = newSession();
      ns.logoutState = client.randomState();
      params.post_logout_redirect_uri = postLogoutUri;
      params.state = ns.logoutState;
      sid = nsid;
    }
    let to;
    if (cfg.serverMetadata().end_session_endpoint) {
      to = client.buildEndSessionUrl(cfg, params);
    } else {
      // Discovery does not name it (yet): the gateway's /logout.
      to = new URL(`${issuer}/logout`);
      for (const [k, v] of Object.entries(params)) to.searchParams.set(k, v);
      note('logout: discovery has no end_session_endpoint; using the issuer\'s /logout');
    }
    note(`logout: 302 to ${to.origin}${to.pathname}${postLogout ? ' with post_logout_redirect_uri' : ''}`);
    redirect(res, 302, to.href, postLogout ? sessionCookie(sid) : `${COOKIE}=; Path=/; Max-Age=0`);
  }

  function loggedOut(req, res, url, sid, s) {
    const expected = s?.logoutState;
    sessions.delete(sid);
    const state = url.searchParams.get('state');
    const good = expected !== undefined && state === expected;
    note(`logged-out: state ${good ? 'matches' : `does not match (${state})`}`);
    page(res, good ? 200 : 400, 'Signed out', `<p id="logged-out">You are signed out of the demo RP.</p>
<p>state: <span id="logout-state">${good ? 'ok' : 'mismatch'}</span></p>`);
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, base);
    const sid = cookieOf(req);
    const s = sid ? sessions.get(sid) : undefined;
    const route = `${req.method} ${url.pathname}`;
    try {
      switch (route) {
        case 'GET /healthz':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('{"status":"ok"}');
        case 'GET /':
        case 'GET /me':
          return await me(req, res, s);
        case 'GET /login':
          return await login(req, res, url);
        case 'GET /callback':
          return await callback(req, res, url, s);
        case 'POST /refresh':
          return await refresh(req, res, s);
        case 'POST /logout':
          return await logout(req, res, sid, s);
        case 'GET /logged-out':
          return loggedOut(req, res, url, sid, s);
        default:
          return page(res, 404, 'Not found', `<p id="rp-error" class="err">No route ${esc(route)}</p>`);
      }
    } catch (e) {
      const msg = await why(e);
      note(`${route}: ${msg}`);
      if (!res.headersSent) page(res, 502, 'Error', `<p id="rp-error" class="err">${esc(msg)}</p>`);
      else res.end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: base,
    redirectUri,
    postLogoutUri,
    log,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rp = await startRp({ verbose: true });
  console.log(`# demo RP on ${rp.url}/ (redirect URI ${rp.redirectUri})`);
}
