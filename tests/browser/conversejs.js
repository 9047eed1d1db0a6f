// Converse.js in Debian's chromium, driven by playwright-core, against
// Starling's WebSocket endpoint (tests/interop/test_conversejs.py runs it).
//
//   node conversejs.js WS_URL JID PASSWORD PEER_JID SCREENSHOT [PAGE_PORT]
//
// It serves a page and Converse.js's dist files from 127.0.0.1 itself,
// opens the page in chromium with every request that is not to 127.0.0.1
// refused (page.route, and chromium's resolver knows no other host), and
// talks with the test over lines on stdin and stdout:
//
//   LOGGED_IN <full jid>       Converse.js is connected and bound
//   (test) EXPECT <text>       wait until a message with <text> shows
//   GOT <text>                 ... it is in the chat's DOM, from PEER_JID
//   (test) REPLY <text>        type <text> into the chat box and press Enter
//   SENT <text>                ... it shows in the chat as our own message
//   (test) SHOT                save the screenshot of the conversation
//   SCREENSHOT <path>
//   (test) QUIT                close the browser
//   BLOCKED <url>              a request that tried to leave loopback
//   DONE
//   FAILED <reason>            anything else; the process exits 1

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const [wsUrl, jid, password, peer, screenshot, sitePort] = process.argv.slice(2);
const DIST = path.join(__dirname, 'node_modules', 'converse.js', 'dist');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP = Number(process.env.STEP_TIMEOUT_MS || 20000);

const TYPES = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
  '.woff': 'font/woff', '.woff2': 'font/woff2', '.ttf': 'font/ttf',
  '.mp3': 'audio/mpeg', '.ogg': 'audio/ogg', '.map': 'application/json',
};

function say(line) {
  process.stdout.write(line + '\n');
}

// A Converse.js plugin of the page's own: it tells the driver the JID the
// server bound, through the API plugins use, once Converse.js handles
// messages (it registers its handlers at presencesInitialized, after the
// roster) and has its own status (initial presence).
const PLUGIN = "converse.plugins.add('starling-test', { initialize() {" +
  " const { api } = this._converse; window.__starling_api = api;" +
  " api.listen.on('connected', async () => {" +
  " await api.waitUntil('presencesInitialized');" +
  " await api.waitUntil('statusInitialized');" +
  // the server's echo of the initial presence: the session is available
  " api.listen.stanza('presence', {}, (p) => {" +
  " const me = api.connection.get().jid;" +
  " if (p.getAttribute('from') === me) window.__starling_jid = me;" +
  " return true; }); }); } });";

function page_html() {
  const settings = {
    websocket_url: wsUrl,
    discover_connection_methods: false,
    auto_login: true,
    jid: jid,
    password: password,
    view_mode: 'overlayed',
    allow_non_roster_messaging: true,
    assets_path: '/dist/',
    play_sounds: false,
    show_desktop_notifications: false,
    persistent_store: 'IndexedDB',
    loglevel: process.env.CONVERSE_LOGLEVEL || 'info',
    whitelisted_plugins: ['starling-test'],
    // OMEMO would fetch its WebAssembly from a path of its own; the chat
    // under test is plain text.
    blacklisted_plugins: ['converse-omemo'],
  };
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<title>Starling: Converse.js</title>' +
    '<link rel="stylesheet" href="/dist/converse.min.css">' +
    '</head><body>' +
    // Converse.js's dist is an ES module (it loads its chunks by import()).
    '<script type="module">import converse from "/dist/converse.min.js";\n' +
    PLUGIN + 'converse.initialize(' + JSON.stringify(settings) +
    ');</script>' +
    '</body></html>';
}

// The page and dist/ only; nothing outside dist/ is served.
function serve() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page_html());
      return;
    }
    const rel = decodeURIComponent(url.pathname).replace(/^\/dist\//, '');
    const file = path.resolve(DIST, rel);
    if (!url.pathname.startsWith('/dist/') || !file.startsWith(DIST + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    fs.readFile(file, (err, data) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
      });
      res.end(data);
    });
  });
  return new Promise((resolve) => {
    server.listen(Number(sitePort || 0), '127.0.0.1', () => resolve(server));
  });
}

function loopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  return u.hostname === '127.0.0.1';
}

let current_page = null;

// On a failure: what the page shows, as a screenshot beside the one asked
// for (failure.png) and the chats it holds.
async function dump() {
  if (!current_page) return;
  try {
    const file = path.join(path.dirname(screenshot), 'failure.png');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await current_page.screenshot({ path: file });
    process.stderr.write('failure screenshot: ' + file + '\n');
    const chats = await current_page.evaluate(() =>
      Array.from(document.querySelectorAll('converse-chat, .chatbox'))
        .map((e) => e.tagName + ' jid=' + e.getAttribute('jid') + ': ' +
             e.innerText.slice(0, 300)));
    process.stderr.write('chats: ' + JSON.stringify(chats) + '\n');
    const models = await current_page.evaluate(async () =>
      (await window.__starling_api.chats.get()).map((c) => c.get('jid') +
        ' hidden=' + c.get('hidden') + ' minimized=' + c.get('minimized') +
        ' messages=' + c.messages.length));
    process.stderr.write('models: ' + JSON.stringify(models) + '\n');
  } catch (e) {
    process.stderr.write('no dump: ' + e + '\n');
  }
}

async function main() {
  const site = await serve();
  const origin = 'http://127.0.0.1:' + site.address().port;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Running as root (containers) needs --no-sandbox; the resolver maps
    // every name to nothing, so even a request page.route missed cannot
    // leave the machine.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
           '--disable-background-networking', '--disable-component-update',
           '--no-first-run', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (loopback(url)) return route.continue();
    say('BLOCKED ' + url);
    return route.abort('blockedbyclient');
  });
  // WebSockets are not seen by route(): check them here, refuse others.
  await context.routeWebSocket(/.*/, (ws) => {
    if (loopback(ws.url())) {
      ws.connectToServer();
    } else {
      say('BLOCKED ' + ws.url());
      ws.close({ code: 1008, reason: 'not loopback' });
    }
  });
  const page = await context.newPage();
  current_page = page;
  page.on('console', (m) => process.stderr.write('console.' + m.type() + ': ' + m.text() + '\n'));
  page.on('pageerror', (e) => process.stderr.write('pageerror: ' + e + '\n'));
  await page.goto(origin + '/', { timeout: STEP });

  // The page's plugin (page_html) publishes the bound JID once connected.
  const handle = await page.waitForFunction(() => window.__starling_jid || null,
    null, { timeout: STEP });
  say('LOGGED_IN ' + await handle.jsonValue());

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [cmd, ...rest] = line.split(' ');
    const text = rest.join(' ');
    if (cmd === 'EXPECT') {
      // The message shows in the chat box Converse.js opened for the peer.
      const box = page.locator('.chatbox[jid="' + peer + '"]');
      await box.locator('.chat-msg__text', { hasText: text }).first()
        .waitFor({ timeout: STEP });
      say('GOT ' + text);
    } else if (cmd === 'REPLY') {
      const box = page.locator('.chatbox[jid="' + peer + '"]');
      const area = box.locator('textarea.chat-textarea');
      await area.click({ timeout: STEP });
      await area.fill(text);
      await area.press('Enter');
      await box.locator('.chat-msg__text', { hasText: text }).first().waitFor({ timeout: STEP });
      say('SENT ' + text);
    } else if (cmd === 'SHOT') {
      fs.mkdirSync(path.dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot });
      say('SCREENSHOT ' + screenshot);
    } else if (cmd === 'QUIT') {
      break;
    }
  }
  await browser.close();
  site.close();
  say('DONE');
}

main().then(() => process.exit(0), async (err) => {
  await dump();
  say('FAILED ' + String(err && err.message || err).split('\n')[0]);
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
