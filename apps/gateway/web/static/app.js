// Tavern board page: a hand-driven client of the Tavern client protocol
// (PROTOCOL.md), in plain JavaScript with no framework and no build step.
//
// The board state is kept exactly as the protocol says: the `joined`
// snapshot is applied, then every `ev` in seq order; an ev out of order
// makes the page rejoin with `since`. When the connection closes the page
// reconnects with backoff and rejoins with `since` = the last applied seq,
// then resends the ops it sent but never saw acked, with the same op id
// (the server answers those with "dup":true if it had them already).
//
// For tests, window.tavern exposes the state and the actions (see the end
// of this file), and every drawn entity carries data-entity, data-x, data-y
// and data-z with its position as last applied from the server.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('connect-form'), user: $('user'), token: $('token'), board: $('board'),
    connect: $('connect'), disconnect: $('disconnect'),
    status: $('status'), node: $('node'), seq: $('seq'),
    svg: $('svg'), addAsset: $('add-asset'), add: $('add'), del: $('delete'), selected: $('selected'),
    presence: $('presence'), rollForm: $('roll-form'), dice: $('dice'), roll: $('roll'),
    log: $('log'), chatForm: $('chat-form'), chatText: $('chat-text'), chatSend: $('chat-send'),
  };
  const SVGNS = ui.svg.namespaceURI; // the SVG namespace, taken from the element the HTML parser made
  const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const MAX_LOG = 500;
  const PING_EVERY = 25000; // ms between our protocol pings
  const PONG_WAIT = 10000; // ms without a pong before the connection counts as dead
  const RETRY_CODES = new Set(['rate_limited', 'unavailable']); // op errors retried with the same id
  const MAX_TRIES = 5;

  // ---- state ---------------------------------------------------------------

  const st = {
    ws: null,
    phase: 'disconnected', // disconnected | connecting | hello | joining | joined | waiting | unauthorized | error
    want: false, // the user asked to be connected
    creds: null, // {user, token} used in hello
    user: null, // the user the server welcomed us as
    node: null,
    limits: null,
    board: null, // the board the state below belongs to
    seq: 0, // last applied seq
    haveState: false, // entities hold the board at seq (a snapshot was applied at some point)
    resyncing: false, // a join with since is out to fill a gap
    entities: new Map(), // id -> {id, asset, pos:[x,y,z], rot, props}
    present: new Set(),
    attempts: 0, // reconnect attempts since the last successful join
    timer: null, // reconnect timer
    pingTimer: null,
    pongTimer: null,
    refN: 0,
    opN: 0,
    pending: new Map(), // ref -> request waiting for its answer ({kind:'op', entry} or {kind, resolve, reject})
    outbox: [], // ops not acked yet, in order: {id, op, ref, tries, resolve, reject}
    overrides: new Map(), // entity id -> {pos, opId}: where our unacked move put it
    selected: null,
    mark: null, // [x, z] clicked on empty ground: where Add puts the next entity
    drag: null,
    joinWaiters: [], // promises of window.tavern.connect()
  };

  // ---- helpers -------------------------------------------------------------

  function rand(n) {
    const a = new Uint8Array(n);
    crypto.getRandomValues(a);
    let s = '';
    for (const b of a) s += (b % 36).toString(36);
    return s;
  }

  function newOpId() {
    const who = (st.user || st.creds?.user || 'anon').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 24);
    st.opN++;
    return `${who}-${st.opN}-${rand(6)}`; // at most 24+1+10+1+6 bytes, under the 64 allowed
  }

  function nextRef() {
    st.refN++;
    return 'r' + st.refN;
  }

  const round = (v) => Math.round(v * 100) / 100;
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  function send(msg) {
    if (!st.ws || st.ws.readyState !== WebSocket.OPEN) return false;
    st.ws.send(JSON.stringify(msg));
    return true;
  }

  function setPhase(phase, text) {
    st.phase = phase;
    ui.status.dataset.state = phase;
    ui.status.textContent = text || phase;
    ui.disconnect.disabled = !st.want && !st.ws;
    if (phase === 'joined') {
      const w = st.joinWaiters.splice(0);
      w.forEach((p) => p.resolve(api.state()));
    } else if (phase === 'unauthorized' || phase === 'error' || phase === 'disconnected') {
      const w = st.joinWaiters.splice(0);
      w.forEach((p) => p.reject(new Error(phase + ': ' + ui.status.textContent)));
    }
  }

  // ---- log -----------------------------------------------------------------

  function addLog(kind, parts, data) {
    const atBottom = ui.log.scrollTop + ui.log.clientHeight >= ui.log.scrollHeight - 4;
    const li = document.createElement('li');
    li.dataset.kind = kind;
    for (const [k, v] of Object.entries(data || {})) li.dataset[k] = String(v);
    for (const p of parts) {
      if (typeof p === 'string') {
        li.append(p);
      } else {
        const span = document.createElement('span');
        span.className = p.cls;
        span.textContent = p.text; // always text: chat comes from other people
        li.append(span);
      }
    }
    ui.log.append(li);
    while (ui.log.childElementCount > MAX_LOG) ui.log.firstElementChild.remove();
    if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
  }
  const info = (text) => addLog('info', [text]);

  // ---- connection ----------------------------------------------------------

  function wsURL() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  }

  // connect (re)connects with the values of the form. Joining another board
  // starts from an empty state; the same board keeps it and rejoins with since.
  function connect() {
    const board = ui.board.value.trim();
    if (!ID_RE.test(board)) {
      setPhase('error', 'board must match [A-Za-z0-9_-]{1,64}');
      return;
    }
    let user = ui.user.value.trim();
    const token = ui.token.value.trim();
    if (!user && !token) {
      user = 'guest-' + rand(4);
      ui.user.value = user;
    }
    try {
      localStorage.setItem('tavern.user', user);
      localStorage.setItem('tavern.board', board);
    } catch (e) { /* storage may be disabled */ }

    if (board !== st.board) resetBoard(board);
    st.creds = { user, token };
    st.want = true;
    st.attempts = 0;
    closeSocket(1000, 'reconnecting');
    open();
  }

  function disconnect() {
    st.want = false;
    closeSocket(1000, 'bye');
    setPhase('disconnected');
  }

  function resetBoard(board) {
    for (const e of st.outbox) e.reject(new Error('board changed'));
    st.outbox = [];
    st.board = board;
    st.seq = 0;
    st.haveState = false;
    st.entities.clear();
    st.present.clear();
    st.overrides.clear();
    st.selected = null;
    st.mark = null;
    view = null;
    renderAll();
  }

  function open() {
    clearTimeout(st.timer);
    st.timer = null;
    setPhase('connecting', 'connecting');
    let ws;
    try {
      ws = new WebSocket(wsURL());
    } catch (e) {
      closed(0, String(e));
      return;
    }
    st.ws = ws;
    ws.onopen = () => {
      if (st.ws !== ws) return;
      const hello = { t: 'hello', ref: nextRef() };
      if (st.creds.token) hello.token = st.creds.token;
      else hello.user = st.creds.user;
      send(hello);
      setPhase('hello', 'authenticating');
      startPings();
    };
    ws.onmessage = (ev) => {
      if (st.ws !== ws) return;
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        addLog('error', ['server sent a message that is not JSON']);
        return;
      }
      try {
        handle(m);
      } catch (e) {
        addLog('error', ['page error: ' + e.message]);
        console.error(e);
      }
    };
    ws.onclose = (ev) => {
      if (st.ws !== ws) return;
      closed(ev.code, ev.reason);
    };
  }

  // closeSocket detaches the current socket, if any, and closes it.
  function closeSocket(code, reason) {
    const ws = st.ws;
    if (!ws) return;
    st.ws = null;
    stopPings();
    forgetPending();
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(code, reason);
    } catch (e) { /* already closed */ }
  }

  // forgetPending drops the refs of a connection that is gone. Unacked ops
  // stay in the outbox and are sent again, with their ids, after the rejoin.
  function forgetPending() {
    for (const [, p] of st.pending) {
      if (p.kind !== 'op' && p.reject) p.reject(new Error('connection closed'));
    }
    st.pending.clear();
    for (const e of st.outbox) e.ref = null;
  }

  // closed handles the end of the current connection.
  function closed(code, reason) {
    st.ws = null;
    stopPings();
    forgetPending();
    st.present.clear();
    renderPresence();
    if (!st.want) {
      setPhase('disconnected');
      return;
    }
    if (code === 1008 || st.phase === 'unauthorized') {
      st.want = false; // a bad token does not get better by retrying
      setPhase('unauthorized', 'unauthorized' + (reason ? ': ' + reason : ''));
      info('connection closed (1008); not reconnecting');
      return;
    }
    const delay = Math.min(15000, 500 * 2 ** st.attempts) * (0.5 + Math.random() / 2);
    st.attempts++;
    info(`connection closed (${code || 'no code'}${reason ? ', ' + reason : ''}); reconnecting in ${(delay / 1000).toFixed(1)} s`);
    setPhase('waiting', `reconnecting in ${(delay / 1000).toFixed(1)} s`);
    st.timer = setTimeout(open, delay);
  }

  function startPings() {
    stopPings();
    st.pingTimer = setInterval(() => {
      if (st.pongTimer) return;
      send({ t: 'ping', ref: nextRef() });
      st.pongTimer = setTimeout(() => {
        st.pongTimer = null;
        const ws = st.ws;
        closeSocket(4000, 'no pong');
        if (ws) closed(0, 'no answer to ping');
      }, PONG_WAIT);
    }, PING_EVERY);
  }

  function stopPings() {
    clearInterval(st.pingTimer);
    clearTimeout(st.pongTimer);
    st.pingTimer = st.pongTimer = null;
  }

  function sendJoin() {
    const join = { t: 'join', ref: nextRef(), board: st.board };
    if (st.haveState) join.since = st.seq;
    st.pending.set(join.ref, { kind: 'join' });
    send(join);
  }

  // ---- server messages -----------------------------------------------------

  function handle(m) {
    // the request this message answers, if any
    const p = typeof m.ref === 'string' ? st.pending.get(m.ref) : undefined;
    if (p) st.pending.delete(m.ref);
    switch (m.t) {
      case 'welcome':
        st.user = m.user;
        st.node = m.node;
        st.limits = m.limits;
        ui.node.textContent = m.node;
        info(`welcome ${m.user} on node ${m.node}`);
        setPhase('joining', 'joining ' + st.board);
        sendJoin();
        break;
      case 'joined':
        if (m.board !== st.board) return;
        onJoined(m);
        break;
      case 'ev':
        if (m.board !== st.board) return;
        onEvent(m);
        break;
      case 'ack':
        if (p && p.kind === 'op') onAck(p.entry, m);
        break;
      case 'presence':
        if (m.board !== st.board) return;
        if (Array.isArray(m.users)) st.present = new Set(m.users);
        for (const u of m.joins || []) st.present.add(u);
        for (const u of m.leaves || []) st.present.delete(u);
        renderPresence();
        break;
      case 'left':
        break;
      case 'pong':
        clearTimeout(st.pongTimer);
        st.pongTimer = null;
        break;
      case 'notice':
        addLog('notice', [{ cls: 'who', text: 'notice: ' }, String(m.text)]);
        break;
      case 'error':
        onError(m, p);
        break;
      default:
        break; // a newer server may send more; ignore
    }
  }

  function onJoined(m) {
    st.resyncing = false;
    st.attempts = 0;
    if (m.snapshot) {
      st.entities.clear();
      for (const e of m.snapshot.entities || []) {
        const n = normEntity(e);
        if (n) st.entities.set(n.id, n);
      }
      st.seq = m.seq;
      st.haveState = true;
      info(`joined ${m.board} at seq ${m.seq} (snapshot, ${st.entities.size} entities)`);
    } else {
      info(m.seq > st.seq ? `rejoined ${m.board}: replaying ${st.seq + 1}..${m.seq}` : `rejoined ${m.board} at seq ${m.seq}`);
    }
    setPhase('joined', 'joined ' + m.board);
    flushOutbox();
    renderAll();
  }

  function onEvent(m) {
    if (!st.haveState || m.seq <= st.seq) return; // before our snapshot, or already applied
    if (m.seq !== st.seq + 1) {
      if (!st.resyncing) {
        st.resyncing = true;
        info(`missed ops ${st.seq + 1}..${m.seq - 1}; rejoining`);
        sendJoin();
      }
      return;
    }
    apply(m);
    st.seq = m.seq;
    for (const [id, o] of st.overrides) {
      if (o.opId === m.id) st.overrides.delete(id);
    }
    scheduleRender();
  }

  function onAck(entry, m) {
    const i = st.outbox.indexOf(entry);
    if (i >= 0) st.outbox.splice(i, 1);
    if (m.dup) {
      // No ev follows a dup: the op was applied before (replayed or in the snapshot).
      for (const [id, o] of st.overrides) {
        if (o.opId === entry.id) st.overrides.delete(id);
      }
      scheduleRender();
    }
    entry.resolve(m);
  }

  function onError(m, p) {
    const code = String(m.code);
    addLog('error', [{ cls: 'who', text: 'error ' + code + ': ' }, String(m.msg)], { code });
    if (code === 'unauthorized') {
      setPhase('unauthorized', 'unauthorized: ' + m.msg);
      return;
    }
    if (!p) return;
    if (p.kind === 'join') {
      st.want = false;
      closeSocket(1000, 'join refused');
      setPhase('error', `join refused: ${code}`);
      return;
    }
    if (p.kind !== 'op') return;
    const entry = p.entry;
    if (RETRY_CODES.has(code) && entry.tries < MAX_TRIES) {
      entry.tries++;
      entry.ref = null;
      setTimeout(() => {
        if (st.phase === 'joined' && st.outbox.includes(entry) && !entry.ref) transmit(entry);
      }, 300 * 2 ** entry.tries);
      return;
    }
    const i = st.outbox.indexOf(entry);
    if (i >= 0) st.outbox.splice(i, 1);
    for (const [id, o] of st.overrides) {
      if (o.opId === entry.id) st.overrides.delete(id);
    }
    scheduleRender();
    const err = new Error(code + ': ' + m.msg);
    err.code = code;
    entry.reject(err);
  }

  // ---- applying ops (the same rules as the server's board) ----------------

  function normEntity(e) {
    if (!e || typeof e.id !== 'string' || !Array.isArray(e.pos)) return null;
    return {
      id: e.id,
      asset: typeof e.asset === 'string' ? e.asset : '',
      pos: [Number(e.pos[0]) || 0, Number(e.pos[1]) || 0, Number(e.pos[2]) || 0],
      rot: isNum(e.rot) ? e.rot : 0,
      props: e.props && typeof e.props === 'object' ? { ...e.props } : {},
    };
  }

  function apply(ev) {
    const op = ev.op || {};
    switch (op.kind) {
      case 'put':
        for (const e of op.entities || []) {
          const n = normEntity(e);
          if (n) st.entities.set(n.id, n);
        }
        break;
      case 'move': {
        const e = st.entities.get(op.entity);
        if (e && Array.isArray(op.pos)) {
          e.pos = [Number(op.pos[0]) || 0, Number(op.pos[1]) || 0, Number(op.pos[2]) || 0];
          if (isNum(op.rot)) e.rot = op.rot;
        }
        break;
      }
      case 'patch': {
        const e = st.entities.get(op.entity);
        if (e && op.props && typeof op.props === 'object') {
          for (const [k, v] of Object.entries(op.props)) {
            if (v === null) delete e.props[k];
            else e.props[k] = v;
          }
        }
        break;
      }
      case 'del':
        for (const id of op.entities || []) {
          st.entities.delete(id);
          st.overrides.delete(id);
          if (st.selected === id) select(null);
        }
        break;
      case 'chat':
        addLog('chat', [{ cls: 'who', text: ev.user + ': ' }, String(op.text)], { seq: ev.seq, user: ev.user });
        break;
      case 'roll': {
        const r = ev.result || {};
        const rolls = Array.isArray(r.rolls) ? r.rolls : [];
        const sum = rolls.reduce((a, b) => a + b, 0);
        const mod = isNum(r.total) ? r.total - sum : 0;
        const detail = rolls.join(' + ') + (mod > 0 ? ` (+${mod})` : mod < 0 ? ` (${mod})` : '');
        addLog('roll', [
          { cls: 'who', text: ev.user }, ` rolled ${op.dice}: ${detail} = `, { cls: 'total', text: String(r.total) },
        ], { seq: ev.seq, user: ev.user, total: r.total });
        break;
      }
      default:
        break;
    }
  }

  // ---- sending ops ---------------------------------------------------------

  // sendOp queues op and sends it when joined; the promise resolves with
  // the ack and rejects with the error (err.code) when the server refuses it.
  // onQueued, if given, is called with the outbox entry (its id is the op id).
  function sendOp(op, onQueued) {
    if (!st.want || !st.board) {
      addLog('error', ['not connected']);
      return Promise.reject(new Error('not connected'));
    }
    let entry;
    const promise = new Promise((resolve, reject) => {
      entry = { id: newOpId(), op, ref: null, tries: 0, resolve, reject };
    });
    st.outbox.push(entry);
    if (onQueued) onQueued(entry);
    if (st.phase === 'joined') transmit(entry);
    return promise;
  }

  function transmit(entry) {
    entry.ref = nextRef();
    st.pending.set(entry.ref, { kind: 'op', entry });
    send({ t: 'op', ref: entry.ref, board: st.board, id: entry.id, op: entry.op });
  }

  function flushOutbox() {
    for (const e of st.outbox) {
      if (!e.ref) transmit(e);
    }
  }

  // quiet keeps a rejected UI action from being reported twice: the error
  // is already in the log.
  const quiet = (p) => p.catch(() => {});

  function move(id, x, y, z) {
    const e = st.entities.get(id);
    const pos = [round(Number(x)), y === undefined || y === null ? (e ? e.pos[1] : 0) : Number(y), round(Number(z))];
    const p = sendOp({ kind: 'move', entity: id, pos }, (entry) => st.overrides.set(id, { pos, opId: entry.id }));
    scheduleRender();
    return p;
  }

  function put(ent) {
    const e = { id: ent.id || 'e-' + rand(8), asset: ent.asset || 'token', pos: ent.pos };
    if (ent.rot !== undefined) e.rot = ent.rot;
    if (ent.props !== undefined) e.props = ent.props;
    return sendOp({ kind: 'put', entities: [e] });
  }

  function addEntity() {
    let x, z;
    if (st.mark) {
      [x, z] = st.mark;
    } else {
      const v = view || { x: -10, y: -10, w: 20, h: 20 };
      x = v.x + v.w * (0.15 + 0.7 * Math.random());
      z = v.y + v.h * (0.15 + 0.7 * Math.random());
    }
    const id = 'e-' + rand(8);
    st.mark = null;
    select(id);
    quiet(put({ id, asset: ui.addAsset.value.trim() || 'token', pos: [round(x), 0, round(z)] }));
    renderAll();
  }

  function deleteSelected() {
    if (!st.selected) return;
    quiet(sendOp({ kind: 'del', entities: [st.selected] }));
  }

  function select(id) {
    st.selected = id;
    ui.del.disabled = !id;
    ui.selected.textContent = id ? 'selected ' + id : 'nothing selected';
    scheduleRender();
  }

  // ---- drawing -------------------------------------------------------------

  let view = null; // the SVG viewBox in world units {x, y, w, h}: x is world x, y is world z
  let gridKey = '';
  const nodes = new Map(); // entity id -> <g>
  const layers = {};
  let renderQueued = false;

  function initSVG() {
    for (const name of ['grid', 'marks', 'entities']) {
      const g = document.createElementNS(SVGNS, 'g');
      g.setAttribute('class', name + '-layer');
      ui.svg.append(g);
      layers[name] = g;
    }
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      renderBoard();
    }, 0);
  }

  function renderAll() {
    ui.seq.textContent = String(st.seq);
    renderPresence();
    renderBoard();
  }

  function shown(e) {
    if (st.drag && st.drag.id === e.id && st.drag.pos) return st.drag.pos;
    const o = st.overrides.get(e.id);
    return o ? o.pos : e.pos;
  }

  // fitView keeps the view unless the content left it or fills too little
  // of it, so the board does not jump at every move.
  function fitView(force) {
    let minX = Infinity, maxX = -Infinity, minZ = Infinity, maxZ = -Infinity;
    const include = (x, z) => {
      minX = Math.min(minX, x); maxX = Math.max(maxX, x);
      minZ = Math.min(minZ, z); maxZ = Math.max(maxZ, z);
    };
    include(-5, -5);
    include(5, 5);
    for (const e of st.entities.values()) {
      const p = shown(e);
      include(p[0], p[2]);
    }
    if (st.mark) include(st.mark[0], st.mark[1]);
    const pad = Math.max(2, 0.12 * Math.max(maxX - minX, maxZ - minZ));
    let x = minX - pad, y = minZ - pad, w = maxX - minX + 2 * pad, h = maxZ - minZ + 2 * pad;
    // match the element's aspect ratio so the grid fills it
    const box = ui.svg.getBoundingClientRect();
    const cw = box.width || 800, ch = box.height || 600;
    const aspect = cw / ch;
    if (w / h < aspect) {
      const nw = h * aspect;
      x -= (nw - w) / 2;
      w = nw;
    } else {
      const nh = w / aspect;
      y -= (nh - h) / 2;
      h = nh;
    }
    if (!force && view) {
      const inside = x >= view.x && y >= view.y && x + w <= view.x + view.w && y + h <= view.y + view.h;
      const aspectOK = Math.abs(view.w / view.h - aspect) < 0.01 * aspect;
      if (inside && aspectOK && w * h > 0.25 * view.w * view.h) return;
    }
    view = { x, y, w, h };
  }

  function niceStep(span) {
    const raw = span / 12;
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 5, 10]) {
      if (p * m >= raw) return p * m;
    }
    return p * 10;
  }

  function svgEl(name, attrs, parent) {
    const e = document.createElementNS(SVGNS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (parent) parent.append(e);
    return e;
  }

  function renderGrid() {
    const key = [view.x, view.y, view.w, view.h].join(',');
    if (key === gridKey) return;
    gridKey = key;
    ui.svg.setAttribute('viewBox', key.replace(/,/g, ' '));
    const g = layers.grid;
    g.replaceChildren();
    const step = niceStep(Math.max(view.w, view.h));
    const sw = view.w / 1000; // stroke width: about one pixel
    const fs = view.w / 70;
    for (let x = Math.ceil(view.x / step) * step; x <= view.x + view.w; x += step) {
      const xr = round(x);
      svgEl('line', { x1: xr, y1: view.y, x2: xr, y2: view.y + view.h, class: xr === 0 ? 'axis' : 'grid', 'stroke-width': sw }, g);
      svgEl('text', { x: xr + sw * 3, y: view.y + fs, 'font-size': fs, class: 'grid-label' }, g).textContent = String(xr);
    }
    for (let z = Math.ceil(view.y / step) * step; z <= view.y + view.h; z += step) {
      const zr = round(z);
      svgEl('line', { x1: view.x, y1: zr, x2: view.x + view.w, y2: zr, class: zr === 0 ? 'axis' : 'grid', 'stroke-width': sw }, g);
      svgEl('text', { x: view.x + sw * 3, y: zr - sw * 3, 'font-size': fs, class: 'grid-label' }, g).textContent = String(zr);
    }
  }

  function color(s) {
    let h = 0;
    for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
    return `hsl(${h % 360}, 55%, 55%)`;
  }

  function renderBoard() {
    ui.seq.textContent = String(st.seq);
    if (!st.drag) fitView(false);
    renderGrid();
    const r = view.w / 60; // entity radius
    const fs = r * 0.8;

    for (const [id, g] of nodes) {
      if (!st.entities.has(id)) {
        g.remove();
        nodes.delete(id);
      }
    }
    for (const e of st.entities.values()) {
      let g = nodes.get(e.id);
      if (!g) {
        g = svgEl('g', { class: 'entity' }, layers.entities);
        g.dataset.entity = e.id;
        svgEl('circle', { cx: 0, cy: 0 }, g);
        svgEl('line', { x1: 0, y1: 0, y2: 0, class: 'facing' }, g);
        svgEl('text', { 'text-anchor': 'middle' }, g);
        nodes.set(e.id, g);
      }
      const [x, , z] = shown(e);
      g.dataset.x = String(e.pos[0]);
      g.dataset.y = String(e.pos[1]);
      g.dataset.z = String(e.pos[2]);
      g.dataset.asset = e.asset;
      if (st.overrides.has(e.id)) g.dataset.pending = '1';
      else delete g.dataset.pending;
      g.setAttribute('transform', `translate(${x} ${z})`);
      g.classList.toggle('selected', st.selected === e.id);
      g.classList.toggle('dragging', !!st.drag && st.drag.id === e.id);
      const [circle, facing, text] = g.children;
      circle.setAttribute('r', r);
      circle.setAttribute('fill', color(e.asset));
      circle.setAttribute('stroke-width', r / 5);
      // rot is in degrees around y; 0 faces +x
      const a = (e.rot || 0) * Math.PI / 180;
      facing.setAttribute('x2', round(Math.cos(a) * r * 1000) / 1000);
      facing.setAttribute('y2', round(-Math.sin(a) * r * 1000) / 1000);
      facing.setAttribute('stroke', '#fff');
      facing.setAttribute('stroke-width', r / 6);
      text.setAttribute('y', r + fs * 1.1);
      text.setAttribute('font-size', fs);
      text.textContent = e.asset ? `${e.asset} · ${e.id}` : e.id;
    }

    layers.marks.replaceChildren();
    if (st.mark) {
      const [mx, mz] = st.mark;
      svgEl('circle', { cx: mx, cy: mz, r: r * 0.6, class: 'marker', 'stroke-width': r / 6 }, layers.marks);
      svgEl('line', { x1: mx - r, y1: mz, x2: mx + r, y2: mz, class: 'marker', 'stroke-width': r / 8 }, layers.marks);
      svgEl('line', { x1: mx, y1: mz - r, x2: mx, y2: mz + r, class: 'marker', 'stroke-width': r / 8 }, layers.marks);
    }
  }

  function renderPresence() {
    const users = [...st.present].sort();
    ui.presence.replaceChildren(...users.map((u) => {
      const li = document.createElement('li');
      li.dataset.user = u;
      li.textContent = u;
      if (u === st.user) li.className = 'me';
      return li;
    }));
  }

  // toWorld converts a pointer position to world [x, z].
  function toWorld(clientX, clientY) {
    const m = ui.svg.getScreenCTM();
    if (!m) return [0, 0];
    const p = new DOMPoint(clientX, clientY).matrixTransform(m.inverse());
    return [round(p.x), round(p.y)];
  }

  // ---- pointer input -------------------------------------------------------

  ui.svg.addEventListener('pointerdown', (ev) => {
    if (ev.button !== undefined && ev.button !== 0) return;
    const g = ev.target.closest && ev.target.closest('[data-entity]');
    if (!g) {
      st.mark = toWorld(ev.clientX, ev.clientY);
      select(null);
      return;
    }
    ev.preventDefault();
    const id = g.dataset.entity;
    const e = st.entities.get(id);
    if (!e) return;
    const [wx, wz] = toWorld(ev.clientX, ev.clientY);
    const p = shown(e);
    st.drag = { id, x0: ev.clientX, y0: ev.clientY, dx: p[0] - wx, dz: p[2] - wz, y: p[1], moved: false, pos: null };
    try {
      ui.svg.setPointerCapture(ev.pointerId);
    } catch (err) { /* synthetic events have no real pointer */ }
  });

  window.addEventListener('pointermove', (ev) => {
    const d = st.drag;
    if (!d) return;
    if (!d.moved && Math.hypot(ev.clientX - d.x0, ev.clientY - d.y0) < 3) return;
    d.moved = true;
    const [wx, wz] = toWorld(ev.clientX, ev.clientY);
    d.pos = [round(wx + d.dx), d.y, round(wz + d.dz)];
    scheduleRender();
  });

  function endDrag(ev, cancel) {
    const d = st.drag;
    if (!d) return;
    st.drag = null;
    if (d.moved && !cancel) {
      const [wx, wz] = toWorld(ev.clientX, ev.clientY);
      quiet(move(d.id, wx + d.dx, d.y, wz + d.dz)); // keeps the entity's y
    } else if (!d.moved) {
      select(d.id);
    }
    scheduleRender();
  }
  window.addEventListener('pointerup', (ev) => endDrag(ev, false));
  window.addEventListener('pointercancel', (ev) => endDrag(ev, true));

  window.addEventListener('keydown', (ev) => {
    if (ev.target instanceof HTMLInputElement) return;
    if ((ev.key === 'Delete' || ev.key === 'Backspace') && st.selected) {
      ev.preventDefault();
      deleteSelected();
    } else if (ev.key === 'Escape') {
      st.mark = null;
      select(null);
    }
  });

  window.addEventListener('resize', () => {
    fitView(true);
    scheduleRender();
  });

  // ---- forms ---------------------------------------------------------------

  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    connect();
  });
  ui.disconnect.addEventListener('click', disconnect);
  ui.add.addEventListener('click', addEntity);
  ui.del.addEventListener('click', deleteSelected);
  ui.chatForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = ui.chatText.value;
    if (!text.trim()) return;
    ui.chatText.value = '';
    quiet(sendOp({ kind: 'chat', text }));
  });
  ui.rollForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const dice = ui.dice.value.trim();
    if (dice) quiet(sendOp({ kind: 'roll', dice }));
  });

  // ---- the test and console API -------------------------------------------

  const api = {
    // connect fills the form ({user, token, board}, each optional) and
    // connects; the promise resolves with state() once joined.
    connect(opts) {
      opts = opts || {};
      if (opts.user !== undefined) ui.user.value = opts.user;
      if (opts.token !== undefined) ui.token.value = opts.token;
      if (opts.board !== undefined) ui.board.value = opts.board;
      const p = new Promise((resolve, reject) => st.joinWaiters.push({ resolve, reject }));
      connect();
      return p;
    },
    disconnect,
    // state returns a copy of what the page holds, as applied from the server.
    state() {
      return {
        status: st.phase,
        user: st.user,
        node: st.node,
        board: st.board,
        seq: st.seq,
        entities: [...st.entities.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          .map((e) => ({ id: e.id, asset: e.asset, pos: e.pos.slice(), rot: e.rot, props: JSON.parse(JSON.stringify(e.props)) })),
        present: [...st.present].sort(),
        unacked: st.outbox.length,
        selected: st.selected,
      };
    },
    // The actions return a promise of the ack ({t:'ack',...}); it rejects
    // with an Error whose code is the protocol error code.
    move, // move(id, x, y, z): y null or undefined keeps the entity's y
    put, // put({id?, asset, pos:[x,y,z], rot?, props?})
    del: (ids) => sendOp({ kind: 'del', entities: Array.isArray(ids) ? ids : [ids] }),
    patch: (id, props) => sendOp({ kind: 'patch', entity: id, props }),
    chat: (text) => sendOp({ kind: 'chat', text }),
    roll: (dice) => sendOp({ kind: 'roll', dice }),
    op: sendOp, // any op object, sent as is
    select,
    // log returns the log lines as {kind, text}.
    log: () => [...ui.log.children].map((li) => ({ kind: li.dataset.kind, text: li.textContent })),
  };
  window.tavern = api;

  // ---- start ---------------------------------------------------------------

  initSVG();
  const params = new URLSearchParams(location.search);
  try {
    ui.user.value = params.get('user') || localStorage.getItem('tavern.user') || '';
    ui.board.value = params.get('board') || localStorage.getItem('tavern.board') || 'demo';
  } catch (e) {
    ui.user.value = params.get('user') || '';
    ui.board.value = params.get('board') || 'demo';
  }
  setPhase('disconnected');
  renderAll();
  if (params.get('connect') === '1') connect();
})();
