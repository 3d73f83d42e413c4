// Service worker of a homl-edge export: caches the page, the model and TF.js on first visit, then serves
// them cache-first, so the page keeps predicting offline.
const CACHE = 'homl-edge-CACHE_VERSION';
const FILES = FILES_PLACEHOLDER;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('homl-edge-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// the page names files to keep once it knows them (LiteRT.js: the one Wasm build this browser runs)
self.addEventListener('message', (event) => {
  const urls = (event.data && event.data.cache) || [];
  const port = event.ports && event.ports[0];
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(urls))
    .then(() => port && port.postMessage('cached'), (e) => port && port.postMessage(String(e))));
});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET') return;
  event.respondWith(caches.match(event.request, { ignoreSearch: true })
    .then((hit) => hit || fetch(event.request)));
});
