// Leaflet glue for the playground and live maps. Leaflet (global `L`) and topojson-client
// (global `topojson`) are served from ./vendor by index.html, never from a CDN.
//
// Base layer: world-atlas country outlines, drawn offline from vendor/countries-110m.json in a
// pane below the tiles; the OpenStreetMap tile layer sits on top and simply covers the outlines
// where the internet is reachable (offline its tiles fail and the outlines stay visible).

let countries = null;

function countriesLayer() {
  if (!countries) {
    countries = fetch("vendor/countries-110m.json")
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`countries: HTTP ${r.status}`))))
      .then((topo) => topojson.feature(topo, topo.objects.countries));
  }
  return countries;
}

/** A map in `el`; returns a handle for the functions below. */
export function mapCreate(el) {
  if (typeof L === "undefined") {
    el.textContent = "Map unavailable: Leaflet did not load.";
    return null;
  }
  const map = L.map(el, { worldCopyJump: true, zoomSnap: 0.5 }).setView([30, 10], 2);
  map.createPane("base");
  map.getPane("base").style.zIndex = 150;
  countriesLayer()
    .then((geo) => {
      L.geoJSON(geo, {
        pane: "base",
        interactive: false,
        style: { color: "#7a8ca3", weight: 0.8, fillColor: "#e8eef5", fillOpacity: 1 },
      }).addTo(map);
      el.dataset.base = "ready";
    })
    .catch((e) => {
      el.dataset.base = "failed";
      console.warn(e);
    });
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19,
    attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
  }).addTo(map);
  const layer = L.layerGroup().addTo(map);
  return { map, layer, markers: new Map(), tracks: new Map(), el };
}

function popupContent(title, lines) {
  const div = document.createElement("div");
  div.className = "popup";
  const b = document.createElement("b");
  b.textContent = title;
  div.appendChild(b);
  for (const line of lines) {
    const p = document.createElement("div");
    p.textContent = line;
    div.appendChild(p);
  }
  return div;
}

/**
 * Playground: one marker per point (JSON array of {key, lat, lon, title, lines}), the track as a
 * line in the given order, the view fitted to the points.
 */
export function mapShowPoints(h, json) {
  if (!h) return;
  const points = JSON.parse(json);
  h.layer.clearLayers();
  h.markers.clear();
  for (const p of points) {
    const m = L.marker([p.lat, p.lon], { title: p.title, alt: p.key });
    m.bindPopup(popupContent(p.title, p.lines));
    m.addTo(h.layer);
    h.markers.set(p.key, m);
  }
  if (points.length > 1) {
    L.polyline(points.map((p) => [p.lat, p.lon]), { color: "#d9480f", weight: 3, opacity: 0.8 }).addTo(h.layer);
  }
  h.el.dataset.markers = String(points.length);
  if (points.length === 1) {
    h.map.setView([points[0].lat, points[0].lon], 15);
  } else if (points.length > 1) {
    h.map.fitBounds(L.latLngBounds(points.map((p) => [p.lat, p.lon])), { padding: [30, 30], maxZoom: 17 });
  }
}

/** Open the popup of the marker with this key (a selected table row). */
export function mapFocus(h, key) {
  const m = h && h.markers.get(key);
  if (m) {
    m.openPopup();
    h.map.panTo(m.getLatLng());
  }
}

/**
 * Live view: devices as JSON array of {key, lat, lon, title, lines, track: [[lat, lon], ...],
 * selected}. Markers move instead of being recreated, so open popups survive updates.
 */
export function mapShowDevices(h, json, fit) {
  if (!h) return;
  const devices = JSON.parse(json);
  const seen = new Set();
  for (const d of devices) {
    seen.add(d.key);
    let m = h.markers.get(d.key);
    if (!m) {
      m = L.marker([d.lat, d.lon], { title: d.title, alt: d.key }).addTo(h.layer);
      m.bindPopup(popupContent(d.title, d.lines));
      h.markers.set(d.key, m);
    } else {
      m.setLatLng([d.lat, d.lon]);
      m.setPopupContent(popupContent(d.title, d.lines));
    }
    m.setOpacity(d.selected ? 1 : 0.75);
    let t = h.tracks.get(d.key);
    const style = { color: d.selected ? "#d9480f" : "#1c7ed6", weight: d.selected ? 4 : 2, opacity: 0.8 };
    if (!t) {
      t = L.polyline(d.track, style).addTo(h.layer);
      h.tracks.set(d.key, t);
    } else {
      t.setLatLngs(d.track);
      t.setStyle(style);
    }
  }
  for (const [key, m] of h.markers) {
    if (!seen.has(key)) {
      h.layer.removeLayer(m);
      h.markers.delete(key);
      const t = h.tracks.get(key);
      if (t) h.layer.removeLayer(t);
      h.tracks.delete(key);
    }
  }
  h.el.dataset.markers = String(devices.length);
  if (fit && devices.length) {
    const pts = devices.flatMap((d) => (d.track.length ? d.track : [[d.lat, d.lon]]));
    h.map.fitBounds(L.latLngBounds(pts), { padding: [30, 30], maxZoom: 16 });
  }
}

/** The container changed size (tab switch). */
export function mapResize(h) {
  if (h) h.map.invalidateSize();
}

export function mapDestroy(h) {
  if (h) h.map.remove();
}

/**
 * Reports: a day of one device — its track, its trips (each replayable), its stops as markers
 * and the geofences — from JSON {track: [[lat, lon], ...], stops: [{lat, lon, title, lines}],
 * geofences: [{id, name, circle: {lat, lon, r}} | {id, name, rings: [[[lat, lon], ...]]}]}.
 * Counts go to data attributes (data-track, data-stops, data-geofences) for tests.
 */
export function mapShowReport(h, json, fit) {
  if (!h) return;
  const r = JSON.parse(json);
  h.layer.clearLayers();
  h.replayLine = null;
  const bounds = [];
  if (r.track.length > 1) {
    L.polyline(r.track, { color: "#1c7ed6", weight: 3, opacity: 0.7 }).addTo(h.layer);
    bounds.push(...r.track);
  }
  for (const s of r.stops) {
    L.circleMarker([s.lat, s.lon], { radius: 7, color: "#495057", fillColor: "#ffd43b", fillOpacity: 0.9, className: "stop-marker" })
      .bindPopup(popupContent(s.title, s.lines))
      .addTo(h.layer);
    bounds.push([s.lat, s.lon]);
  }
  for (const g of r.geofences) {
    const style = { color: "#2f9e44", weight: 2, fillOpacity: 0.12, className: "geofence-shape" };
    const shape = g.circle
      ? L.circle([g.circle.lat, g.circle.lon], { radius: g.circle.r, ...style })
      : L.polygon(g.rings, style);
    // Beside the centre: a stop or the replay often sits on it.
    shape.bindTooltip(g.name, { permanent: true, direction: "right", offset: [12, 0], className: "geofence-label" });
    shape.addTo(h.layer);
  }
  h.el.dataset.track = String(r.track.length);
  h.el.dataset.stops = String(r.stops.length);
  h.el.dataset.geofences = String(r.geofences.length);
  if (fit && bounds.length) {
    h.map.fitBounds(L.latLngBounds(bounds), { padding: [30, 30], maxZoom: 16 });
  }
}

/**
 * Replay a trip: a marker runs along [[lat, lon], ...] (about 4 s whatever its length) over
 * the trip's line. data-replay is "running", then "done".
 */
export function mapReplay(h, json) {
  if (!h) return;
  const pts = JSON.parse(json);
  if (h.replay) clearInterval(h.replay.timer);
  if (h.replay?.marker) h.layer.removeLayer(h.replay.marker);
  if (h.replayLine) h.layer.removeLayer(h.replayLine);
  if (!pts.length) return;
  h.replayLine = L.polyline(pts, { color: "#d9480f", weight: 5, opacity: 0.9 }).addTo(h.layer);
  h.map.fitBounds(h.replayLine.getBounds(), { padding: [30, 30], maxZoom: 16 });
  const marker = L.circleMarker(pts[0], { radius: 8, color: "#d9480f", fillColor: "#fff", fillOpacity: 1, className: "replay-marker" }).addTo(h.layer);
  const step = Math.max(1, Math.ceil(pts.length / 100));
  let i = 0;
  h.el.dataset.replay = "running";
  const timer = setInterval(() => {
    i = Math.min(pts.length - 1, i + step);
    marker.setLatLng(pts[i]);
    if (i === pts.length - 1) {
      clearInterval(timer);
      h.el.dataset.replay = "done";
    }
  }, 40);
  h.replay = { timer, marker };
}

/**
 * Draw a geofence on the map: kind "circle" (click the centre, then a point of the edge) or
 * "polygon" (click the corners; click the first corner again, or call mapDrawFinish). `done`
 * gets the GeoJSON geometry as text (a circle is a Point with radius_m). "" cancels.
 */
export function mapDraw(h, kind, done) {
  if (!h) return;
  if (h.draw) h.draw.cancel();
  h.draw = null;
  delete h.el.dataset.drawing;
  if (!kind) return;
  const layer = L.layerGroup().addTo(h.map);
  const pts = [];
  let preview = null;
  const cancel = () => {
    h.map.off("click", onClick);
    h.map.off("mousemove", onMove);
    h.map.removeLayer(layer);
    h.map.doubleClickZoom.enable();
    delete h.el.dataset.drawing;
    h.draw = null;
  };
  const finish = () => {
    if (kind !== "polygon" || pts.length < 3) return;
    const ring = pts.map((p) => [round(p.lng), round(p.lat)]);
    ring.push(ring[0]);
    cancel();
    done(JSON.stringify({ type: "Polygon", coordinates: [ring] }));
  };
  const round = (x) => Math.round(x * 1e7) / 1e7;
  const onClick = (e) => {
    if (kind === "circle") {
      if (!pts.length) {
        pts.push(e.latlng);
        L.circleMarker(e.latlng, { radius: 4, color: "#2f9e44" }).addTo(layer);
        return;
      }
      const r = Math.max(1, Math.round(h.map.distance(pts[0], e.latlng)));
      cancel();
      done(JSON.stringify({ type: "Point", coordinates: [round(pts[0].lng), round(pts[0].lat)], radius_m: r }));
      return;
    }
    if (pts.length >= 3 && h.map.latLngToContainerPoint(pts[0]).distanceTo(e.containerPoint) < 12) {
      finish();
      return;
    }
    pts.push(e.latlng);
    L.circleMarker(e.latlng, { radius: 4, color: "#2f9e44" }).addTo(layer);
    h.el.dataset.corners = String(pts.length);
  };
  const onMove = (e) => {
    if (!pts.length) return;
    if (preview) layer.removeLayer(preview);
    preview =
      kind === "circle"
        ? L.circle(pts[0], { radius: h.map.distance(pts[0], e.latlng), color: "#2f9e44", dashArray: "4" })
        : L.polyline([...pts, e.latlng], { color: "#2f9e44", dashArray: "4" });
    preview.addTo(layer);
  };
  h.map.doubleClickZoom.disable();
  h.map.on("click", onClick);
  h.map.on("mousemove", onMove);
  h.draw = { cancel, finish };
  h.el.dataset.drawing = kind;
}

/** Close the polygon being drawn (at least 3 corners). */
export function mapDrawFinish(h) {
  if (h && h.draw) h.draw.finish();
}
