// Status page of exlive2mqtt: polls the JSON API and updates the link
// states, the counters, the vehicle table, the latest events and the map
// (vehicles and geofences) in place.
//
// Every string from the API is put into the page with textContent or as an
// attribute value, never as HTML: vehicle codes are free text from the
// platform and may contain anything.
(function () {
  'use strict';

  const POLL_MS = 2000;
  const GOOD_STATES = new Set(['logged_in', 'connected']);
  const WARN_STATES = new Set(['connecting']);

  // The table shows one page of this many rows: a hundred thousand rows
  // would take the browser seconds to lay out, and nobody reads them.
  const PAGE_SIZE = 50;
  // From this many vehicles on, the map clusters as markercluster does by
  // default; below, only markers that would overlap.
  const BIG_FLEET = 1000;
  // The geofences are asked for again every this many polls (30 s), to
  // show a reload (SIGHUP); unchanged, they cost a bodyless 304.
  const FENCE_POLLS = 15;

  let map = null;
  let cluster = null; // L.MarkerClusterGroup holding every marker
  let clusterBusy = false; // a chunked addLayers is under way
  let markersStale = false; // the list changed while it was
  let renderStarted = 0; // when the markers last began to be brought up to date
  const markers = new Map(); // vehicle id -> L.Marker
  const rows = new Map(); // vehicle id -> <tr> of the page shown
  let fitted = false;

  let vehicles = []; // the last list from the API, in its order
  const etags = new Map(); // API path -> ETag of the body last taken in
  let polls = 0;
  let fenceLayer = null; // L.GeoJSON of the geofences
  const table = { filter: '', page: 0, list: null }; // list: vehicles matching the filter

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

  // fetchChanged returns the body of path, or null when it has not
  // changed. It revalidates with the ETag itself: the browser's own cache
  // would hand an unchanged body back as a 200, to be parsed again (16 MB
  // of vehicles with a hundred thousand of them).
  async function fetchChanged(path) {
    const headers = { Accept: 'application/json' };
    if (etags.has(path)) headers['If-None-Match'] = etags.get(path);
    const resp = await fetch(path, { cache: 'no-store', headers });
    // 503: the bridge serves as many lists at once as it may (many pages
    // open); the one shown stays, and the next poll asks again.
    if (resp.status === 304 || resp.status === 503) return null;
    if (!resp.ok) throw new Error(path + ': HTTP ' + resp.status);
    const body = await resp.json();
    etags.set(path, resp.headers.get('ETag'));
    return body;
  }

  async function fetchVehicles() {
    const list = await fetchChanged('api/vehicles');
    return list === null ? null : Array.isArray(list) ? list : [];
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
    const hint = box.querySelector('.hint');
    if (hint) {
      setText(hint, link.hint || '');
      hint.hidden = !link.hint;
    }
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

  // fmtOnline tells a vehicle's availability: online, or offline with
  // how long ago it last reported; a dash when the bridge does not track
  // it (VEHICLE_OFFLINE_AFTER=0) or has not heard from it.
  function fmtOnline(v) {
    if (v.online === true) return 'online';
    if (v.online !== false) return '–';
    const seen = parseTime(v.last_seen);
    return seen ? 'offline · ' + fmtAge(seen) : 'offline';
  }

  const fenceNames = (v) => (Array.isArray(v.geofences) ? v.geofences.map(String).join(', ') : '');

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
    if (v.online !== undefined) add('Online', fmtOnline(v));
    if (fenceNames(v)) add('Geofences', fenceNames(v));
    if (v.topic) add('Topic', v.topic);
    box.append(dl);
    return box;
  }

  function renderRow(v) {
    let tr = rows.get(v.id);
    if (!tr) {
      tr = el('tr');
      tr.dataset.vehicleId = v.id;
      for (const cls of ['id', 'code', 'time', 'num speed', 'num heading', 'valid', 'alarm', 'online']) {
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
    // yes or no, as Valid and Alarm say it; how long ago an offline
    // vehicle was last seen is the cell's tooltip and the popup's.
    setText(c[7], v.online === true ? 'yes' : v.online === false ? 'no' : '–');
    const seen = v.online === false ? fmtOnline(v) : '';
    if (c[7].title !== seen) c[7].title = seen;
    tr.classList.toggle('alarm', v.alarm === true);
    tr.classList.toggle('invalid', v.valid === false);
    tr.classList.toggle('offline', v.online === false);
    return tr;
  }

  // matching returns the vehicles that the filter lets through, computed
  // once per list and filter.
  function matching() {
    if (table.list) return table.list;
    const f = table.filter.trim().toLowerCase();
    table.list = !f ? vehicles : vehicles.filter((v) =>
      String(v.id).toLowerCase().includes(f) || (v.code && String(v.code).toLowerCase().includes(f)));
    return table.list;
  }

  function renderTable() {
    const list = matching();
    const pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
    table.page = Math.min(Math.max(table.page, 0), pages - 1);
    const start = table.page * PAGE_SIZE;
    const page = list.slice(start, start + PAGE_SIZE);

    const tbody = $('vehicle-rows');
    const seen = new Set();
    // Appending an existing row moves it, so this also applies the
    // server's order without rebuilding the table.
    for (const v of page) {
      seen.add(v.id);
      tbody.append(renderRow(v));
    }
    for (const [id, tr] of rows) {
      if (!seen.has(id)) {
        tr.remove();
        rows.delete(id);
      }
    }
    setText($('vehicle-count'), '(' + fmtCount(vehicles.length) + ')');
    const filtering = table.filter.trim() !== '';
    let where = '';
    if (list.length > 0) {
      where = (start + 1).toLocaleString('en-US') + '–' + (start + page.length).toLocaleString('en-US') +
        ' of ' + fmtCount(list.length) + (filtering ? ' matching' : '');
    } else if (filtering && vehicles.length > 0) {
      where = 'no vehicle matches';
    }
    setText($('vehicle-page'), where);
    $('page-first').disabled = $('page-prev').disabled = table.page === 0;
    $('page-last').disabled = $('page-next').disabled = table.page >= pages - 1;
    $('paging').hidden = vehicles.length <= PAGE_SIZE && !filtering;
    $('no-vehicles').hidden = vehicles.length > 0;
  }

  function initTable() {
    const go = (page) => () => {
      table.page = page();
      renderTable();
    };
    $('page-first').addEventListener('click', go(() => 0));
    $('page-prev').addEventListener('click', go(() => table.page - 1));
    $('page-next').addEventListener('click', go(() => table.page + 1));
    $('page-last').addEventListener('click', go(() => Infinity));
    let timer = 0;
    $('vehicle-filter').addEventListener('input', (e) => {
      // Filtering a big fleet takes a moment: wait for a pause in typing.
      clearTimeout(timer);
      timer = setTimeout(() => {
        table.filter = e.target.value;
        table.list = null;
        table.page = 0;
        renderTable();
      }, vehicles.length > 10000 ? 250 : 50);
    });
  }

  let alarmIcon = null;
  let offlineIcon = null;

  // An alarm shows whatever else is true; an offline vehicle is grey, at
  // the place it last reported.
  function styleMarker(m, v) {
    const icon = v.alarm === true ? alarmIcon : v.online === false ? offlineIcon : m.defaultIcon;
    if (m.options.icon !== icon) m.setIcon(icon);
    const opacity = v.valid === false ? 0.55 : 1;
    if (m.options.opacity !== opacity) m.setOpacity(opacity);
    const title = label(v);
    if (m.options.title !== title) {
      m.options.title = m.options.alt = title;
      const e = m.getElement();
      if (e) e.title = e.alt = title;
    }
  }

  // newCluster makes the cluster group once the fleet's size is known.
  // Markers close together on the screen are drawn as one circle with their
  // count, so that the map stays quick with a hundred thousand vehicles: a
  // small fleet only where markers would overlap, a big one within
  // markercluster's usual 80 px, which keeps the circles, and the work of
  // drawing them, few. Chunked loading keeps the page answering while it
  // adds the markers.
  function newCluster(n) {
    const group = L.markerClusterGroup({
      chunkedLoading: true,
      chunkProgress: (done, total) => {
        if (done === total) clusterLoaded();
      },
      // Short chunks: the page answers a click or a key between them.
      chunkInterval: 40,
      showCoverageOnHover: false,
      maxClusterRadius: n > BIG_FLEET ? 80 : 30,
      // markercluster keeps clusters for every zoom level; the levels where
      // nobody looks at a fleet as clusters cost time for nothing.
      disableClusteringAtZoom: 18,
    });
    group.big = n > BIG_FLEET;
    group.on('click', (e) => openPopup(e.layer));
    return group.addTo(map);
  }

  // renderMarkers brings the cluster group in line with the list: new
  // markers added, gone ones removed, moved ones taken out and put back in
  // batches, which markercluster does far faster than one at a time. With
  // a hundred thousand vehicles this takes the browser seconds, so it works
  // in slices of about 40 ms and lets the page answer in between; a list
  // that comes meanwhile is taken up once this one is done.
  function renderMarkers() {
    if (!map) return;
    if (clusterBusy) {
      markersStale = true;
      return;
    }
    clusterBusy = true;
    renderStarted = performance.now();
    const list = vehicles;
    if (!cluster || (!cluster.big && list.length > BIG_FLEET)) {
      // A fleet that grew big (its vehicles come in as the platform lists
      // them) gets a group made for it, once.
      if (cluster) map.removeLayer(cluster);
      markers.clear();
      cluster = newCluster(list.length);
    }
    if (!fitted) fitMap(list);
    const seen = new Set();
    let add = [];
    const moved = [];
    let i = 0;
    const slice = () => {
      const began = performance.now();
      for (; i < list.length; i++) {
        if ((i & 255) === 0 && performance.now() - began > 40) {
          setTimeout(slice, 0);
          return;
        }
        const v = list[i];
        if (!isNum(v.lat) || !isNum(v.lng)) continue;
        seen.add(v.id);
        let m = markers.get(v.id);
        if (!m) {
          m = L.marker([v.lat, v.lng], { title: label(v), alt: label(v) });
          m.defaultIcon = m.options.icon;
          markers.set(v.id, m);
          add.push(m);
        } else {
          const at = m.getLatLng();
          if (at.lat !== v.lat || at.lng !== v.lng) moved.push(m);
        }
        m.vehicle = v;
        styleMarker(m, v);
      }
      const gone = [];
      for (const [id, m] of markers) {
        if (!seen.has(id)) {
          gone.push(m);
          markers.delete(id);
        }
      }
      if (moved.length > markers.size / 5) {
        // Most of the fleet moved: starting over is quicker than taking
        // each out of its clusters.
        cluster.clearLayers();
        for (const m of moved) m.setLatLng([m.vehicle.lat, m.vehicle.lng]);
        add = Array.from(markers.values());
      } else {
        if (gone.length || moved.length) cluster.removeLayers(gone.concat(moved));
        for (const m of moved) m.setLatLng([m.vehicle.lat, m.vehicle.lng]);
        add = add.concat(moved); // not push(...moved): a hundred thousand arguments can overflow the stack
      }
      refreshPopup();
      if (add.length) {
        cluster.addLayers(add); // chunked: clusterLoaded ends it
      } else {
        clusterLoaded();
      }
    };
    slice();
  }

  // clusterLoaded is called when the cluster group has taken in a list. A
  // list that came meanwhile waits as long again as this one took: taking
  // in a hundred thousand moved markers keeps the browser busy for seconds,
  // and the page must have time for the person using it.
  function clusterLoaded() {
    clusterBusy = false;
    if (!markersStale) return;
    markersStale = false;
    setTimeout(renderMarkers, performance.now() - renderStarted);
  }

  // fitMap shows every vehicle of the first list; done before the markers
  // go in, so that the zoom change finds no clusters to redraw.
  function fitMap(list) {
    let south = 90, west = 180, north = -90, east = -180;
    for (const v of list) {
      if (!isNum(v.lat) || !isNum(v.lng)) continue;
      south = Math.min(south, v.lat);
      north = Math.max(north, v.lat);
      west = Math.min(west, v.lng);
      east = Math.max(east, v.lng);
    }
    if (south > north) return; // no vehicle has a position yet
    fitted = true;
    map.fitBounds([[south, west], [north, east]], { padding: [40, 40], maxZoom: 14, animate: false });
  }

  function refreshPopup() {
    if (!popup.isOpen()) return;
    const m = markers.get(popup.vehicleId);
    if (m) {
      popup.setLatLng(m.getLatLng()).setContent(popupContent(m.vehicle));
    } else {
      popup.close();
    }
  }

  // One popup for the map, filled when it opens: a popup bound to each of
  // a hundred thousand markers would cost a hundred thousand objects.
  let popup = null;

  function openPopup(m) {
    popup.vehicleId = m.vehicle.id;
    popup.setLatLng(m.getLatLng()).setContent(popupContent(m.vehicle)).openOn(map);
  }

  function focusVehicle(id) {
    const m = markers.get(id);
    if (!cluster || !m || !cluster.hasLayer(m)) return;
    cluster.zoomToShowLayer(m, () => openPopup(m));
  }

  // ---- events ----

  // eventDetail says what the type needs besides the vehicle and the time.
  function eventDetail(e) {
    switch (e.type) {
      case 'overspeed': return fmtSpeed(e.speed) + ' (limit ' + fmtSpeed(e.limit) + ')';
      case 'moving': return fmtSpeed(e.speed);
      case 'stopped': return 'since ' + fmtTime(parseTime(e.since));
      case 'offline': return e.last_seen ? 'last seen ' + fmtTime(parseTime(e.last_seen)) : '';
      case 'geofence_enter': case 'geofence_exit': return String(e.geofence || '');
      default: return '';
    }
  }

  // renderEvents shows the latest events, newest first, as the API gives
  // them; a click on one shows its vehicle.
  function renderEvents(list) {
    const events = Array.isArray(list) ? list.filter((e) => e && typeof e === 'object') : [];
    $('event-rows').replaceChildren(...events.map((e) => {
      const tr = el('tr', 'event ' + String(e.type || '').replace(/[^a-z_]/g, ''));
      // Not data-vehicle-id: that marks the rows of the vehicle table.
      tr.dataset.vehicle = String(e.id);
      const t = parseTime(e.time);
      const when = el('td', 'time');
      when.append(el('span', 'fix', fmtTime(t)));
      tr.append(when, el('td', 'code', label(e)), el('td', 'type', String(e.type || '').replace(/_/g, ' ')), el('td', 'detail', eventDetail(e)));
      tr.addEventListener('click', () => focusVehicle(tr.dataset.vehicle));
      return tr;
    }));
    $('no-events').hidden = events.length > 0;
  }

  // ---- geofences ----

  // renderFences draws the geofences under the vehicles: polygons, and
  // circles for points with a radius. A name is shown as text on hover,
  // never as HTML.
  function renderFences(fc) {
    if (!map) return;
    if (fenceLayer) map.removeLayer(fenceLayer);
    const features = fc && Array.isArray(fc.features) ? fc.features : [];
    fenceLayer = L.geoJSON({ type: 'FeatureCollection', features }, {
      style: () => ({ color: '#7b3fb5', weight: 2, opacity: 0.8, fillOpacity: 0.08, className: 'geofence' }),
      pointToLayer: (f, latlng) => L.circle(latlng, { radius: Math.max(Number(f.properties && f.properties.radius) || 0, 1) }),
      onEachFeature: (f, layer) => {
        const p = f.properties || {};
        const tip = el('span', '', String(p.name || ''));
        if (isNum(p.speed_limit)) tip.append(el('span', 'muted', ' · ' + fmtSpeed(p.speed_limit)));
        layer.bindTooltip(tip, { sticky: true });
      },
    }).addTo(map);
    fenceLayer.bringToBack();
    setText($('fence-count'), features.length ? features.length.toLocaleString('en-US') + ' geofence' + (features.length === 1 ? '' : 's') : '');
  }

  // ---- map ----

  function initMap(cfg) {
    if (typeof L === 'undefined') {
      showMapNote('The map library did not load; the table still updates.');
      return;
    }
    // markercluster needs the map's maxZoom; 19 is what the tiles offer.
    map = L.map('map', { worldCopyJump: true, minZoom: 2, maxZoom: 19 }).setView([30, 110], 3);
    L.control.scale({ imperial: false }).addTo(map);
    alarmIcon = new L.Icon.Default({ className: 'alarm' });
    offlineIcon = new L.Icon.Default({ className: 'offline' });
    if (typeof L.markerClusterGroup !== 'function') {
      showMapNote('The marker cluster library did not load; the table still updates.');
      map = null;
      return;
    }
    popup = L.popup({ offset: [0, -30] });
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
    const began = performance.now();
    try {
      const fences = map && polls++ % FENCE_POLLS === 0 ? fetchChanged('api/geofences') : null;
      const [status, list, events, fc] = await Promise.all([getJSON('api/status'), fetchVehicles(), fetchChanged('api/events'), fences]);
      renderStatus(status);
      if (fc) renderFences(fc);
      if (events) renderEvents(events);
      if (list) {
        vehicles = list;
        table.list = null;
        renderTable();
        renderMarkers();
      }
      document.title = 'exlive2mqtt – ' + fmtCount(vehicles.length) + ' vehicle' + (vehicles.length === 1 ? '' : 's');
      setLive(true);
    } catch (err) {
      setLive(false, err);
    }
    // Scheduled after the answer, so a slow bridge is never asked twice
    // at once; and a list that takes the browser long to take in is asked
    // for less often, so that the page keeps answering.
    setTimeout(poll, Math.max(POLL_MS, 4 * (performance.now() - began)));
  }

  async function start() {
    let cfg = {};
    try {
      cfg = await getJSON('api/config');
    } catch (err) {
      // Without the config the map has no tiles, which it handles anyway.
    }
    initMap(cfg);
    initTable();
    poll();
  }

  start();
})();
