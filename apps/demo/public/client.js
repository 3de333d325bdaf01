// Sluice demo page: one EventSource per stream, plain DOM, no framework, no build step of its
// own. The private notifications panel alone uses @sluice/client (an Authorization header), from
// the bundle in vendor/ that scripts/build-client.mjs makes, imported when the panel opens.
"use strict";

const $ = (id) => document.getElementById(id);
const STATES = ["CONNECTING", "OPEN", "CLOSED"];

// ---------------------------------------------------------------------------------------------
// Raw log: newest first, at most LOG_MAX lines. Ticker prices (10/s) are left out unless asked.
// ---------------------------------------------------------------------------------------------
const LOG_MAX = 200;
const logList = $("log");
const logTicker = $("log-ticker");

function log(stream, kind, data = "", id = "") {
  if (stream === "ticker" && kind === "price" && !logTicker.checked) return;
  const li = document.createElement("li");
  const cells = [
    ["t", new Date().toLocaleTimeString([], { hour12: false }) + timeFraction()],
    ["s", stream],
    [`k k-${kind}`, id ? `${kind} #${id}` : kind],
    ["d", data],
  ];
  for (const [cls, text] of cells) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    if (cls === "d") span.title = text;
    li.append(span);
  }
  logList.prepend(li);
  while (logList.childElementCount > LOG_MAX) logList.lastElementChild.remove();
}

function timeFraction() {
  return "." + String(new Date().getMilliseconds()).padStart(3, "0");
}

$("log-clear").addEventListener("click", () => logList.replaceChildren());

// ---------------------------------------------------------------------------------------------
// Panels: state badge (#state-<name>), reconnect count (#reconnects-<name>), last event id
// (#last-id-<name>). Counts survive a panel's new EventSource (ticker resume, job, replay).
// ---------------------------------------------------------------------------------------------
const panels = {};

function panel(name) {
  return (panels[name] ??= { reconnects: 0, source: null });
}

function showState(name, state) {
  const badge = $(`state-${name}`);
  badge.textContent = state;
  badge.dataset.state = state;
}

/**
 * Wires a new source to its panel, and `handlers` (event name -> fn(data, event)) to it. A source
 * is an EventSource, or an SseClient of @sluice/client (the same readyState values and events; its
 * data arrives parsed, and its `error` events carry the reason).
 */
function track(name, source, handlers) {
  const parsed = !(source instanceof EventSource);
  const p = panel(name);
  p.source = source;
  let opened = false;
  const render = () => {
    if (p.source === source) showState(name, STATES[source.readyState]);
  };
  source.addEventListener("open", () => {
    // The browser reconnects on its own after a drop: every open after the first is one.
    if (opened) {
      p.reconnects++;
      $(`reconnects-${name}`).textContent = String(p.reconnects);
    }
    opened = true;
    render();
    log(name, "open");
  });
  source.addEventListener("error", (e) => {
    render();
    log(
      name,
      source.readyState === EventSource.CLOSED ? "closed" : "error",
      e.error ? `${STATES[source.readyState]}: ${e.error.message}` : STATES[source.readyState],
    );
  });
  for (const [type, handle] of Object.entries(handlers)) {
    source.addEventListener(type, (e) => {
      if (e.lastEventId) $(`last-id-${name}`).textContent = e.lastEventId;
      log(name, type, parsed ? JSON.stringify(e.data) : e.data, e.lastEventId);
      let data = e.data;
      if (!parsed) {
        try {
          data = JSON.parse(e.data);
        } catch {
          // not JSON (the /sse events are plain text)
        }
      }
      handle(data, e);
    });
  }
  render();
  return source;
}

/**
 * Closes a panel's source ourselves (no event fires for that, so render the state here): IDLE,
 * not CLOSED, because nothing went wrong (CLOSED, in red, is the browser giving up).
 */
function closeSource(name) {
  const p = panel(name);
  if (!p.source) return;
  p.source.close();
  p.source = null;
  showState(name, "IDLE");
  log(name, "closed", "closed by the page");
}

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------
const clock = $("clock");
track("time", new EventSource("/api/time"), {
  time(iso) {
    const date = new Date(iso);
    clock.textContent = date.toLocaleTimeString([], { hour12: false });
    clock.dateTime = iso;
  },
});

// ---------------------------------------------------------------------------------------------
// Client count
// ---------------------------------------------------------------------------------------------
track("client-count", new EventSource("/api/client-count"), {
  "client-count"({ count }) {
    $("client-count").textContent = String(count);
    $("client-count").removeAttribute("data-pending");
  },
});

// ---------------------------------------------------------------------------------------------
// /sse: ten events, then the server ends the stream. EventSource would reconnect and replay them
// forever, so the page closes it after demo10.
// ---------------------------------------------------------------------------------------------
const demoList = $("demo");
function openDemo() {
  demoList.replaceChildren();
  const source = track("sse", new EventSource("/sse"), {
    message(text) {
      const li = document.createElement("li");
      li.textContent = text;
      demoList.append(li);
      if (text === "demo10") closeSource("sse");
    },
  });
  return source;
}
openDemo();
$("sse-replay").addEventListener("click", () => {
  closeSource("sse");
  openDemo();
});

// ---------------------------------------------------------------------------------------------
// Chat: messages arrive over /api/chat (resumed after a drop via Last-Event-ID, by the browser);
// sending is a plain POST. The stream carries the page's name (?user=), so the server lists it in
// `members` events (who is here, in every replica); a new name reopens the stream, resuming after
// the last message seen (?lastEventId=), so nothing is missed or shown twice.
// ---------------------------------------------------------------------------------------------
const chatList = $("chat-messages");
const chatForm = $("chat-form");
const chatUser = $("chat-user");
const chatText = $("chat-text");
const chatSend = $("chat-send");
const chatError = $("chat-error");
const CHAT_MAX = 200;

function addChatItem(li) {
  const atBottom = chatList.scrollHeight - chatList.scrollTop - chatList.clientHeight < 40;
  chatList.append(li);
  while (chatList.childElementCount > CHAT_MAX) chatList.firstElementChild.remove();
  if (atBottom) chatList.scrollTop = chatList.scrollHeight;
}

const chatMembers = $("chat-members");
const USER_KEY = "sluice-demo-user";
/** The name the open chat stream carries, and the id of the last message it delivered. */
let chatAs = "";
let chatLastId = "";

/** Who is here: each name once (with its number of tabs), and how many others. */
function showMembers({ total, users }) {
  const tabs = new Map();
  for (const user of users) tabs.set(user, (tabs.get(user) ?? 0) + 1);
  const items = [...tabs].map(([user, n]) => {
    const li = document.createElement("li");
    li.textContent = user; // textContent: names are user text
    if (user === chatAs) li.dataset.self = "";
    if (n > 1) {
      const more = document.createElement("span");
      more.className = "tabs";
      more.textContent = `×${n}`;
      li.append(more);
    }
    return li;
  });
  chatMembers.replaceChildren(...items);
  $("chat-here-count").textContent = String(total);
  // Clients without a name, and named ones past the server's first MEMBERS_SHOWN.
  const others = total - users.length;
  $("chat-anonymous").textContent = others > 0 ? `+ ${others} more` : "";
}

function openChat() {
  closeSource("chat");
  chatAs = chatUser.value.trim();
  const params = new URLSearchParams();
  if (chatAs) params.set("user", chatAs);
  if (chatLastId) params.set("lastEventId", chatLastId);
  const query = params.toString();
  track("chat", new EventSource(`/api/chat${query ? `?${query}` : ""}`), chatHandlers);
}

const chatHandlers = {
  members: showMembers,
  message({ user, text, at }, e) {
    chatLastId = e.lastEventId;
    const li = document.createElement("li");
    li.dataset.id = e.lastEventId;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = user;
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text; // textContent: user text is never HTML
    const time = document.createElement("time");
    time.dateTime = at;
    time.textContent = new Date(at).toLocaleTimeString([], {
      hour: "2-digit",
      minute: "2-digit",
      hour12: false, // 24-hour, as the clock and the log
    });
    li.append(who, body, time);
    addChatItem(li);
  },
  reset(_data, e) {
    chatLastId = e.lastEventId;
    const li = document.createElement("li");
    li.className = "notice";
    li.textContent = "Some messages were missed while disconnected.";
    addChatItem(li);
  },
};

chatUser.value = localStorage.getItem(USER_KEY) ?? "";
openChat();

chatForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  chatError.textContent = "";
  chatSend.disabled = true;
  try {
    const res = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: chatUser.value, text: chatText.value }),
    });
    if (res.ok) {
      localStorage.setItem(USER_KEY, chatUser.value);
      chatText.value = "";
      if (chatUser.value.trim() !== chatAs) openChat(); // be listed under the new name
    } else {
      const body = await res.json().catch(() => ({}));
      chatError.textContent = body.error ?? `HTTP ${res.status}`;
    }
  } catch {
    chatError.textContent = "Network error: the message was not sent.";
  } finally {
    chatSend.disabled = false;
    chatText.focus();
  }
});

// ---------------------------------------------------------------------------------------------
// Updates
// ---------------------------------------------------------------------------------------------
const updatesList = $("updates");
track("updates", new EventSource("/api/updates"), {
  dataUpdate({ version, at, orders, added }) {
    $("update-orders").textContent = orders.toLocaleString();
    $("update-orders").removeAttribute("data-pending");
    $("update-meta").textContent =
      `orders · version ${version} · ${new Date(at).toLocaleTimeString([], { hour12: false })}`;
    const li = document.createElement("li");
    const left = document.createElement("span");
    left.textContent = `v${version} +${added}`;
    const right = document.createElement("span");
    right.textContent = new Date(at).toLocaleTimeString([], { hour12: false });
    li.append(left, right);
    updatesList.prepend(li);
    while (updatesList.childElementCount > 10) updatesList.lastElementChild.remove();
  },
});

// ---------------------------------------------------------------------------------------------
// Ticker: a live canvas chart of the last CHART_POINTS prices, sized to its panel and drawn at
// the screen's pixel density, redrawn at most once per animation frame.
// ---------------------------------------------------------------------------------------------
const CHART_POINTS = 100;
const canvas = $("ticker-chart");
const ctx = canvas.getContext("2d");
const prices = [];
const arrivals = [];
let drawQueued = false;

function queueDraw() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    drawChart();
  });
}

function resizeChart() {
  const dpr = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(width * dpr));
  const h = Math.max(1, Math.round(height * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  drawChart();
}
new ResizeObserver(resizeChart).observe(canvas);
// Moving the window to a screen with another pixel density changes devicePixelRatio only.
(function watchDpr() {
  matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener(
    "change",
    () => {
      resizeChart();
      watchDpr();
    },
    { once: true },
  );
})();
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", queueDraw);

function drawChart() {
  const dpr = canvas.width / Math.max(1, canvas.clientWidth);
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(document.documentElement);
  const muted = style.getPropertyValue("--muted").trim();
  const border = style.getPropertyValue("--border").trim();
  const accent = style.getPropertyValue("--accent").trim();
  ctx.font = `11px ${style.getPropertyValue("--mono")}`;

  if (prices.length < 2) {
    ctx.fillStyle = muted;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(panel("ticker").source ? "Waiting for prices…" : "Paused", w / 2, h / 2);
    return;
  }

  const pad = { top: 12, right: 56, bottom: 12, left: 8 };
  let min = Infinity;
  let max = -Infinity;
  for (const p of prices) {
    if (p.price < min) min = p.price;
    if (p.price > max) max = p.price;
  }
  const span = Math.max(max - min, 0.5);
  const mid = (max + min) / 2;
  min = mid - span * 0.55;
  max = mid + span * 0.55;
  const plotW = w - pad.left - pad.right;
  const plotH = h - pad.top - pad.bottom;
  const x = (i) => pad.left + (plotW * (i + CHART_POINTS - prices.length)) / (CHART_POINTS - 1);
  const y = (price) => pad.top + plotH * (1 - (price - min) / (max - min));

  // Grid and price labels
  ctx.strokeStyle = border;
  ctx.lineWidth = 1;
  ctx.fillStyle = muted;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 3; i++) {
    const value = min + ((max - min) * i) / 3;
    const gy = Math.round(y(value)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.left, gy);
    ctx.lineTo(w - pad.right, gy);
    ctx.stroke();
    ctx.fillText(value.toFixed(2), w - pad.right + 6, gy);
  }

  // Area under the line, then the line
  ctx.beginPath();
  prices.forEach((p, i) => (i === 0 ? ctx.moveTo(x(i), y(p.price)) : ctx.lineTo(x(i), y(p.price))));
  const last = prices.length - 1;
  ctx.lineTo(x(last), pad.top + plotH);
  ctx.lineTo(x(0), pad.top + plotH);
  ctx.closePath();
  const gradient = ctx.createLinearGradient(0, pad.top, 0, pad.top + plotH);
  gradient.addColorStop(0, withAlpha(accent, 0.28));
  gradient.addColorStop(1, withAlpha(accent, 0));
  ctx.fillStyle = gradient;
  ctx.fill();

  ctx.beginPath();
  prices.forEach((p, i) => (i === 0 ? ctx.moveTo(x(i), y(p.price)) : ctx.lineTo(x(i), y(p.price))));
  ctx.strokeStyle = accent;
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  ctx.stroke();

  ctx.beginPath();
  ctx.arc(x(last), y(prices[last].price), 3.5, 0, 2 * Math.PI);
  ctx.fillStyle = accent;
  ctx.fill();
}

/** `#rrggbb` plus an alpha, for the gradient (custom properties hold plain hex colours). */
function withAlpha(hex, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1], 16)}, ${parseInt(m[2], 16)}, ${parseInt(m[3], 16)}, ${alpha})`;
}

const tickerPrice = $("ticker-price");
const tickerChange = $("ticker-change");
const tickerToggle = $("ticker-toggle");

function openTicker() {
  track("ticker", new EventSource("/api/ticker"), {
    price(point) {
      prices.push(point);
      if (prices.length > CHART_POINTS) prices.shift();
      const first = prices[0].price;
      const change = ((point.price - first) / first) * 100;
      tickerPrice.textContent = point.price.toFixed(2);
      tickerPrice.removeAttribute("data-pending");
      tickerChange.textContent = `${change >= 0 ? "▲" : "▼"} ${Math.abs(change).toFixed(2)}%`;
      tickerChange.dataset.dir = change >= 0 ? "up" : "down";
      const now = performance.now();
      arrivals.push(now);
      while (arrivals.length > 0 && arrivals[0] < now - 1000) arrivals.shift();
      $("ticker-rate").textContent = String(arrivals.length);
      queueDraw();
    },
  });
  tickerToggle.textContent = "Pause";
}
openTicker();
tickerToggle.addEventListener("click", () => {
  if (panel("ticker").source) {
    // The last watcher leaving stops the server's price generator.
    closeSource("ticker");
    tickerToggle.textContent = "Resume";
    $("ticker-rate").textContent = "0";
    queueDraw();
  } else {
    prices.length = 0;
    openTicker();
    queueDraw();
  }
});

// ---------------------------------------------------------------------------------------------
// Progress: one job per EventSource; the page closes it on `done` (else the browser would
// reconnect and start another job). Closing it early cancels the job on the server.
// ---------------------------------------------------------------------------------------------
const bar = $("progress-bar");
const progressText = $("progress-text");
const progressStart = $("progress-start");
const progressCancel = $("progress-cancel");

function setProgress(percent, state, text) {
  bar.value = percent;
  bar.textContent = `${percent}%`;
  bar.dataset.state = state;
  progressText.textContent = text;
  const running = state === "running";
  progressStart.disabled = running;
  progressCancel.disabled = !running;
}

progressStart.addEventListener("click", () => {
  closeSource("progress");
  setProgress(0, "running", "Starting…");
  track("progress", new EventSource("/api/progress"), {
    progress({ percent }) {
      setProgress(percent, "running", `${percent}%`);
    },
    done({ ms }) {
      closeSource("progress");
      setProgress(100, "done", `Done in ${(ms / 1000).toFixed(1)} s`);
    },
    failed({ message }) {
      closeSource("progress");
      setProgress(Number(bar.value), "failed", `Failed: ${message}`);
    },
  });
});

progressCancel.addEventListener("click", () => {
  closeSource("progress");
  setProgress(Number(bar.value), "cancelled", `Cancelled at ${bar.value}%`);
});

// ---------------------------------------------------------------------------------------------
// Private notifications. Signing in sets an HttpOnly session cookie (the script never sees it);
// the page trades it for a stream token that lives a minute (POST /api/stream-token) and reads
// the stream with @sluice/client, which sends the token as `Authorization: Bearer` (EventSource
// cannot send headers) and reconnects by itself with Last-Event-ID: after a dropped connection,
// and after the server ends the stream (its maxLifetime). A reconnect with an expired token gets
// 401: the client's onUnauthorized mints a new token and the client tries again at once, so the
// channel replays what was missed.
// ---------------------------------------------------------------------------------------------
const PRIVATE_USER_KEY = "sluice-demo-private-user";
const PRIVATE_MAX = 200;
const privateList = $("private-notifications");
const privateLoginForm = $("private-login-form");
const privateUserInput = $("private-user");
const privateLogin = $("private-login");
const privateSession = $("private-session");
const privateNotifyForm = $("private-notify-form");
const privateTo = $("private-to");
const privateText = $("private-text");
const privateSend = $("private-send");
const privateError = $("private-error");
const privateNote = $("private-note");

let privateUser = null; // signed in as
let privateToken = ""; // the stream token the client sends: replaced when it expires
let privateTimer; // the next try to resume a session from an earlier visit
let sluiceClient; // import() of the bundled @sluice/client, once

/** POSTs JSON (or nothing) and returns the response with its parsed JSON body ({} if none). */
async function postJson(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  return { res, data };
}

/** The bundled client, imported when first needed: without it only this panel is affected. */
function loadSluiceClient() {
  sluiceClient ??= import("./vendor/sluice-client.js").catch((err) => {
    sluiceClient = undefined; // try again next time
    throw err;
  });
  return sluiceClient;
}

function addPrivateItem(li) {
  privateList.prepend(li); // newest first
  while (privateList.childElementCount > PRIVATE_MAX) privateList.lastElementChild.remove();
}

function showSignedIn({ user, token, expiresAt }) {
  privateUser = user;
  privateToken = token;
  $("private-whoami").textContent = user;
  privateLoginForm.hidden = true;
  privateSession.hidden = false;
  privateNotifyForm.hidden = false;
  if (!privateTo.value) privateTo.value = user; // sending to yourself is the quickest try
  showTokenExpiry(expiresAt);
}

function showSignedOut(message = "") {
  privateUser = null;
  privateToken = "";
  clearTimeout(privateTimer);
  closeSource("private");
  localStorage.removeItem(PRIVATE_USER_KEY);
  privateLoginForm.hidden = false;
  privateSession.hidden = true;
  privateNotifyForm.hidden = true;
  privateList.replaceChildren(); // someone else may sign in on this page next
  $("private-token-expires").textContent = "—";
  $("last-id-private").textContent = "—";
  privateError.textContent = message;
}

function showTokenExpiry(iso) {
  $("private-token-expires").textContent = new Date(iso).toLocaleTimeString([], { hour12: false });
}

/**
 * Browsers open at most six HTTP/1.1 connections per origin and five of the page's streams stay
 * open: a sixth would leave none for the POSTs (sending would hang). Directly on port 3000 the
 * private stream therefore takes the ticker's place; over HTTP/2 (nginx) all share one connection.
 */
function makeRoomForPrivate() {
  const nav = performance.getEntriesByType("navigation")[0];
  if (!/^http\/1/.test(nav?.nextHopProtocol ?? "") || !panel("ticker").source) return;
  tickerToggle.click();
  privateNote.hidden = false;
  privateNote.textContent =
    "HTTP/1.1 allows six connections per origin: the ticker was paused to make room for this stream.";
}

/**
 * The client's onUnauthorized: the server refused the token (401: it expired). Mint another with
 * the session cookie and answer true, so the client reconnects with it at once (Last-Event-ID
 * included). A failed mint also answers true: the client then backs off (1 s, 2 s … 30 s) and
 * asks again. An expired session signs the page out and stops the client.
 */
async function refreshPrivateToken(response) {
  if (response.status !== 401 || !privateUser) return false;
  try {
    const { res, data } = await postJson("/api/stream-token");
    if (res.status === 401) {
      showSignedOut("Your session has expired: sign in again.");
      return false;
    }
    if (res.ok && privateUser === data.user) {
      privateToken = data.token;
      showTokenExpiry(data.expiresAt);
    }
  } catch {
    // offline, or the server is restarting: the client's backoff paces the next try
  }
  return privateUser !== null;
}

/** Opens the private stream for the signed-in user. */
async function openPrivate() {
  closeSource("private");
  makeRoomForPrivate();
  const user = privateUser;
  let SseClient;
  try {
    ({ SseClient } = await loadSluiceClient());
  } catch {
    privateError.textContent =
      "The page's stream client (vendor/sluice-client.js) did not load: start the demo with pnpm demo, which bundles it.";
    return;
  }
  if (privateUser !== user || panel("private").source) return; // signed out or in meanwhile
  const source = new SseClient("/api/me/events", {
    headers: () => ({ Authorization: `Bearer ${privateToken}` }), // read on every (re)connect
    reconnectOnEnd: true, // the server ends each stream after 12-15 minutes, on purpose
    // No heartbeatTimeout: the server's Sluice-Heartbeat header (15 s) sets it, to 30 s.
    onUnauthorized: refreshPrivateToken,
  });
  track("private", source, {
    notification({ from, text, at }, e) {
      const li = document.createElement("li");
      li.dataset.id = e.lastEventId;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = from;
      const body = document.createElement("span");
      body.className = "text";
      body.textContent = text; // textContent: user text is never HTML
      const time = document.createElement("time");
      time.dateTime = at;
      time.textContent = new Date(at).toLocaleTimeString([], {
        hour: "2-digit",
        minute: "2-digit",
        hour12: false,
      });
      li.append(who, body, time);
      addPrivateItem(li);
    },
    reset() {
      const li = document.createElement("li");
      li.className = "notice";
      li.textContent = "Some notifications were missed while disconnected.";
      addPrivateItem(li);
    },
  });
}

/**
 * A session from an earlier visit: mint a token with the cookie and open the stream; sign out if
 * the cookie is no longer valid; on a network error try again after 1, 2, 4 … 30 s.
 */
async function resumePrivateSession(failures = 0) {
  if (!privateUser) return;
  try {
    const { res, data } = await postJson("/api/stream-token");
    if (!privateUser) return; // signed out meanwhile
    if (res.status === 401) {
      showSignedOut("Your session has expired: sign in again.");
      return;
    }
    if (!res.ok) throw new Error(data.error ?? `HTTP ${res.status}`);
    showSignedIn(data);
    openPrivate();
  } catch {
    const wait = Math.min(30_000, 1000 * 2 ** failures);
    privateTimer = setTimeout(() => resumePrivateSession(failures + 1), wait);
  }
}

privateLoginForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  privateError.textContent = "";
  privateLogin.disabled = true;
  try {
    const { res, data } = await postJson("/api/login", { user: privateUserInput.value });
    if (res.ok) {
      localStorage.setItem(PRIVATE_USER_KEY, data.user);
      showSignedIn(data);
      openPrivate();
      privateText.focus();
    } else {
      privateError.textContent = data.error ?? `HTTP ${res.status}`;
    }
  } catch {
    privateError.textContent = "Network error: not signed in.";
  } finally {
    privateLogin.disabled = false;
  }
});

$("private-logout").addEventListener("click", async () => {
  // Signed out on the page whatever the server says; the cookie is the server's to clear.
  showSignedOut();
  await postJson("/api/logout").catch(() => undefined);
});

privateNotifyForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  privateError.textContent = "";
  privateSend.disabled = true;
  try {
    const { res, data } = await postJson("/api/me/notify", {
      to: privateTo.value,
      text: privateText.value,
    });
    if (res.ok) {
      privateText.value = "";
    } else if (res.status === 401) {
      showSignedOut("Your session has expired: sign in again.");
    } else {
      privateError.textContent = data.error ?? `HTTP ${res.status}`;
    }
  } catch {
    privateError.textContent = "Network error: the notification was not sent.";
  } finally {
    privateSend.disabled = false;
    privateText.focus();
  }
});

// Signed in on an earlier visit: the cookie may still be valid (8 hours). Only then ask, so a
// first visit makes no request that is bound to fail.
privateUserInput.value = localStorage.getItem(PRIVATE_USER_KEY) ?? chatUser.value;
if (localStorage.getItem(PRIVATE_USER_KEY)) {
  privateUser = localStorage.getItem(PRIVATE_USER_KEY);
  resumePrivateSession();
}
