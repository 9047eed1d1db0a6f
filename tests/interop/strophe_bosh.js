// strophe_bosh.js - Debian's strophe.js (libjs-strophe) over BOSH, run
// under node as a page would run it: the browser objects it needs are
// given here (DOM and parser from node-xmldom, XMLHttpRequest on node's
// http, sessionStorage kept in a file so that a second run is the same
// "page" reloaded). Driven by tests/interop/test_strophe_bosh.py.
//
//   node strophe_bosh.js login URL JID PASSWORD STORAGE PEER
//       logs in with keepalive, sends PEER "hello from strophe", waits
//       for a chat message, prints "GOT <body>", and ends abruptly (the
//       page goes away): the session stays in STORAGE.
//   node strophe_bosh.js reload URL JID PASSWORD STORAGE PEER
//       restores the session from STORAGE (no new login), prints
//       "RESTORED", waits for a message, prints "GOT <body>", answers
//       PEER "after reload", then disconnects and prints "DONE".
'use strict';
const fs = require('fs');
const http = require('http');
const vm = require('vm');
const xmldom = require('/usr/share/nodejs/@xmldom/xmldom');

const [mode, url, jid, password, storage, peer] = process.argv.slice(2);

// --- what a browser would give strophe.js ------------------------------

const impl = new xmldom.DOMImplementation();
globalThis.window = globalThis;
globalThis.DOMParser = xmldom.DOMParser;
globalThis.XMLSerializer = xmldom.XMLSerializer;
globalThis.document = impl.createDocument(null, 'html', null);
globalThis.document.implementation = impl;
globalThis.document.cookie = '';

function loadStore() {
    try { return JSON.parse(fs.readFileSync(storage, 'utf8')); } catch (e) { return {}; }
}
globalThis.sessionStorage = {
    getItem(k) { const s = loadStore(); return k in s ? s[k] : null; },
    setItem(k, v) { const s = loadStore(); s[k] = String(v); fs.writeFileSync(storage, JSON.stringify(s)); },
    removeItem(k) { const s = loadStore(); delete s[k]; fs.writeFileSync(storage, JSON.stringify(s)); },
};

const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });

// The part of XMLHttpRequest strophe.js uses, on node's http.
class XMLHttpRequest {
    constructor() { this.readyState = 0; this.status = 0; this.responseText = ''; this.responseXML = null; this.headers = {}; }
    open(method, u) { this.method = method; this.url = new URL(u); this.readyState = 1; }
    setRequestHeader(k, v) { this.headers[k] = v; }
    abort() { if (this.req) this.req.destroy(); this.aborted = true; }
    send(body) {
        this.req = http.request({ agent, method: this.method, host: this.url.hostname, port: this.url.port,
                                  path: this.url.pathname, headers: this.headers }, (res) => {
            let data = '';
            res.setEncoding('utf8');
            res.on('data', (c) => { data += c; });
            res.on('end', () => {
                if (this.aborted) return;
                this.status = res.statusCode;
                this.responseText = data;
                try { this.responseXML = new xmldom.DOMParser().parseFromString(data, 'text/xml'); } catch (e) { this.responseXML = null; }
                this.readyState = 4;
                if (this.onreadystatechange) this.onreadystatechange();
            });
        });
        this.req.on('error', () => {
            if (this.aborted) return;
            this.status = 0; this.readyState = 4;
            if (this.onreadystatechange) this.onreadystatechange();
        });
        this.req.end(body);
    }
}
globalThis.XMLHttpRequest = XMLHttpRequest;

vm.runInThisContext(fs.readFileSync('/usr/share/javascript/strophe/strophe.js', 'utf8'),
                    { filename: 'strophe.js' });
const Strophe = globalThis.Strophe;

// --- the page --------------------------------------------------------------

const conn = new Strophe.Connection(url, { keepalive: true });
const timer = setTimeout(() => { console.log('TIMEOUT'); process.exit(2); }, 30000);

function chat(to, text) {
    conn.send(globalThis.$msg({ to, type: 'chat' }).c('body').t(text));
}

function onMessage(m) {
    const body = m.getElementsByTagName('body')[0];
    if (!body) return true;
    console.log('GOT ' + Strophe.getText(body));
    if (mode === 'login') {
        // The page goes away with its requests open: nothing says goodbye.
        conn.flush();
        setTimeout(() => process.exit(0), 200);
    } else {
        chat(peer, 'after reload');
        conn.flush();
        setTimeout(() => { conn.disconnect(); }, 300);
    }
    return true;
}

function onStatus(status) {
    if (status === Strophe.Status.CONNECTED || status === Strophe.Status.ATTACHED) {
        console.log(status === Strophe.Status.CONNECTED ? 'CONNECTED ' + conn.jid : 'RESTORED ' + conn.jid);
        conn.addHandler(onMessage, null, 'message', 'chat');
        conn.send(globalThis.$pres());
        if (mode === 'login')
            chat(peer, 'hello from strophe');
    } else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL) {
        console.log('FAILED ' + status);
        process.exit(1);
    } else if (status === Strophe.Status.DISCONNECTED) {
        console.log('DONE');
        clearTimeout(timer);
        agent.destroy();
        process.exit(0);
    }
}

if (mode === 'login') {
    conn.connect(jid, password, onStatus);
} else {
    try {
        conn.restore(jid, onStatus);
    } catch (e) {
        console.log('FAILED restore ' + e);
        process.exit(1);
    }
}
