// Converse.js in Debian's chromium, driven by playwright-core, against
// Starling's WebSocket endpoint (tests/browser/test_conversejs.py runs it).
//
//   node conversejs.js WS_URL JID PASSWORD PEER_JID ARTIFACTS [PAGE_PORT]
//
// It serves a page and Converse.js's dist files from 127.0.0.1 itself,
// opens the page in chromium with every request that is not to 127.0.0.1
// refused (common.js), keeps the page's log in ARTIFACTS/console.log and
// talks with the test over lines on stdin and stdout:
//
//   LOGGED_IN <full jid>       Converse.js is connected and bound
//   (test) EXPECT <text>       wait until a message with <text> shows
//   GOT <text>                 ... it is in the chat with PEER_JID
//   (test) REPLY <text>        type <text> into the chat box and press Enter
//   SENT <text>                ... it shows in the chat as our own message
//   (test) UPLOAD <file>       choose <file> in the chat's file input
//   UPLOADED <url>             ... Converse.js uploaded it (XEP-0363) and
//                              sent the message with its URL
//   (test) SHOT                save ARTIFACTS/conversation.png
//   SCREENSHOT <path>
//   (test) QUIT                close the browser
//   BLOCKED <url>              a request that tried to leave loopback
//   DONE
//   FAILED <reason>            anything else (ARTIFACTS/failure.png); exit 1

'use strict';

const path = require('path');
const common = require('./common.js');

const { STEP, say } = common;
const [wsUrl, jid, password, peer, artifacts, sitePort] = process.argv.slice(2);
const DIST = path.join(__dirname, 'node_modules', 'converse.js', 'dist');

// A Converse.js plugin of the page's own: it tells the driver the JID the
// server bound, through the API plugins use, once Converse.js handles
// messages (it registers its handlers at presencesInitialized, after the
// roster) and the server echoed its initial presence.
const PLUGIN = "converse.plugins.add('starling-test', { initialize() {" +
  " const { api } = this._converse; window.__starling_api = api;" +
  " api.listen.on('connected', async () => {" +
  " await api.waitUntil('presencesInitialized');" +
  " await api.waitUntil('statusInitialized');" +
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

const log = new common.Log(artifacts);

common.run(artifacts, log, async (held) => {
  const site = await common.serve(sitePort, { '/': page_html }, { '/dist/': DIST });
  const origin = 'http://127.0.0.1:' + site.address().port;
  const { browser, page } = await common.launch(log);
  held.page = page;
  await page.goto(origin + '/', { timeout: STEP });

  // The page's plugin (PLUGIN) publishes the bound JID once connected.
  const handle = await page.waitForFunction(() => window.__starling_jid || null,
    null, { timeout: STEP });
  say('LOGGED_IN ' + await handle.jsonValue());

  // The chat Converse.js opened for the peer (for an incoming message) or
  // opens (api.chats.open, as a click on the contact does).
  const box = page.locator('converse-chats .chatbox[jid="' + peer + '"]');
  const messages = box.locator('.chat-msg__text');

  await common.commands(async (cmd, text) => {
    if (cmd === 'EXPECT') {
      await messages.filter({ hasText: text }).first().waitFor({ timeout: STEP });
      say('GOT ' + text);
    } else if (cmd === 'REPLY') {
      const area = box.locator('textarea.chat-textarea');
      await area.click({ timeout: STEP });
      await area.fill(text);
      await area.press('Enter');
      await messages.filter({ hasText: text }).first().waitFor({ timeout: STEP });
      say('SENT ' + text);
    } else if (cmd === 'UPLOAD') {
      // The paperclip's input: Converse.js renders it once disco#items of
      // the domain named an upload service; choosing a file asks the slot,
      // PUTs the file and sends its GET URL.
      const input = box.locator('input.fileupload');
      await input.waitFor({ state: 'attached', timeout: STEP });
      await input.setInputFiles(text);
      // The sent message shows the image, loaded from the GET URL
      // (naturalWidth stays 0 for an image that did not load).
      const name = encodeURIComponent(path.basename(text));
      const img = box.locator('img.chat-image[src$="/' + name + '"]').first();
      await img.waitFor({ timeout: STEP });
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0,
        await img.elementHandle(), { timeout: STEP });
      const url = await img.getAttribute('src');
      say('UPLOADED ' + url);
    } else if (cmd === 'SHOT') {
      const file = path.join(artifacts, 'conversation.png');
      await page.screenshot({ path: file });
      say('SCREENSHOT ' + file);
    } else {
      throw new Error('unknown command ' + cmd);
    }
  });
  await browser.close();
  site.close();
  say('DONE');
});
