// codeflow.test.mjs — the authorization code flow end to end in headless
// Chromium (npm playwright-core driving Debian's /usr/bin/chromium): the
// relying party of rp.mjs (openid-client, PKCE S256, state, nonce) sends
// the browser to the gateway's login page, the test types the phone number
// and presses start, reads the verification code, opens the subscriber's
// virtual handset page on the mock operator in a second browser context
// (another device), checks it shows the same code, approves with the PIN;
// back on the first page the gateway redirects to the RP's callback, the RP
// exchanges the code, shows the ID token's claims, refreshes the tokens and
// logs out (RP-initiated logout). Twice: Arabic (the default: no
// ui_locales, browser locale ar-OM) and English (ui_locales=en). Run by
// tests/integration/e2e.sh against a private stack; it prints the lines
// tests/run.sh counts: "ok - NAME", "not ok - NAME: reason", "# ...".
//
//   MPKIGW_ISSUER=https://127.0.0.1:PORT E2E_HANDSET_URL=http://127.0.0.1:PORT \
//     NODE_EXTRA_CA_CERTS=server.crt node tests/e2e/codeflow.test.mjs
//
// Environment:
//   MPKIGW_ISSUER     the gateway (required; its certificate is trusted
//                     through NODE_EXTRA_CA_CERTS for node, and Chromium's
//                     context ignores certificate errors: it is self-signed)
//   E2E_HANDSET_URL   the subscriber's mock operator (required): the handset
//                     page is $E2E_HANDSET_URL/handset/<msisdn>
//   E2E_MSISDN, E2E_PIN, E2E_SUB   default +96899000010, 1234, 10000010
//                     (configs/demo-subscribers.csv: Omantel, behaviour
//                     handset)
//   E2E_RP_PORT       the RP's port (default 9300): the client must have
//                     http://127.0.0.1:PORT/callback as a redirect URI
//   E2E_POST_LOGOUT   1: the RP sends post_logout_redirect_uri
//                     http://127.0.0.1:PORT/logged-out (registered)
//   E2E_LANGS         the runs (default "ar en")
//   E2E_SCREENSHOTS   where the PNGs go (default build/screenshots)
//   E2E_FLOW_S        seconds one wait of the flow may take (default 60)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//
// Screenshots (each run's old PNGs are removed first): login-ar.png and
// login-en.png (the login page with the verification code), and per
// language LANG-1-handset-idle, LANG-2-handset-request,
// LANG-3-handset-signed, LANG-4-rp-signed-in, LANG-5-rp-refreshed,
// LANG-6-logged-out; LANG-failed-*.png when a step fails.

import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

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
const finish = () => {
  console.log(`# ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
};

class Stop extends Error {}

// step(NAME, async fn): ok when fn resolves; not ok and Stop (the rest of
// the flow depends on it) when it throws.
async function step(name, fn) {
  try {
    const v = await fn();
    ok(name);
    return v;
  } catch (e) {
    notOk(name, e?.message ?? String(e));
    throw new Stop(name);
  }
}

const assert = (cond, msg) => {
  if (!cond) throw new Error(msg);
};

// ---- settings --------------------------------------------------------------

const issuer = process.env.MPKIGW_ISSUER;
const handsetBase = process.env.E2E_HANDSET_URL;
if (!issuer || !handsetBase) {
  notOk('setup', 'MPKIGW_ISSUER and E2E_HANDSET_URL must be set (tests/integration/e2e.sh sets them)');
  finish();
}
const msisdn = process.env.E2E_MSISDN || '+96899000010';
const pin = process.env.E2E_PIN || '1234';
const expectedSub = process.env.E2E_SUB || '10000010';
const rpPort = Number(process.env.E2E_RP_PORT || 9300);
const langs = (process.env.E2E_LANGS || 'ar en').split(/\s+/).filter(Boolean);
const shots = path.resolve(process.env.E2E_SCREENSHOTS || path.join(here, '../../build/screenshots'));
const flowMs = 1000 * Number(process.env.E2E_FLOW_S || 60);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const viewport = { width: 390, height: 844 };

const versionOf = (pkg) => {
  try {
    return JSON.parse(readFileSync(path.join(here, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
};

let chromium;
let startRp;
try {
  ({ chromium } = await import('playwright-core'));
  ({ startRp } = await import('./rp.mjs'));
} catch (e) {
  notOk('setup: load playwright-core, openid-client and rp.mjs', `${e.message} (npm ci --prefix tests/e2e)`);
  finish();
}
diag(
  `node ${process.version}, playwright-core ${versionOf('playwright-core')}, openid-client ` +
    `${versionOf('openid-client')}; issuer ${issuer}, handset ${handsetBase}/handset/${msisdn}`,
);

mkdirSync(shots, { recursive: true });
for (const f of readdirSync(shots)) if (f.endsWith('.png')) rmSync(path.join(shots, f), { force: true });
const shot = async (page, name) => {
  const file = path.join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
};

// The code as ASCII digits: an Arabic page may write it with Arabic-Indic
// (U+0660..) or Eastern Arabic-Indic (U+06F0..) digits.
const asciiDigits = (s) =>
  String(s ?? '')
    .replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x660))
    .replace(/[\u06f0-\u06f9]/g, (d) => String(d.charCodeAt(0) - 0x6f0))
    .replace(/\D/g, '');

// What a page says when a step did not come: its URL, and its #error,
// #status or #rp-error text, or the start of its body.
async function pageSays(page) {
  try {
    const said = await page.evaluate(() => {
      const t = (id) => document.getElementById(id)?.textContent?.trim();
      return t('error') || t('rp-error') || t('status') || (document.body?.innerText ?? '').slice(0, 300);
    });
    return `at ${page.url()}: ${oneLine(said)}`;
  } catch (e) {
    return `at ${page.url()} (${e.message})`;
  }
}

// ---- the flow --------------------------------------------------------------

async function flow(browser, rp, lang) {
  const dflt = lang === 'ar';
  const tag = `${lang}${dflt ? ' (default, no ui_locales)' : ` (ui_locales=${lang})`}`;
  const locale = lang === 'ar' ? 'ar-OM' : 'en-US';
  const ctxOpts = { viewport, ignoreHTTPSErrors: true, locale, deviceScaleFactor: 1, hasTouch: true, isMobile: true };
  const browserCtx = await browser.newContext(ctxOpts);
  const phoneCtx = await browser.newContext(ctxOpts); // the handset: another device
  const page = await browserCtx.newPage();
  const phone = await phoneCtx.newPage();
  page.setDefaultTimeout(flowMs);
  phone.setDefaultTimeout(flowMs);
  const callbacks = [];
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.url().startsWith(rp.redirectUri)) callbacks.push(r.url());
  });

  try {
    // The phone first: the mock's page must work before anything else.
    const handsetUrl = `${handsetBase}/handset/${msisdn}${lang === 'en' ? '?lang=en' : ''}`;
    await step(`${tag}: the virtual handset page of ${msisdn} opens and waits for requests`, async () => {
      const res = await phone.goto(handsetUrl);
      assert(res?.status() === 200, `GET ${handsetUrl} answered HTTP ${res?.status()}`);
      await phone.locator('#hs').waitFor({ state: 'visible', timeout: 10000 });
      const dir = await phone.evaluate(() => document.documentElement.dir);
      assert(dir === (lang === 'ar' ? 'rtl' : 'ltr'), `the handset page's dir is ${dir}`);
      await phone.locator('#hs-none').waitFor({ state: 'visible', timeout: 10000 }).catch(() => {
        throw new Error(`a request is already waiting on ${msisdn}'s handset (a previous flow did not end)`);
      });
      await shot(phone, `${lang}-1-handset-idle`);
    });

    // The RP sends the browser to /authorize.
    const loginUrl = `${rp.url}/login${dflt ? '' : `?lang=${lang}`}`;
    const authorizeRes = await step(`${tag}: the RP (openid-client) redirects to the gateway's /authorize with PKCE S256, state and nonce`, async () => {
      let authorize;
      const seen = (r) => {
        if (r.isNavigationRequest() && r.url().startsWith(`${issuer}/authorize`)) authorize ??= r;
      };
      page.on('request', seen);
      const res = await page.goto(loginUrl);
      page.off('request', seen);
      if (!authorize) throw new Error(`GET ${loginUrl} did not redirect to ${issuer}/authorize: ${await pageSays(page)}`);
      const q = new URL(authorize.url()).searchParams;
      for (const k of ['client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge']) {
        assert(q.get(k), `the authorization request has no ${k}`);
      }
      assert(q.get('response_type') === 'code', `response_type ${q.get('response_type')}`);
      assert(q.get('code_challenge_method') === 'S256', `code_challenge_method ${q.get('code_challenge_method')}`);
      assert(q.get('redirect_uri') === rp.redirectUri, `redirect_uri ${q.get('redirect_uri')}`);
      assert(dflt ? !q.has('ui_locales') : q.get('ui_locales') === lang, `ui_locales ${q.get('ui_locales')}`);
      return res;
    });

    await step(`${tag}: GET /authorize answers 200 with an HTML page`, async () => {
      // The answer of /authorize itself (the last of the redirects).
      const status = authorizeRes?.status();
      const res = authorizeRes;
      if (status !== 200) {
        const body = oneLine(await res?.text().catch(() => '')).slice(0, 200);
        throw new Error(
          `GET /authorize answered HTTP ${status} ${res?.headers()['content-type'] ?? ''} ${body}` +
            (status === 404 ? ' — the gateway has no login page yet (issue 7: /authorize)' : ''),
        );
      }
      const ctype = res.headers()['content-type'] ?? '';
      assert(ctype.startsWith('text/html'), `GET /authorize answered ${ctype}`);
    });

    await step(`${tag}: the gateway's login page is ${lang === 'ar' ? 'Arabic, right to left' : 'English, left to right'}, with #login-hint and #start`, async () => {
      const { htmlLang, dir } = await page.evaluate(() => ({
        htmlLang: document.documentElement.lang,
        dir: getComputedStyle(document.body).direction,
      }));
      assert(htmlLang.toLowerCase().startsWith(lang), `<html lang="${htmlLang}">`);
      assert(dir === (lang === 'ar' ? 'rtl' : 'ltr'), `the page's direction is ${dir}`);
      await page.locator('#login-hint').waitFor({ state: 'visible', timeout: 5000 }).catch(() => {
        throw new Error('no visible #login-hint');
      });
      await page.locator('#start').waitFor({ state: 'visible', timeout: 5000 }).catch(() => {
        throw new Error('no visible #start');
      });
    });

    const code = await step(`${tag}: ${msisdn} typed, start pressed: the login page shows a 4-digit verification code`, async () => {
      await page.locator('#login-hint').fill(msisdn);
      await page.locator('#start').click();
      const shown = await Promise.race([
        page
          .waitForFunction(
            () => {
              const t = document.getElementById('verification-code')?.textContent ?? '';
              const d = t
                .replace(/[\u0660-\u0669]/g, (c) => String(c.charCodeAt(0) - 0x660))
                .replace(/[\u06f0-\u06f9]/g, (c) => String(c.charCodeAt(0) - 0x6f0))
                .replace(/\D/g, '');
              return d.length === 4 ? t : false;
            },
            null,
            { timeout: 20000 },
          )
          .then((h) => h.jsonValue()),
        page
          .locator('#error')
          .waitFor({ state: 'visible', timeout: 20000 })
          .then(async () => {
            throw new Error(`#error: ${oneLine(await page.locator('#error').textContent())}`);
          }),
      ]).catch(async (e) => {
        throw new Error(e.message.startsWith('#error') ? e.message : `no code within 20 s: ${await pageSays(page)}`);
      });
      const c = asciiDigits(shown);
      diag(`verification code on the login page: ${shown.trim()}${shown.trim() !== c ? ` (${c})` : ''}; #status: ${oneLine((await page.locator('#status').textContent().catch(() => '')) ?? '')}`);
      await shot(page, `login-${lang}`);
      return c;
    });

    await step(`${tag}: the handset shows the same code (${code})`, async () => {
      const card = phone.locator('#hs-list .card').first();
      await card.waitFor({ state: 'visible', timeout: 20000 }).catch(async () => {
        throw new Error(`no request on ${msisdn}'s handset within 20 s: ${await pageSays(phone)}`);
      });
      const onPhone = asciiDigits(await card.locator('.code').textContent());
      const n = await phone.locator('#hs-list .card').count();
      await shot(phone, `${lang}-2-handset-request`);
      assert(onPhone === code, `the handset shows ${onPhone}, the login page ${code}`);
      assert(n === 1, `${n} requests wait on the handset`);
    });

    await step(`${tag}: PIN typed and approved on the handset: the SIM signs`, async () => {
      const card = phone.locator('#hs-list .card').first();
      await card.locator('.pin').fill(pin);
      await card.locator('button[data-act="approve"]').click();
      await phone.waitForFunction(
        () => /\b(good|bad)\b/.test(document.getElementById('hs-result')?.className ?? ''),
        null,
        { timeout: 20000 },
      );
      const res = await phone.evaluate(() => {
        const r = document.getElementById('hs-result');
        return { cls: r.className, text: r.textContent };
      });
      await shot(phone, `${lang}-3-handset-signed`);
      assert(/\bgood\b/.test(res.cls), `the handset says: ${res.text}`);
    });

    await step(`${tag}: the login page redirects to the RP's callback with code and state; the RP gets the tokens`, async () => {
      await Promise.race([
        page.waitForURL((u) => u.href.startsWith(rp.url), { timeout: flowMs }),
        page
          .locator('#error')
          .waitFor({ state: 'visible', timeout: flowMs })
          .then(async () => {
            throw new Error(`the login page says #error: ${oneLine(await page.locator('#error').textContent())}`);
          }),
      ]).catch(async (e) => {
        throw new Error(e.message.includes('#error') ? e.message : `no redirect within ${flowMs / 1000} s: ${await pageSays(page)}`);
      });
      await page.waitForLoadState('load');
      assert(callbacks.length === 1, `${callbacks.length} navigations to the callback`);
      const q = new URL(callbacks[0]).searchParams;
      assert(!q.has('error'), `the callback has error=${q.get('error')} ${q.get('error_description') ?? ''}`);
      assert(q.get('code') && q.get('state'), `the callback URL ${callbacks[0].replace(/code=[^&]+/, 'code=...')} lacks code or state`);
      const failedHere = await page.locator('#rp-error').textContent({ timeout: 200 }).catch(() => null);
      if (failedHere) throw new Error(`the RP: ${oneLine(failedHere)}`);
      await page.locator('#sub').waitFor({ state: 'visible', timeout: 5000 });
    });

    const at0 = await step(`${tag}: the ID token's claims: sub ${expectedSub}, iss, aud, nonce (checked by openid-client)`, async () => {
      const sub = (await page.locator('#sub').textContent()).trim();
      const claims = JSON.parse(await page.locator('#claims').textContent());
      await shot(page, `${lang}-4-rp-signed-in`);
      assert(sub === expectedSub, `sub ${sub}`);
      assert(claims.iss === issuer, `iss ${claims.iss}`);
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      assert(aud.includes(process.env.E2E_CLIENT_ID || 'demo-rp'), `aud ${JSON.stringify(claims.aud)}`);
      assert(typeof claims.nonce === 'string', 'no nonce');
      diag(`ID token: ${oneLine(JSON.stringify({ ...claims, nonce: '...' }))}`);
      diag(`userinfo: ${oneLine(await page.locator('#userinfo').textContent())}`);
      const rt = (await page.locator('#rt').textContent()).trim();
      assert(rt, 'no refresh token (the client has the refresh_token grant)');
      return (await page.locator('#at').textContent()).trim();
    });

    await step(`${tag}: refresh (refresh_token grant): a new access token`, async () => {
      await page.locator('#refresh').click();
      await page.waitForLoadState('load');
      const err = await page.locator('#rp-error').textContent({ timeout: 200 }).catch(() => null);
      if (err) throw new Error(`the RP: ${oneLine(err)}`);
      await page.locator('#refreshed').waitFor({ state: 'visible', timeout: 10000 });
      const n = (await page.locator('#refreshed').textContent()).trim();
      const at1 = (await page.locator('#at').textContent()).trim();
      const sub = (await page.locator('#sub').textContent()).trim();
      await shot(page, `${lang}-5-rp-refreshed`);
      assert(n === '1', `refreshed ${n} times`);
      assert(at1 && at1 !== at0, 'the access token did not change');
      assert(sub === expectedSub, `sub ${sub} after the refresh`);
    });

    await step(`${tag}: logout (RP-initiated) ends at ${process.env.E2E_POST_LOGOUT === '1' ? "the RP's post-logout URI" : "the gateway's signed-out page"}; the RP's session is gone`, async () => {
      let last;
      const onRes = (r) => {
        if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) last = r;
      };
      page.on('response', onRes);
      await page.locator('#logout').click();
      await page.waitForURL((u) => u.href.startsWith(`${issuer}/`) || u.href.startsWith(`${rp.url}/logged-out`), {
        waitUntil: 'load',
      });
      if (page.url().startsWith(issuer)) {
        // A page of the gateway's may still send the browser on.
        await page.waitForURL((u) => u.href.startsWith(`${rp.url}/logged-out`), { timeout: 3000 }).catch(() => {});
      }
      page.off('response', onRes);
      await shot(page, `${lang}-6-logged-out`);
      const status = last?.status();
      if (page.url().startsWith(`${rp.url}/logged-out`)) {
        const st = await page.locator('#logout-state').textContent().catch(() => '');
        assert(st === 'ok', `back at the RP with state ${st}`);
      } else {
        assert(status === 200, `the gateway's logout answered HTTP ${status}: ${await pageSays(page)}`);
        const ctype = last?.headers()['content-type'] ?? '';
        assert(ctype.startsWith('text/html'), `the gateway's logout answered ${ctype}: ${await pageSays(page)}`);
      }
      diag(`logout ended at ${page.url().replace(/id_token_hint=[^&]+/, 'id_token_hint=...')} (HTTP ${status})`);
      await page.goto(`${rp.url}/me`);
      await page.locator('#signed-out').waitFor({ state: 'visible', timeout: 5000 }).catch(() => {
        throw new Error('the RP still has a session after logout');
      });
    });
  } catch (e) {
    if (!(e instanceof Stop)) notOk(`${tag}: the flow`, e?.stack ?? String(e));
    diag(`${tag}: the rest of this flow is skipped; the pages:`);
    for (const [p, name] of [
      [page, 'browser'],
      [phone, 'handset'],
    ]) {
      diag(`  ${name} ${await pageSays(p)}`);
      await shot(p, `${lang}-failed-${name}`).catch(() => {});
    }
    // Leave no request waiting on the phone for the next flow.
    await phone
      .locator('#hs-list .card button[data-act="refuse"]')
      .first()
      .click({ timeout: 1000 })
      .catch(() => {});
    await phone.waitForTimeout(500);
  } finally {
    await browserCtx.close().catch(() => {});
    await phoneCtx.close().catch(() => {});
  }
}

// ---- main --------------------------------------------------------------------

let rp;
try {
  rp = await startRp({ issuer, port: rpPort });
  ok(`setup: the RP listens on ${rp.url} (redirect URI ${rp.redirectUri})`);
} catch (e) {
  notOk(`setup: the RP on 127.0.0.1:${rpPort}`, e.message);
  finish();
}

let browser;
try {
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, timeout: 60000 });
  ok(`setup: headless Chromium ${browser.version()} (${chromiumPath}) launches`);
} catch (e) {
  notOk(`setup: launch ${chromiumPath}`, e.message.split('\n')[0]);
  await rp.close();
  finish();
}

for (const lang of langs) await flow(browser, rp, lang);

if (failed) {
  diag('the RP\'s log:');
  for (const l of rp.log) diag(`  ${l}`);
}
diag(`screenshots in ${shots}: ${readdirSync(shots).filter((f) => f.endsWith('.png')).sort().join(' ')}`);
await browser.close().catch(() => {});
await rp.close();
finish();
