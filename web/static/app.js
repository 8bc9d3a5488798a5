// Status page of exlive2mqtt: polls the JSON API and updates the link
// states, the counters, the vehicle table and the map in place.
//
// Every string from the API is put into the page with textContent or as an
// attribute value, never as HTML: vehicle codes are free text from the
// platform and may contain anything.
(function () {
  'use strict';

  const POLL_MS = 2000;
  const GOOD_STATES = new Set(['logged_in', 'connected']);
  const WARN_STATES = new Set(['connecting']);

  let map = null;
  const markers = new Map(); // vehicle id -> L.Marker
  const rows = new Map(); // vehicle id -> <tr>
  let fitted = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // setText avoids touching unchanged nodes, which would reset a text
  // selection every two seconds.
  function setText(node, text) {
    text = String(text);
    if (node.textContent !== text) node.textContent = text;
  }

  // escapeHTML is for the one place that takes HTML: Leaflet's attribution.
  function escapeHTML(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({
      '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
    })[c]);
  }

  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const pad = (n) => String(n).padStart(2, '0');

  function parseTime(s) {
    if (!s) return null;
    const d = new Date(s);
    return Number.isNaN(d.getTime()) || d.getFullYear() < 1971 ? null : d;
  }

  function fmtTime(d) {
    if (!d) return '–';
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) +
      ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function fmtDuration(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }

  // fmtAge says "in 8 h" for times well ahead of the browser's clock rather
  // than hiding them: that is what a time zone mistake looks like.
  function fmtAge(d) {
    if (!d) return '';
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < -5) return 'in ' + fmtDuration(-s);
    return fmtDuration(Math.max(s, 0)) + ' ago';
  }

  const fmtBool = (b) => (b === true ? 'yes' : b === false ? 'no' : '–');
  const fmtSpeed = (v) => (isNum(v) ? v.toFixed(0) + ' km/h' : '–');

  function fmtHeading(deg) {
    if (!isNum(deg)) return '–';
    const names = ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'];
    const i = Math.round((((deg % 360) + 360) % 360) / 45) % 8;
    return deg.toFixed(0) + '° ' + names[i];
  }

  const fmtCount = (v) => (isNum(v) ? v.toLocaleString('en-US', { maximumFractionDigits: 3 }) : '–');

  async function getJSON(path) {
    const resp = await fetch(path, { cache: 'no-cache', headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(path + ': HTTP ' + resp.status);
    return resp.json();
  }

  // ---- status ----

  function renderLink(id, link) {
    const box = $(id);
    link = link || {};
    const state = link.state || 'unknown';
    const badge = box.querySelector('.state');
    setText(badge, state.replace(/_/g, ' '));
    badge.className = 'badge state ' +
      (GOOD_STATES.has(state) ? 'good' : WARN_STATES.has(state) ? 'warn' : 'bad');
    const since = parseTime(link.since);
    setText(box.querySelector('.since'), since ? 'since ' + fmtTime(since) + ' · ' + fmtAge(since) : '');
    setText(box.querySelector('.addr'), link.addr || '');
    const err = box.querySelector('.error');
    setText(err, link.error || '');
    err.hidden = !link.error;
    return GOOD_STATES.has(state);
  }

  function renderStatus(st) {
    setText($('version'), st.version ? 'version ' + st.version : '');
    const sessionUp = renderLink('session', st.session);
    const brokerUp = renderLink('broker', st.broker);
    const ready = $('ready');
    setText(ready, sessionUp && brokerUp ? 'ready' : 'not ready');
    ready.className = 'badge ' + (sessionUp && brokerUp ? 'good' : 'bad');

    const tbody = $('counter-rows');
    const counters = Array.isArray(st.counters) ? st.counters : [];
    // The help text is what a person reads; the metric name below it is
    // what to look for in Prometheus.
    tbody.replaceChildren(...counters.map((c) => {
      const tr = el('tr');
      const label = el('td');
      if (c.help) label.append(el('div', 'help', c.help));
      label.append(el('div', 'name', c.name));
      tr.append(label, el('td', 'num', fmtCount(c.value)));
      return tr;
    }));
    $('no-counters').hidden = counters.length > 0;
  }

  // ---- vehicles ----

  function label(v) {
    return v.code ? v.code + ' (' + v.id + ')' : String(v.id);
  }

  function popupContent(v) {
    const box = el('div', 'popup');
    box.append(el('h3', '', label(v)));
    const dl = el('dl');
    const add = (k, val) => dl.append(el('dt', '', k), el('dd', '', val));
    add('Speed', fmtSpeed(v.speed));
    add('Heading', fmtHeading(v.direction));
    add('Fix', fmtTime(parseTime(v.time)));
    add('Valid', fmtBool(v.valid));
    if (v.alarm === true) add('Alarm', 'yes');
    if (v.topic) add('Topic', v.topic);
    box.append(dl);
    return box;
  }

  function renderRow(v) {
    let tr = rows.get(v.id);
    if (!tr) {
      tr = el('tr');
      tr.dataset.vehicleId = v.id;
      for (const cls of ['id', 'code', 'time', 'num speed', 'num heading', 'valid', 'alarm']) {
        tr.append(el('td', cls));
      }
      tr.cells[2].append(el('span', 'fix'), el('span', 'age'));
      tr.addEventListener('click', () => focusVehicle(tr.dataset.vehicleId));
      rows.set(v.id, tr);
    }
    const c = tr.cells;
    setText(c[0], v.id);
    if (v.topic) tr.title = 'MQTT topic: ' + v.topic;
    setText(c[1], v.code || '');
    const t = parseTime(v.time);
    setText(c[2].firstChild, fmtTime(t));
    setText(c[2].lastChild, fmtAge(t));
    setText(c[3], fmtSpeed(v.speed));
    setText(c[4], fmtHeading(v.direction));
    setText(c[5], fmtBool(v.valid));
    setText(c[6], v.alarm === true ? 'ALARM' : fmtBool(v.alarm));
    tr.classList.toggle('alarm', v.alarm === true);
    tr.classList.toggle('invalid', v.valid === false);
    return tr;
  }

  function renderTable(vehicles) {
    const tbody = $('vehicle-rows');
    const seen = new Set();
    // Appending an existing row moves it, so this also applies the
    // server's order without rebuilding the table.
    for (const v of vehicles) {
      seen.add(v.id);
      tbody.append(renderRow(v));
    }
    for (const [id, tr] of rows) {
      if (!seen.has(id)) {
        tr.remove();
        rows.delete(id);
      }
    }
    setText($('vehicle-count'), '(' + vehicles.length + ')');
    $('no-vehicles').hidden = vehicles.length > 0;
  }

  function renderMarkers(vehicles) {
    if (!map) return;
    const seen = new Set();
    for (const v of vehicles) {
      if (!isNum(v.lat) || !isNum(v.lng)) continue;
      seen.add(v.id);
      let m = markers.get(v.id);
      if (!m) {
        m = L.marker([v.lat, v.lng], { title: label(v), alt: label(v) });
        m.bindPopup(() => popupContent(m.vehicle));
        m.addTo(map);
        markers.set(v.id, m);
      } else {
        m.setLatLng([v.lat, v.lng]);
      }
      m.vehicle = v;
      if (m.isPopupOpen()) m.setPopupContent(popupContent(v));
      m.setOpacity(v.valid === false ? 0.55 : 1);
      const icon = m.getElement();
      if (icon) {
        icon.classList.toggle('alarm', v.alarm === true);
        icon.title = label(v);
      }
    }
    for (const [id, m] of markers) {
      if (!seen.has(id)) {
        m.remove();
        markers.delete(id);
      }
    }
    if (!fitted && markers.size > 0) {
      fitted = true;
      const bounds = L.latLngBounds([...markers.values()].map((m) => m.getLatLng()));
      map.fitBounds(bounds, { padding: [40, 40], maxZoom: 14, animate: false });
    }
  }

  function focusVehicle(id) {
    const m = markers.get(id);
    if (!map || !m) return;
    map.setView(m.getLatLng(), Math.max(map.getZoom(), 13));
    m.openPopup();
  }

  // ---- map ----

  function initMap(cfg) {
    if (typeof L === 'undefined') {
      showMapNote('The map library did not load; the table still updates.');
      return;
    }
    map = L.map('map', { worldCopyJump: true }).setView([30, 110], 3);
    L.control.scale({ imperial: false }).addTo(map);
    if (cfg.tileURL) {
      // Tile errors (no internet) only leave the background blank; the
      // markers do not depend on the tiles.
      const tiles = L.tileLayer(cfg.tileURL, {
        maxZoom: 19,
        attribution: escapeHTML(cfg.tileAttribution || ''),
      }).addTo(map);
      let loaded = false;
      tiles.on('tileload', () => {
        loaded = true;
        $('map-note').hidden = true;
      });
      tiles.on('tileerror', () => {
        if (!loaded) showMapNote('Map tiles cannot be loaded (no internet access?): vehicles are shown on a blank map.');
      });
    } else {
      showMapNote('No map tiles configured (HTTP_TILE_URL is empty): vehicles are shown on a blank map.');
    }
  }

  function showMapNote(text) {
    const note = $('map-note');
    setText(note, text);
    note.hidden = false;
  }

  // ---- polling ----

  function setLive(live, err) {
    document.body.dataset.live = live ? 'true' : 'false';
    $('offline').hidden = live;
    if (live) {
      setText($('updated'), 'updated ' + fmtTime(new Date()));
    } else {
      setText($('offline-error'), err && err.message ? err.message : String(err));
    }
  }

  async function poll() {
    try {
      const [status, vehicles] = await Promise.all([getJSON('api/status'), getJSON('api/vehicles')]);
      renderStatus(status);
      const list = Array.isArray(vehicles) ? vehicles : [];
      renderTable(list);
      renderMarkers(list);
      document.title = 'exlive2mqtt – ' + list.length + ' vehicle' + (list.length === 1 ? '' : 's');
      setLive(true);
    } catch (err) {
      setLive(false, err);
    }
    // Scheduled after the answer, so a slow bridge is never asked twice
    // at once.
    setTimeout(poll, POLL_MS);
  }

  async function start() {
    let cfg = {};
    try {
      cfg = await getJSON('api/config');
    } catch (err) {
      // Without the config the map has no tiles, which it handles anyway.
    }
    initMap(cfg);
    poll();
  }

  start();
})();
