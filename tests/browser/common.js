// What the browser drivers (conversejs.js, strophe_bosh.js) share: a
// static site on 127.0.0.1, Debian's chromium launched by playwright-core
// with every request off loopback refused, a log of the page (console,
// errors, XMPP traffic) kept in the test's artifact directory, the failure
// dump, and the line protocol with the Python test on stdin and stdout.

'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP = Number(process.env.STEP_TIMEOUT_MS || 20000);

const TYPES = {
  '.js': 'text/javascript', '.mjs': 'text/javascript', '.cjs': 'text/javascript',
  '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
  '.woff': 'font/woff', '.woff2': 'font/woff2', '.ttf': 'font/ttf',
  '.mp3': 'audio/mpeg', '.ogg': 'audio/ogg', '.map': 'application/json',
};

function say(line) {
  process.stdout.write(line + '\n');
}

// The page's log: ARTIFACTS/console.log, written as it happens so that a
// driver killed by the test's time limit still leaves it.
class Log {
  constructor(dir) {
    fs.mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'console.log');
    this.fd = fs.openSync(this.file, 'w');
  }

  write(line) {
    fs.writeSync(this.fd, new Date().toISOString() + ' ' + line + '\n');
  }
}

// A server for the page: pages maps a path to a function giving its HTML;
// mounts maps a URL prefix to a directory whose files are served as they
// are. Nothing else is served.
function serve(port, pages, mounts) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const page = pages[url.pathname];
    if (page) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8',
                           'Cache-Control': 'no-store' });
      res.end(page());
      return;
    }
    const prefix = Object.keys(mounts).find((p) => url.pathname.startsWith(p));
    if (!prefix) {
      res.writeHead(404).end();
      return;
    }
    const dir = mounts[prefix];
    const file = path.resolve(dir, decodeURIComponent(url.pathname.slice(prefix.length)));
    if (!file.startsWith(dir + path.sep)) {
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
        // a reload asks again (strophe_bosh.js holds that request)
        'Cache-Control': 'no-store',
      });
      res.end(data);
    });
  });
  return new Promise((resolve) => {
    server.listen(Number(port || 0), '127.0.0.1', () => resolve(server));
  });
}

function loopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  return u.hostname === '127.0.0.1';
}

// Chromium with one page. Requests not to 127.0.0.1 are refused (and
// reported as BLOCKED lines); the resolver maps every name to nothing, so
// even a request route() missed cannot leave the machine. The page's
// console, errors and WebSocket frames go to log.
async function launch(log) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Running as root (containers) needs --no-sandbox.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
           '--disable-background-networking', '--disable-component-update',
           '--no-first-run', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  // Note: with request interception on, playwright answers a CORS
  // preflight (OPTIONS) itself; the page's actual cross-origin requests
  // (upload PUT, BOSH POST) still need Starling's CORS headers, and
  // Starling's preflight answers are tested in tests/conversation.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (loopback(url)) return route.continue();
    say('BLOCKED ' + url);
    log.write('blocked ' + url);
    return route.abort('blockedbyclient');
  });
  // WebSockets are not seen by route(): check them here, refuse others.
  await context.routeWebSocket(/.*/, (ws) => {
    if (loopback(ws.url())) {
      ws.connectToServer();
    } else {
      say('BLOCKED ' + ws.url());
      log.write('blocked ' + ws.url());
      ws.close({ code: 1008, reason: 'not loopback' });
    }
  });
  const page = await context.newPage();
  page.on('console', (m) => log.write('console.' + m.type() + ': ' + m.text()));
  page.on('pageerror', (e) => log.write('pageerror: ' + e));
  page.on('websocket', (ws) => {
    log.write('websocket ' + ws.url());
    ws.on('framesent', (f) => log.write('ws> ' + f.payload));
    ws.on('framereceived', (f) => log.write('ws< ' + f.payload));
    ws.on('close', () => log.write('websocket closed'));
  });
  page.on('requestfailed', (r) => log.write('request failed: ' + r.method() + ' ' +
                                              r.url() + ' ' + (r.failure() || {}).errorText));
  return { browser, context, page };
}

// Runs main(page-holder); on an error: a screenshot (failure.png) beside
// the log, the message as "FAILED <reason>", exit status 1.
function run(dir, log, main) {
  const held = { page: null };
  main(held).then(() => process.exit(0), async (err) => {
    if (held.page) {
      try {
        const file = path.join(dir, 'failure.png');
        await held.page.screenshot({ path: file, timeout: 5000 });
        log.write('failure screenshot: ' + file);
      } catch (e) {
        log.write('no failure screenshot: ' + e);
      }
    }
    log.write('failed: ' + String(err && err.stack || err));
    say('FAILED ' + String(err && err.message || err).split('\n')[0]);
    process.exit(1);
  });
}

// The commands of the test, one a line: handler(cmd, text) for each until
// QUIT or the end of stdin; ABORT fails the run (run() keeps failure.png).
async function commands(handler) {
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [cmd, ...rest] = line.split(' ');
    if (cmd === 'QUIT') break;
    // the test failed on its side: leave the screenshot and the log
    if (cmd === 'ABORT') throw new Error('the test failed (ABORT)');
    await handler(cmd, rest.join(' '));
  }
}

module.exports = { STEP, say, Log, serve, loopback, launch, run, commands };
