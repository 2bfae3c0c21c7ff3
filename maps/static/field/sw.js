/* Service worker of the patroller's page (scope /field/): caches the app shell on install so
   the page opens with no network. API calls are not cached here: the page keeps its own
   copies in IndexedDB and queues what it sends (see app.js). */
"use strict";
const VERSION = "__VERSION__";
const CACHE = "wangge-field-" + VERSION;
const SHELL = __SHELL__;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys
        .filter((k) => k.startsWith("wangge-field-") && k !== CACHE)
        .map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  // the shell: from the cache (versioned by this file), the network only if it is missing
  event.respondWith(
    caches.open(CACHE).then((cache) => cache.match(url.pathname).then((hit) => hit ||
      fetch(request).then((response) => {
        if (response.ok) cache.put(url.pathname, response.clone());
        return response;
      })))
  );
});
