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
