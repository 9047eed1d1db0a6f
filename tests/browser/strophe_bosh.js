// strophe.js (npm, tests/browser/node_modules/strophe.js) over BOSH in a
// page in Debian's chromium, driven by playwright-core against Starling's
// /http-bind (tests/browser/test_strophe_bosh.py runs it).
//
//   node strophe_bosh.js BOSH_URL JID PASSWORD PEER_JID ARTIFACTS [PAGE_PORT]
//
// The page (page_html) makes a Strophe.Connection with keepalive: true, so
// strophe.js keeps the session's jid, sid and next rid in sessionStorage;
// when the page loads it restore()s a stored session, else it logs in with
// the password. Lines with the test, as in conversejs.js:
//
//   ONLINE <how> <jid> <sid>   the page is online: how is "login" (a new
//                              session, initial presence sent) or
//                              "restored" (re-attached to the stored one)
//   (test) EXPECT <text>       wait for a chat message whose body has text
//   GOT <from> <body>
//   (test) SEND <text>         send PEER_JID a chat message
//   SENT <text>
//   (test) RELOAD              page.reload(); the new page's strophe.js is
//                              held back until CONTINUE, so that the
//                              session has no page meanwhile
//   RELOADING                  the old page is gone
//   (test) CONTINUE            let the new page load strophe.js
//   (test) QUIT / DONE / BLOCKED <url> / FAILED <reason>

'use strict';

const path = require('path');
const common = require('./common.js');

const { STEP, say } = common;
const [boshUrl, jid, password, peer, artifacts, sitePort] = process.argv.slice(2);
const DIST = path.join(__dirname, 'node_modules', 'strophe.js', 'dist');

// The page's own script: what a hand-written strophe.js client does. Its
// state is in window.__online and window.__got for the driver to read.
const SCRIPT = `
import { Strophe, $msg, $pres } from '/strophe/strophe.esm.js';
const cfg = JSON.parse(document.getElementById('cfg').textContent);
const conn = new Strophe.Connection(cfg.url, { keepalive: true });
window.__got = [];
conn.xmlInput = (el) => console.debug('bosh< ' + Strophe.serialize(el));
conn.xmlOutput = (el) => console.debug('bosh> ' + Strophe.serialize(el));

function online(how) {
  conn.addHandler((m) => {
    const body = m.getElementsByTagName('body')[0];
    if (body) window.__got.push({ from: m.getAttribute('from'), body: body.textContent });
    return true;
  }, null, 'message', 'chat');
  window.__online = { how: how, jid: conn.jid, sid: conn._proto.sid };
}

window.__send = (to, text) => {
  conn.send($msg({ to: to, type: 'chat' }).c('body').t(text));
  conn.flush();
};

function status(how) {
  return (code, condition) => {
    console.info('strophe status ' + code + (condition ? ' ' + condition : ''));
    if (code === Strophe.Status.CONNECTED) {
      conn.send($pres());
      online(how);
    } else if (code === Strophe.Status.ATTACHED) {
      online(how);
    }
  };
}

try {
  conn.restore(cfg.jid, status('restored'));
} catch (e) {
  if (e.name !== 'StropheSessionError') throw e;
  conn.connect(cfg.jid, cfg.password, status('login'));
}
`;

function page_html() {
  const cfg = JSON.stringify({ url: boshUrl, jid: jid, password: password });
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<title>Starling: strophe.js over BOSH</title></head><body>' +
    '<h1>strophe.js over BOSH</h1><ul id="log"></ul>' +
    '<script type="application/json" id="cfg">' + cfg.replace(/</g, '\\u003c') +
    '</script><script type="module">' + SCRIPT + '</script></body></html>';
}

const log = new common.Log(artifacts);

common.run(artifacts, log, async (held) => {
  const site = await common.serve(sitePort, { '/': page_html }, { '/strophe/': DIST });
  const origin = 'http://127.0.0.1:' + site.address().port;
  const { browser, page } = await common.launch(log);
  held.page = page;

  // BOSH's requests and answers, as the page's network sees them.
  page.on('request', (r) => {
    if (r.url() === boshUrl) log.write('POST> ' + r.postData());
  });
  page.on('response', async (r) => {
    if (r.url() !== boshUrl) return;
    try {
      log.write('POST< ' + r.status() + ' ' + await r.text());
    } catch (e) {
      log.write('POST< ' + r.status() + ' (no body: page gone)');
    }
  });

  async function online() {
    const h = await page.waitForFunction(() => window.__online || null, null,
      { timeout: STEP });
    const o = await h.jsonValue();
    say('ONLINE ' + o.how + ' ' + o.jid + ' ' + o.sid);
  }

  await page.goto(origin + '/', { timeout: STEP });
  await online();

  let seen = 0;
  let gate = null;
  let reloaded = null;
  await common.commands(async (cmd, text) => {
    if (cmd === 'EXPECT') {
      const h = await page.waitForFunction(([from, want]) => {
        const got = window.__got.slice(from);
        const i = got.findIndex((m) => m.body.includes(want));
        return i < 0 ? null : { at: from + i, msg: got[i] };
      }, [seen, text], { timeout: STEP });
      const { at, msg } = await h.jsonValue();
      seen = at + 1;
      say('GOT ' + msg.from + ' ' + msg.body);
    } else if (cmd === 'SEND') {
      await page.evaluate(([to, t]) => window.__send(to, t), [peer, text]);
      say('SENT ' + text);
    } else if (cmd === 'RELOAD') {
      // The new document has replaced the old one (whose requests the
      // browser aborted) once it asks for strophe.js: hold that request.
      let release;
      const released = new Promise((resolve) => { release = resolve; });
      let arrived;
      const asked = new Promise((resolve) => { arrived = resolve; });
      gate = release;
      await page.route('**/strophe/strophe.esm.js', async (route) => {
        arrived();
        await released;
        await route.continue();
      }, { times: 1 });
      reloaded = page.reload({ timeout: STEP * 2 });
      await asked;
      seen = 0;
      say('RELOADING');
    } else if (cmd === 'CONTINUE') {
      gate();
      await reloaded;
      await online();
    } else {
      throw new Error('unknown command ' + cmd);
    }
  });
  const file = path.join(artifacts, 'page.png');
  await page.screenshot({ path: file });
  log.write('screenshot: ' + file);
  await browser.close();
  site.close();
  say('DONE');
});
