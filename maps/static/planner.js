/* Grid planner (网格规划): shows grids by level with household counts and sends edits to
   the /grids API. Every refusal (409 stale version, 422 broken hierarchy) is shown. */

// RFC 7946: exterior rings counter-clockwise, holes clockwise (the API refuses others).
function ringArea(ring) {
  var a = 0;
  for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    a += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  }
  return a / 2;  // > 0: counter-clockwise
}
function rfc7946(geom) {
  function fix(rings) {
    return rings.map(function (ring, k) {
      var ccw = ringArea(ring) > 0;
      return (k === 0) === ccw ? ring : ring.slice().reverse();
    });
  }
  if (geom.type === "Polygon") return { type: "Polygon", coordinates: fix(geom.coordinates) };
  if (geom.type === "MultiPolygon") {
    return { type: "MultiPolygon", coordinates: geom.coordinates.map(fix) };
  }
  return geom;
}

(function () {
  "use strict";
  var cfg = window.WANGGE_PLANNER;
  var PARENT = { community: "street", grid: "community", micro: "grid", dedicated: "street" };
  var map = L.map("map", { preferCanvas: false });
  var b = cfg.bounds;
  map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  var all = [];            // every grid feature
  var layer = L.layerGroup().addTo(map);
  var selected = null;     // feature
  var mode = null;         // "merge" while choosing the grid to merge
  var levelSel = document.getElementById("level");
  var msg = document.getElementById("message");

  function say(text, ok) {
    msg.textContent = text;
    msg.className = ok ? "ok" : "error";
  }

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) {
          var extra = data.current_version ? " (current version " + data.current_version + ")" : "";
          var detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
          throw new Error(r.status + ": " + detail + extra);
        }
        return data;
      });
    });
  }

  function inside(pt, geom) {
    var polys = geom.type === "Polygon" ? [geom.coordinates] : geom.coordinates;
    return polys.some(function (rings) {
      var hit = false;
      rings.forEach(function (ring) {
        for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
          if ((yi > pt[1]) !== (yj > pt[1]) &&
              pt[0] < ((xj - xi) * (pt[1] - yi)) / (yj - yi) + xi) { hit = !hit; }
        }
      });
      return hit;
    });
  }

  function draw() {
    layer.clearLayers();
    var level = levelSel.value;
    all.filter(function (f) { return f.properties.level === level; }).forEach(function (f) {
      var isSel = selected && selected.id === f.id;
      var gj = L.geoJSON(f, {
        pmIgnore: !isSel,
        style: { color: cfg.colours[level], weight: isSel ? 4 : 1.5, fillOpacity: isSel ? 0.35 : 0.12 }
      });
      gj.eachLayer(function (l) {
        l.feature = f;
        l.bindTooltip(f.properties.code + " · " + f.properties.households + " 户",
          { className: "hh-label" });
        l.on("click", function () { pick(f, l); });
      });
      gj.addTo(layer);
      var c = gj.getBounds().getCenter();
      L.marker(c, {
        pmIgnore: true, interactive: false,
        icon: L.divIcon({ className: "hh-label", html: String(f.properties.households), iconSize: [28, 14] })
      }).addTo(layer);
    });
  }

  function pick(f) {
    if (map.pm.globalDrawModeEnabled()) { return; }  // a click while drawing is a vertex
    if (mode === "merge" && selected && f.id !== selected.id) {
      mode = null;
      api("POST", "/grids/" + selected.id + "/merge", {
        version: selected.properties.version, other_id: f.id,
        other_version: f.properties.version, reason: reason()
      }).then(done("merged"), fail);
      return;
    }
    selected = f;
    document.getElementById("selected").textContent =
      f.properties.code + " " + f.properties.name + " · v" + f.properties.version +
      " · " + f.properties.households + " 户";
    draw();
  }

  function reason() { return document.getElementById("reason").value || "planning edit"; }
  function fail(err) { say(err.message, false); load(); }
  function done(what) {
    return function (res) {
      var extra = res.households ? " households " + res.households.join("/") +
        ", imbalance " + res.imbalance : "";
      say(what + ": changed " + res.changed.length + ", created " + res.created.length +
        ", deleted " + res.deleted.length + extra, true);
      selected = null;
      document.getElementById("selected").textContent = "no grid selected";
      load();
    };
  }

  function load() {
    return api("GET", "/grids").then(function (fc) {
      all = fc.features;
      if (selected) {
        selected = all.filter(function (f) { return String(f.id) === String(selected.id); })[0] || null;
      }
      draw();
      document.body.setAttribute("data-loaded", String(all.length));
    }, function (err) { say(err.message, false); });
  }

  function need() {
    if (!selected) { say("select a grid first", false); return false; }
    return true;
  }

  map.pm.setGlobalOptions({ snappable: true });

  document.getElementById("btn-draw").onclick = function () {
    map.pm.enableDraw("Polygon");
    window.WANGGE_PLANNER.tool = "create";
  };
  document.getElementById("btn-split").onclick = function () {
    if (!need()) { return; }
    map.pm.enableDraw("Line");
    window.WANGGE_PLANNER.tool = "split";
  };
  document.getElementById("btn-reshape").onclick = function () {
    if (!need()) { return; }
    var target = null;
    layer.eachLayer(function (g) {
      if (g.eachLayer) {
        g.eachLayer(function (l) { if (l.feature && l.feature.id === selected.id) { target = l; } });
      }
    });
    if (!target) { return; }
    if (target.pm.enabled()) {
      target.pm.disable();
      api("POST", "/grids/" + selected.id + "/reshape", {
        version: selected.properties.version, geometry: rfc7946(target.toGeoJSON().geometry), reason: reason()
      }).then(done("reshaped"), fail);
    } else {
      target.pm.enable();
      say("drag the vertices, then press Reshape again to save", true);
    }
  };
  document.getElementById("btn-merge").onclick = function () {
    if (!need()) { return; }
    mode = "merge";
    say("click the adjacent grid to merge into " + selected.properties.code, true);
  };
  document.getElementById("btn-autosplit").onclick = function () {
    if (!need()) { return; }
    api("POST", "/grids/" + selected.id + "/auto-split", {
      version: selected.properties.version,
      parts: parseInt(document.getElementById("parts").value, 10), reason: reason()
    }).then(done("auto-split"), fail);
  };
  document.getElementById("btn-autopartition").onclick = function () {
    if (!need()) { return; }
    api("POST", "/grids/" + selected.id + "/auto-partition", {
      version: selected.properties.version, reason: reason()
    }).then(done("auto-partition"), fail);
  };

  map.on("pm:create", function (e) {
    var geom = rfc7946(e.layer.toGeoJSON().geometry);
    map.removeLayer(e.layer);
    map.pm.disableDraw();
    if (window.WANGGE_PLANNER.tool === "split") {
      api("POST", "/grids/" + selected.id + "/split", {
        version: selected.properties.version, line: geom, reason: reason()
      }).then(done("split"), fail);
      return;
    }
    var level = levelSel.value;
    var pt = geom.coordinates[0][0];
    var c = e.layer.getBounds().getCenter();
    pt = [c.lng, c.lat];
    var parent = all.filter(function (f) {
      return f.properties.level === PARENT[level] && inside(pt, f.geometry);
    })[0];
    if (!parent) { say("draw the new " + level + " grid inside a " + PARENT[level], false); return; }
    api("POST", "/grids", { parent_id: parent.id, geometry: geom, reason: reason() })
      .then(function (res) {
        selected = { id: res.created[0] };
        done("created")(res);
        selected = null;
      }, fail);
  });

  levelSel.onchange = function () { selected = null; draw(); };
  window.WANGGE_PLANNER.map = map;
  window.WANGGE_PLANNER.pick = function (id) {
    var f = all.filter(function (g) { return String(g.id) === String(id); })[0];
    if (f) { pick(f); }
  };
  load();
}());
