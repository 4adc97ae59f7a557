// The exos trader's page: markets, a live book with a depth chart, trades, a candle chart, and an order ticket
// that signs in the browser with the documented scheme (README, "Signing"); the key also signs its login to the
// user channel and its private reads (README, "Private reads"). No build step: plain ES modules.
import * as secp from "/web/vendor/secp256k1.js";

const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();
const hex = (b) => "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (h) => Uint8Array.from(h.replace(/^0x/, "").match(/../g) || [], (x) => parseInt(x, 16));
const keccak = (bytes) => unhex(window.keccak256(bytes));
const concat = (...parts) => { const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0)); let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; } return out; };
const word = (n) => { const out = new Uint8Array(32); let v = BigInt(n); for (let i = 31; i >= 0; i--) { out[i] = Number(v & 255n); v >>= 8n; } return out; };

// ---------------------------------------------------------------- the key, kept in this browser only
let priv = localStorage.getItem("exos.key");
if (!priv) { priv = hex(secp.utils.randomPrivateKey()); localStorage.setItem("exos.key", priv); }
const address = hex(keccak(secp.getPublicKey(unhex(priv), false).slice(1)).slice(12));
$("address").textContent = address;
$("newkey").onclick = () => { localStorage.removeItem("exos.key"); location.reload(); };

// ---------------------------------------------------------------- the documented signing scheme
const RECORD = 182;
function placeRecord(nonce, market, side, price, size, outcome) {
  const r = new Uint8Array(RECORD); const v = new DataView(r.buffer);
  r[0] = 4; r[1] = side; r[5] = outcome;                                  // kind PLACE, side, outcome (byte 5)
  v.setBigUint64(18, BigInt(nonce), true);                                // nonce; timestamp (10..18) stays 0
  r.set(unhex(address), 26);                                              // account; signer (46..66) stays 0
  r.set(enc.encode(market), 66);                                          // market name, NUL-padded to 32
  v.setBigInt64(114, BigInt(price), true); v.setBigInt64(122, BigInt(size), true);
  return r;
}
let domainSeparator = null;
function agentDigest(records) {
  const structHash = keccak(concat(keccak(enc.encode("Agent(string source,bytes32 connectionId)")),
    keccak(enc.encode("a")), keccak(concat(...records))));
  return keccak(concat(new Uint8Array([0x19, 0x01]), domainSeparator, structHash));
}
const typed = (type, ...words) => keccak(concat(new Uint8Array([0x19, 0x01]), domainSeparator,
  keccak(concat(keccak(enc.encode(type)), ...words))));
const account = () => concat(new Uint8Array(12), unhex(address));
// Login(address account,uint64 timestamp): opens the user channel; Request(...): one private REST read
const loginDigest = (ts) => typed("Login(address account,uint64 timestamp)", account(), word(ts));
const requestDigest = (method, path, ts) => typed("Request(address account,string method,string path,uint64 timestamp)",
  account(), keccak(enc.encode(method)), keccak(enc.encode(path)), word(ts));
async function signDigest(digest) {
  const sig = await secp.signAsync(digest, unhex(priv));   // low-s, RFC 6979
  return hex(concat(word(sig.r), word(sig.s), new Uint8Array([27 + sig.recovery])));
}
const sign = (records) => signDigest(agentDigest(records));
let lastLogin = 0;  // the server accepts each login once: never two with one timestamp
async function login() {
  const timestamp = (lastLogin = Math.max(Date.now(), lastLogin + 1));
  return { op: "login", id: "login", address, timestamp, signature: await signDigest(loginDigest(timestamp)) };
}
let lastNonce = 0;
const nonce = () => (lastNonce = Math.max(Date.now(), lastNonce + 1));

// ---------------------------------------------------------------- decimals <-> ticks and lots, exactly
function units(text, step) {  // floor(text / step) with both as decimal strings
  const parse = (s) => { const [i, f = ""] = s.trim().split("."); return [BigInt(i + f.padEnd(18, "0").slice(0, 18))]; };
  if (!/^\d+(\.\d+)?$/.test(text.trim())) throw new Error(`not a decimal: ${text}`);
  return parse(text)[0] / parse(step)[0];
}
function decimal(ticks, step) {
  const [i, f = ""] = step.split("."); const scale = f.length; const v = BigInt(ticks) * BigInt(i + f);
  const s = v.toString().padStart(scale + 1, "0"); return scale ? s.slice(0, -scale) + "." + s.slice(-scale) : s;
}

// ---------------------------------------------------------------- state
let markets = {}, current = null, view = 0, book = { bids: new Map(), asks: new Map(), seq: 0 }, ws = null;
const api = async (path, init) => { const r = await fetch(path, init); const body = await r.json();
  if (!r.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : r.statusText); return body; };
async function privateGet(path) {  // path: exactly what fetch sends (already percent-encoded), query included
  const timestamp = Date.now();
  return api(path, { headers: { "X-Exos-Address": address, "X-Exos-Timestamp": String(timestamp),
    "X-Exos-Signature": await signDigest(requestDigest("GET", path, timestamp)) } });
}

async function start() {
  const info = await api("/v1/info");
  $("venue").textContent = info.name;
  domainSeparator = keccak(concat(
    keccak(enc.encode("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")),
    keccak(enc.encode(info.name)), keccak(enc.encode(info.version)), word(info.chain_id),
    concat(new Uint8Array(12), unhex(info.verifying_contract))));
  const list = await api("/v1/markets");
  markets = Object.fromEntries(list.map((m) => [m.name, m]));
  renderMarkets(list);
  connect();
  const first = new URLSearchParams(location.search).get("market") || list[0]?.name;
  if (first) pick(first);
  setInterval(refreshAccount, 2000);
  setInterval(refreshChart, 3000);
}

function stageOf(m) {  // World Cup events: "WC26-A-MEX-RSA" is Group A, "WC26-GW-A" a group winner, ...
  const event = m.params?.params?.event;
  if (!event) return [m.type, m.name];
  const part = event.split("-")[1] || "";
  const stage = /^[A-L]$/.test(part) ? `Group ${part}` : part.startsWith("M") || part.startsWith("K") ? "Knockouts"
    : part === "GW" ? "Group winners" : "Tournament";
  return [stage, event];
}
function renderMarkets(list) {
  const stages = new Map();
  for (const m of list) {
    const [stage, event] = stageOf(m);
    if (!stages.has(stage)) stages.set(stage, new Map());
    const events = stages.get(stage); if (!events.has(event)) events.set(event, []); events.get(event).push(m);
  }
  const nav = $("markets"); nav.replaceChildren();
  for (const [stage, events] of [...stages].sort(([a], [b]) => a.localeCompare(b))) {
    const d = document.createElement("details"); d.open = stages.size < 4;
    d.innerHTML = `<summary>${stage}</summary>`;
    for (const [event, ms] of events) {
      if (ms.length > 1 || event !== ms[0].name) { const h = document.createElement("div"); h.textContent = event; h.className = "event"; d.append(h); }
      for (const m of ms) { const a = document.createElement("a"); a.href = `?market=${m.name}`; a.textContent = m.params?.params?.symbol || m.name;
        a.dataset.market = m.name; a.onclick = (e) => { e.preventDefault(); pick(m.name); }; d.append(a); }
    }
    nav.append(d);
  }
}

function pick(name) {
  if (ws && current) ws.send(JSON.stringify({ op: "unsubscribe", channel: "book", market: current }));
  if (ws && current) ws.send(JSON.stringify({ op: "unsubscribe", channel: "trades", market: current }));
  current = name; view = 0;
  const m = markets[name];
  $("title").textContent = `${name} (${m.type}, tick ${m.tick_size}, lot ${m.lot_size})`;
  $("outcome-switch").hidden = m.outcomes === "1" || m.outcomes === "0";
  $("prob-head").hidden = m.type !== "prediction";
  document.querySelectorAll("nav a").forEach((a) => { a.classList.toggle("on", a.dataset.market === name);
    if (a.dataset.market === name) a.closest("details").open = true; });
  $("trades").tBodies[0].replaceChildren();
  if (ws?.readyState === 1) subscribe();
  refreshChart(); refreshAccount();
}
document.querySelectorAll("#outcome-switch button").forEach((b) => b.onclick = () => {
  view = Number(b.dataset.outcome); document.querySelectorAll("#outcome-switch button").forEach((x) => x.classList.toggle("on", x === b)); renderBook(); });

function connect() {
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`);
  ws.onopen = async () => {  // the login is handled before the subscription that follows it on this connection
    ws.send(JSON.stringify(await login())); ws.send(JSON.stringify({ op: "subscribe", channel: "user", address }));
    if (current) subscribe(); };
  ws.onclose = () => { $("status").textContent = "reconnecting…"; setTimeout(connect, 1000); };
  ws.onmessage = (e) => { const m = JSON.parse(e.data);
    if (m.channel === "book" && m.market === current) onBook(m);
    else if (m.channel === "trades" && m.market === current) addTrade(m);
    else if (m.channel === "user") refreshAccount();
    else if (m.channel === "login") $("status").textContent = "live";   // logged in: the user channel follows
    else if (m.channel === "error") $("status").textContent = `${m.error.code}: ${m.error.message}`; };
}
function subscribe() {
  ws.send(JSON.stringify({ op: "subscribe", channel: "book", market: current }));
  ws.send(JSON.stringify({ op: "subscribe", channel: "trades", market: current }));
}
function onBook(m) {
  if (m.type === "snapshot") { book = { bids: new Map(), asks: new Map(), seq: 0 }; }
  else if (String(book.seq) !== m.prev_seq) { subscribe(); return; }   // a gap: a fresh snapshot follows
  for (const [side, rows] of [[book.bids, m.bids], [book.asks, m.asks]])
    for (const [p, s, c] of rows) { if (s === "0") side.delete(p); else side.set(p, [s, c]); }
  book.seq = m.seq; $("seq").textContent = `seq ${m.seq}`; renderBook(); drawDepth();
}
function levels() {  // best first, in the viewed outcome's terms (the NO view mirrors the YES book)
  const byPrice = (rev) => (a, b) => rev ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0]);
  let bids = [...book.bids].sort(byPrice(true)), asks = [...book.asks].sort(byPrice(false));
  if (view === 1) { const n = Math.round(1 / Number(markets[current].tick_size)); const flip = (rows) => rows.map(([p, v]) => [String(n - Number(p)), v]);
    [bids, asks] = [flip(asks), flip(bids)]; }
  return [bids, asks];
}
function renderBook() {
  const m = markets[current]; const [bids, asks] = levels(); const prob = m.type === "prediction";
  const row = ([p, [s, c]]) => `<tr><td>${decimal(p, m.tick_size)}</td><td>${decimal(s, m.lot_size)}</td><td>${c}</td>${
    prob ? `<td>${(Number(p) * Number(m.tick_size) * 100).toFixed(1)}%</td>` : ""}</tr>`;
  $("asks").innerHTML = asks.slice(0, 12).reverse().map(row).join("");
  $("bids").innerHTML = bids.slice(0, 12).map(row).join("");
}
function drawDepth() {
  const cv = $("depth"), g = cv.getContext("2d"); g.clearRect(0, 0, cv.width, cv.height);
  const [bids, asks] = levels(); if (!bids.length && !asks.length) return;
  const cum = (rows) => { let t = 0; return rows.map(([p, [s]]) => [Number(p), (t += Number(s))]); };
  const b = cum(bids), a = cum(asks), all = [...b, ...a];
  const lo = Math.min(...all.map((x) => x[0])), hi = Math.max(...all.map((x) => x[0])), top = Math.max(...all.map((x) => x[1]));
  const X = (p) => hi === lo ? cv.width / 2 : (p - lo) / (hi - lo) * (cv.width - 10) + 5, Y = (v) => cv.height - v / top * (cv.height - 10);
  for (const [pts, color] of [[b, "#1e8449"], [a, "#c0392b"]]) { g.strokeStyle = color; g.beginPath();
    pts.forEach(([p, v], i) => i ? g.lineTo(X(p), Y(v)) : g.moveTo(X(p), Y(v))); g.stroke(); }
}
function addTrade(t) {
  const m = markets[current]; const tr = document.createElement("tr");
  tr.innerHTML = `<td>${decimal(t.price, m.tick_size)}</td><td>${decimal(t.size, m.lot_size)}</td><td>${t.side === 0 ? "buy" : "sell"}</td>`;
  const body = $("trades").tBodies[0]; body.prepend(tr); while (body.rows.length > 30) body.deleteRow(-1);
  refreshChart();
}
async function refreshChart() {
  if (!current) return;
  let candles = [];
  try { candles = (await api(`/v1/markets/${current}/candles?interval=${$("interval").value}&limit=120`)).items; } catch { /* no history store */ }
  const cv = $("chart"), g = cv.getContext("2d"); g.clearRect(0, 0, cv.width, cv.height);
  cv.dataset.points = String(candles.length);
  if (!candles.length) return;
  const hi = Math.max(...candles.map((c) => Number(c.high))), lo = Math.min(...candles.map((c) => Number(c.low)));
  const w = cv.width / Math.max(candles.length, 1), Y = (p) => hi === lo ? cv.height / 2 : cv.height - 5 - (Number(p) - lo) / (hi - lo) * (cv.height - 10);
  candles.forEach((c, i) => { g.strokeStyle = g.fillStyle = Number(c.close) >= Number(c.open) ? "#1e8449" : "#c0392b";
    g.beginPath(); g.moveTo(i * w + w / 2, Y(c.high)); g.lineTo(i * w + w / 2, Y(c.low)); g.stroke();
    g.fillRect(i * w + 1, Math.min(Y(c.open), Y(c.close)), Math.max(w - 2, 1), Math.max(Math.abs(Y(c.open) - Y(c.close)), 1)); });
}
$("interval").onchange = refreshChart;

async function refreshAccount() {
  try {
    const acct = await privateGet(`/v1/accounts/${address}`);
    $("balances").tBodies[0].innerHTML = Object.entries(acct.balances).map(([s, b]) => `<tr><td>${s}</td><td>${b.available}</td><td>${b.locked} locked</td></tr>`).join("");
    const px = (mk, p) => markets[mk] ? decimal(p, markets[mk].tick_size) : p, qty = (mk, q) => markets[mk] ? decimal(q, markets[mk].lot_size) : q;
    $("orders").tBodies[0].innerHTML = acct.open_orders.map((o) => `<tr><td>${o.market}</td><td>${o.side === 0 ? "buy" : "sell"}</td><td>${px(o.market, o.price)}</td><td>${qty(o.market, o.remaining)}/${qty(o.market, o.size)}</td></tr>`).join("");
    let fills = [];
    try { fills = (await privateGet(`/v1/history/fills?address=${address}&limit=20`)).items; } catch { fills = await privateGet(`/v1/accounts/${address}/fills?limit=20`); }
    $("fills").tBodies[0].innerHTML = fills.map((f) => `<tr><td>${f.market}</td><td>${f.side === "0" || f.side === 0 ? "buy" : "sell"}</td><td>${px(f.market, f.price)}</td><td>${qty(f.market, f.size)}</td><td>${f.maker === "1" || f.maker === true ? "maker" : "taker"}</td></tr>`).join("");
  } catch (e) { $("status").textContent = String(e); }
}
$("faucet").onclick = async () => { try { await api("/v1/faucet", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ address }) }); refreshAccount(); }
  catch (e) { $("ticket-result").textContent = String(e); } };

$("ticket").onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target), m = markets[current];
  try {
    const record = placeRecord(nonce(), current, Number(f.get("side")), units(f.get("price"), m.tick_size), units(f.get("size"), m.lot_size), view);
    const answer = await api("/v1/actions", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ record: hex(record), signature: await sign([record]) }) });
    const rejected = (answer.events || []).find((x) => x.type === "Rejected");
    $("ticket-result").textContent = answer.accepted ? `accepted: order ${answer.events[0].order_id}` : `refused: ${rejected?.code} ${rejected?.message}`;
    refreshAccount();
  } catch (err) { $("ticket-result").textContent = String(err); }
};

start().catch((e) => { $("status").textContent = String(e); });
