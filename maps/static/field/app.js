/* The patroller's page (网格员移动端): my grids, today's patrol, key households due a visit,
   patrol tracks recorded with the Geolocation API, and 随手记 quick reports.

   Offline first: every fix and every report goes into IndexedDB before anything is sent.
   A flush (when the browser is online: on the `online` event, on a timer with back-off, or
   by hand) uploads the queue:
   - fixes are sealed into a CSV chunk (lon,lat,time,accuracy) and removed from the pending
     fixes in ONE IndexedDB transaction, so a fix is in exactly one chunk; the chunk's bytes
     never change, so its SHA-256 is its idempotency key: POST /tracks stores a file once and
     answers "duplicate" for the same bytes again;
   - a report carries an Idempotency-Key (a UUID made when it was saved) to POST
     /incidents/form, which returns the stored incident for a key it has seen.
   An item leaves the queue only after the server has answered that it holds it, so nothing
   is lost, and a retry (lost answer, second tab, double tap) stores nothing twice.

   The map (Leaflet, served by this app and cached by the service worker, no tile base map):
   my grids' outlines from /field/grids (kept in IndexedDB for offline use) and the line of
   the patrol being recorded (kept with the patrol, so it survives a reload).

   Coordinates: navigator.geolocation gives WGS84 (the W3C Geolocation API's datum). They are
   sent as they are with crs=wgs84; the page converts nothing, and the server converts
   nothing for wgs84, so no point is ever shifted twice (GCJ-02 only comes from map apps). */
"use strict";
(() => {
  const DB_NAME = "wangge-field";
  const CSV_HEADER = "lon,lat,time,accuracy\n";
  const SEAL_AFTER_MS = 120000; // during a patrol, fixes older than this are sealed and sent
  const RETRY_MIN_MS = 5000;
  const RETRY_MAX_MS = 60000;
  const $ = (id) => document.getElementById(id);

  let db = null;
  let patrol = null; // {k: "patrol", id, started, count} while a patrol runs
  let watchId = null;
  let lastFix = null;
  let flushing = null;
  let retryMs = RETRY_MIN_MS;
  let retryTimer = null;
  let track = { k: "track", patrol: null, line: [] }; // the recorded line, [lat, lon] pairs
  let map = null;
  let gridLayer = null;
  let trackLine = null;
  let here = null;

  // ------------------------------------------------------------------ IndexedDB
  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        const d = req.result;
        d.createObjectStore("points", { keyPath: "key" }); // fixes not yet sealed
        d.createObjectStore("chunks", { keyPath: "key" }); // sealed CSVs, key = SHA-256
        d.createObjectStore("reports", { keyPath: "key" }); // 随手记, key = idempotency key
        d.createObjectStore("state", { keyPath: "k" }); // patrol, cached lists, sent reports
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  const done = (r) =>
    new Promise((resolve, reject) => {
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });

  /** Run fn(stores) in one transaction; resolves with fn's result once it has committed. */
  function tx(names, mode, fn) {
    return new Promise((resolve, reject) => {
      const t = db.transaction(names, mode);
      const stores = {};
      for (const n of [].concat(names)) stores[n] = t.objectStore(n);
      let result;
      Promise.resolve(fn(stores)).then((r) => { result = r; }, (e) => { t.abort(); reject(e); });
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error("transaction aborted"));
    });
  }
  const all = (name) => tx(name, "readonly", (s) => done(s[name].getAll()));
  const count = (name) => tx(name, "readonly", (s) => done(s[name].count()));
  const getState = (k) => tx("state", "readonly", (s) => done(s.state.get(k)));
  const putState = (v) => tx("state", "readwrite", (s) => done(s.state.put(v)));

  // ------------------------------------------------------------------ display
  function say(id, text, ok) {
    const el = $(id);
    el.textContent = text;
    el.className = ok ? "msg ok" : "msg";
  }
  function items(id, rows, empty) {
    const ul = $(id);
    ul.textContent = "";
    if (!rows.length) rows = [empty];
    for (const r of rows) {
      const li = document.createElement("li");
      li.textContent = r;
      ul.appendChild(li);
    }
  }
  function showNet() {
    const on = navigator.onLine;
    $("net").textContent = on ? "在线" : "离线";
    $("net").className = on ? "badge" : "badge off";
  }
  async function showQueue() {
    $("q-points").textContent = await count("points");
    $("q-chunks").textContent = await count("chunks");
    $("q-reports").textContent = await count("reports");
    const sent = (await getState("sent")) || { k: "sent", list: [] };
    items("sent", sent.list.map((s) => `已上报 #${s.id} ${s.category}`), "暂无已上报的随手记");
  }
  function showPatrol() {
    const running = !!patrol;
    $("start").disabled = running;
    $("stop").disabled = !running;
    $("patrol-status").textContent = running
      ? `巡查中（${new Date(patrol.started).toLocaleTimeString("zh-CN")} 开始）`
      : "未开始";
    $("points-count").textContent = patrol ? patrol.count : ($("points-count").textContent || 0);
    if (lastFix) {
      $("last-pos").textContent =
        `${lastFix.lon.toFixed(6)}, ${lastFix.lat.toFixed(6)} ±${Math.round(lastFix.accuracy || 0)} m`;
    }
  }
  const SHOW_AT_MOST = 50; // rows per list on a phone
  function capped(rows, what) {
    if (rows.length <= SHOW_AT_MOST) return rows;
    return rows.slice(0, SHOW_AT_MOST).concat([`……共 ${rows.length} ${what}`]);
  }
  function showDashboard(dash) {
    if (!dash || !dash.me || !dash.me.signed_in) return;
    const me = dash.me;
    $("who").textContent = `${me.username}（${me.role_label}）`;
    items("grids", me.all_grids ? ["全部网格"] : me.grids.map((g) => `${g.name} · ${g.code}`),
      "未分配网格");
    // the server already limits both lists to the grids this account may see
    const daily = dash.daily.map((r) =>
      `${r.name}：${r.patrolled ? "已巡查" : "未达标"} ${Math.round(r.minutes)} 分钟 / ` +
      `${Math.round(r.distance_m)} 米`);
    items("today", capped(daily, "个网格"), "今日暂无巡查记录");
    const due = dash.visits.filter((r) => !r.compliant).map((r) =>
      `重点户 #${r.household_id} · ${r.kind} · ${r.grid_code || ""}`);
    items("due", capped(due, "户"), "本周重点户均已走访");
    $("data-age").textContent = `数据更新于 ${new Date(dash.at).toLocaleString("zh-CN")}`;
  }
  function showCategories(cats) {
    const sel = $("category");
    if (sel.options.length || !cats) return;
    for (const c of cats) {
      const o = document.createElement("option");
      o.value = c.code;
      o.textContent = `${c.name}（${c.class_name}）`;
      sel.appendChild(o);
    }
  }

  // ------------------------------------------------------------------ map
  /** The map, if Leaflet loaded (the page works without it). No tiles: WGS84 as it is. */
  function initMap() {
    if (map || !window.L) return;
    map = L.map("map", { attributionControl: false, zoomSnap: 0.5 });
    map.setView([35, 105], 4); // until my grids or a position are known
    trackLine = L.polyline([], { className: "wg-track", color: "#1565c0", weight: 4 }).addTo(map);
    here = L.circleMarker([0, 0], {
      className: "wg-here", radius: 6, color: "#fff", weight: 2, fillColor: "#1565c0",
      fillOpacity: 1,
    });
  }
  function showGrids(geojson) {
    if (!map || !geojson) return;
    if (gridLayer) gridLayer.remove();
    gridLayer = L.geoJSON(geojson, {
      style: (f) => ({
        className: `wg-grid wg-${f.properties.level}`,
        color: "#b22222",
        weight: f.properties.level === "micro" ? 1.5 : 2.5,
        fillOpacity: 0.06,
      }),
      onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.name} · ${f.properties.code}`),
    }).addTo(map);
    trackLine.bringToFront();
    if (geojson.features.length) map.fitBounds(gridLayer.getBounds(), { padding: [8, 8] });
  }
  function showTrack() {
    if (!map) return;
    trackLine.setLatLngs(track.line);
    if (!track.line.length) return;
    const last = track.line[track.line.length - 1];
    here.setLatLng(last);
    if (!map.hasLayer(here)) here.addTo(map);
    if (!gridLayer || !gridLayer.getLayers().length) map.setView(last, Math.max(map.getZoom(), 17));
  }

  // ------------------------------------------------------------------ server reads
  async function getJSON(path) {
    const r = await fetch(path, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  /** My grids, today's patrol status and the households due a visit; offline: the last copy. */
  async function loadDashboard() {
    const cached = await getState("dash");
    const cats = await getState("categories");
    if (cats) showCategories(cats.list);
    const grids = await getState("grids");
    if (grids) showGrids(grids.geojson);
    if (!navigator.onLine) {
      if (cached) showDashboard(cached);
      else $("who").textContent = "离线：暂无缓存数据";
      return;
    }
    try {
      const me = await getJSON("/field/me");
      if (!me.signed_in) {
        $("signin").classList.remove("hidden");
        $("who").textContent = "未登录";
        return;
      }
      $("signin").classList.add("hidden");
      const [daily, visits, categories, geojson] = await Promise.all([
        getJSON("/patrol/daily"),
        getJSON("/party/compliance"), // grid workers' and party members' visits
        getJSON("/incidents/categories"),
        getJSON("/field/grids"), // the grids in my scope, for the map
      ]);
      const dash = { k: "dash", me, daily, visits, at: new Date().toISOString() };
      await putState(dash);
      await putState({ k: "categories", list: categories });
      await putState({ k: "grids", geojson });
      showCategories(categories);
      if (!grids || JSON.stringify(grids.geojson) !== JSON.stringify(geojson)) showGrids(geojson);
      showDashboard(dash);
    } catch (e) {
      if (cached) showDashboard(cached);
      say("sync-msg", `读取失败，显示缓存：${e.message}`);
    }
  }

  // ------------------------------------------------------------------ patrol
  async function onFix(pos) {
    if (!patrol) return;
    const c = pos.coords;
    const fix = {
      key: crypto.randomUUID(),
      patrol: patrol.id,
      lon: c.longitude, // WGS84, as the Geolocation API gives it
      lat: c.latitude,
      accuracy: c.accuracy,
      t: new Date(pos.timestamp).toISOString(),
    };
    // the same fix reported twice (also across a reload: the last one is kept with the patrol)
    if (lastFix && lastFix.t === fix.t && lastFix.lon === fix.lon && lastFix.lat === fix.lat) {
      return;
    }
    lastFix = fix;
    patrol.count += 1;
    patrol.last = fix;
    const state = { ...patrol };
    if (track.patrol !== patrol.id) track = { k: "track", patrol: patrol.id, line: [] };
    track.line.push([fix.lat, fix.lon]);
    const line = { ...track };
    await tx(["points", "state"], "readwrite", (s) => {
      s.points.add(fix);
      s.state.put(line);
      return done(s.state.put(state));
    });
    showPatrol();
    showTrack();
    showQueue();
  }
  function onFixError(err) {
    $("last-pos").textContent = `定位失败：${err.message || err.code}`;
  }
  function watch() {
    if (watchId !== null) return;
    watchId = navigator.geolocation.watchPosition(onFix, onFixError, {
      enableHighAccuracy: true,
      maximumAge: 0,
      timeout: 30000,
    });
  }
  async function startPatrol() {
    patrol = { k: "patrol", id: crypto.randomUUID(), started: new Date().toISOString(), count: 0 };
    track = { k: "track", patrol: patrol.id, line: [] }; // the last patrol's line stays until now
    await tx("state", "readwrite", (s) => {
      s.state.put(track);
      return done(s.state.put(patrol));
    });
    showTrack();
    watch();
    showPatrol();
  }
  async function stopPatrol() {
    if (watchId !== null) navigator.geolocation.clearWatch(watchId);
    watchId = null;
    patrol = null;
    await tx("state", "readwrite", (s) => done(s.state.delete("patrol")));
    await seal(); // the rest of the track becomes one chunk now, online or not
    showPatrol();
    await showQueue();
    flush();
  }

  async function sha256(text) {
    const bytes = new TextEncoder().encode(text);
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Move the pending fixes (all, or those older than `olderThan`) into one CSV chunk. */
  async function seal(olderThan) {
    let fixes = await all("points");
    if (olderThan) fixes = fixes.filter((f) => Date.parse(f.t) < olderThan);
    if (!fixes.length) return;
    fixes.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    const rows = fixes.map((f) => `${f.lon},${f.lat},${f.t},${f.accuracy ?? ""}`);
    const csv = CSV_HEADER + rows.join("\n") + "\n";
    const key = await sha256(csv);
    await tx(["points", "chunks"], "readwrite", async (s) => {
      // a fix sealed meanwhile by another tab is not sealed twice: all or none
      const still = await Promise.all(fixes.map((f) => done(s.points.get(f.key))));
      if (still.some((f) => !f)) throw new Error("fixes changed while sealing; try again");
      s.chunks.put({ key, csv, n: fixes.length, sealed: new Date().toISOString() });
      for (const f of fixes) s.points.delete(f.key);
    });
  }

  // ------------------------------------------------------------------ 随手记
  function position() {
    if (lastFix && Date.now() - Date.parse(lastFix.t) < 120000) return Promise.resolve(lastFix);
    return new Promise((resolve, reject) => {
      navigator.geolocation.getCurrentPosition(
        (p) => resolve({ lon: p.coords.longitude, lat: p.coords.latitude }),
        reject,
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
      );
    });
  }
  async function saveReport() {
    const category = $("category").value;
    const text = $("text").value.trim();
    if (!category) return say("note-msg", "请选择事项类别");
    if (!text) return say("note-msg", "请填写情况描述");
    let where;
    try {
      where = await position();
    } catch (e) {
      return say("note-msg", `无法定位，未保存：${e.message || e.code}`);
    }
    const file = $("photo").files[0] || null;
    const report = {
      key: crypto.randomUUID(), // the idempotency key, fixed from now on
      category,
      categoryName: $("category").selectedOptions[0].textContent,
      description: text,
      lon: where.lon, // WGS84 from the browser
      lat: where.lat,
      t: new Date().toISOString(),
      photo: file, // the File itself is stored in IndexedDB
      photoName: file ? file.name : null,
    };
    await tx("reports", "readwrite", (s) => done(s.reports.add(report)));
    $("text").value = "";
    $("photo").value = "";
    say("note-msg", navigator.onLine ? "已保存，正在上报" : "已保存，联网后自动上报", true);
    await showQueue();
    flush();
  }

  // ------------------------------------------------------------------ upload
  class Retry extends Error {}

  async function send(path, body, headers) {
    let r;
    try {
      r = await fetch(path, { method: "POST", body, headers, credentials: "same-origin" });
    } catch (e) {
      throw new Retry(`网络错误：${e.message}`);
    }
    if (r.ok) return r.json();
    if (r.status === 401) {
      $("signin").classList.remove("hidden");
      throw new Retry("登录已过期，请重新登录");
    }
    let detail = r.status;
    try {
      detail = (await r.json()).detail || r.status;
    } catch (e) { /* not JSON */ }
    if (r.status >= 500 || r.status === 408 || r.status === 429) throw new Retry(`服务器 ${detail}`);
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }

  async function uploadChunk(chunk) {
    const form = new FormData();
    const name = `patrol-${chunk.key.slice(0, 16)}.csv`;
    form.append("files", new Blob([chunk.csv], { type: "text/csv" }), name);
    form.append("crs", "wgs84"); // browser positions are WGS84: the server must not convert
    try {
      await send("/tracks", form);
    } catch (e) {
      if (e instanceof Retry) throw e;
      // refused for good (a malformed chunk): kept aside, visible, never dropped silently
      await tx("chunks", "readwrite", (s) => done(s.chunks.delete(chunk.key)));
      await putState({ k: `refused-${chunk.key}`, chunk, error: e.message });
      say("sync-msg", `轨迹包被拒绝：${e.message}`);
      return;
    }
    await tx("chunks", "readwrite", (s) => done(s.chunks.delete(chunk.key)));
  }

  async function uploadReport(report) {
    const form = new FormData();
    form.append("category", report.category);
    form.append("source", "巡查");
    form.append("description", report.description);
    form.append("lon", String(report.lon));
    form.append("lat", String(report.lat));
    form.append("crs", "wgs84"); // as the browser gave it; never converted twice
    form.append("reported_at", report.t);
    if (report.photo) form.append("photos", report.photo, report.photoName || "photo.jpg");
    let stored;
    try {
      stored = await send("/incidents/form", form, { "Idempotency-Key": report.key });
    } catch (e) {
      if (e instanceof Retry) throw e;
      await tx("reports", "readwrite", (s) => done(s.reports.delete(report.key)));
      await putState({ k: `refused-${report.key}`, report, error: e.message });
      say("sync-msg", `随手记被拒绝：${e.message}`);
      return;
    }
    await tx(["reports", "state"], "readwrite", async (s) => {
      const sent = (await done(s.state.get("sent"))) || { k: "sent", list: [] };
      if (!sent.list.some((x) => x.key === report.key)) {
        sent.list.unshift({ key: report.key, id: stored.id, category: report.categoryName });
        sent.list = sent.list.slice(0, 20);
      }
      s.state.put(sent);
      return done(s.reports.delete(report.key));
    });
  }

  async function flushOnce() {
    if (!navigator.onLine) {
      say("sync-msg", "离线：数据已保存在手机上，联网后自动上传", true);
      return;
    }
    if (patrol) await seal(Date.now() - SEAL_AFTER_MS);
    else await seal();
    // one item that fails (a server error) does not hold back the others
    let failed = null;
    let sent = 0;
    for (const chunk of await all("chunks")) {
      try { await uploadChunk(chunk); sent += 1; } catch (e) { failed = e; }
    }
    for (const report of await all("reports")) {
      try { await uploadReport(report); sent += 1; } catch (e) { failed = e; }
    }
    if (sent) loadDashboard(); // today's patrol status now counts the new track
    if (failed) throw failed;
  }

  /** Upload the queue; a second call while one runs waits for that one (and adds nothing). */
  function flush() {
    if (flushing) return flushing;
    flushing = (async () => {
      clearTimeout(retryTimer);
      try {
        await flushOnce();
        retryMs = RETRY_MIN_MS;
        if (navigator.onLine) say("sync-msg", "已全部上传", true);
      } catch (e) {
        say("sync-msg", `上传未完成，稍后重试：${e.message}`);
        retryTimer = setTimeout(flush, retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      } finally {
        flushing = null;
        await showQueue();
      }
    })();
    return flushing;
  }

  // ------------------------------------------------------------------ start
  async function main() {
    showNet();
    db = await openDb();
    initMap();
    track = (await getState("track")) || track;
    showTrack();
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/field/sw.js", { scope: "/field/" }).catch((e) =>
        say("sync-msg", `离线缓存不可用：${e.message}`));
    }
    patrol = (await getState("patrol")) || null;
    if (patrol) lastFix = patrol.last || null;
    if (patrol) watch(); // a patrol survives a reload (and an offline restart)
    showPatrol();
    $("start").onclick = startPatrol;
    $("stop").onclick = stopPatrol;
    $("submit").onclick = saveReport;
    $("sync").onclick = () => flush();
    window.addEventListener("online", () => { showNet(); loadDashboard(); flush(); });
    window.addEventListener("offline", showNet);
    setInterval(() => { if (navigator.onLine) flush(); }, 30000);
    await showQueue();
    await loadDashboard();
    await flush();
    document.body.dataset.ready = "1";
  }

  // for tests and the curious: flush by hand, read the queue sizes
  window.wanggeField = {
    flush,
    trackLength: () => track.line.length,
    queue: async () => ({
      points: await count("points"),
      chunks: await count("chunks"),
      reports: await count("reports"),
    }),
  };
  main();
})();
