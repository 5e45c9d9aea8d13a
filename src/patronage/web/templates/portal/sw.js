/* Patronage member portal service worker: an offline shell only. Generated per workspace. */
"use strict";
const CACHE = {{ cache|tojson }};
const SHELL = {{ shell|tojson }};
const OFFLINE = {{ offline|tojson }};

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("patronage-portal-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") { return; }                 // writes always go to the network
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname.startsWith("/api/")) { return; }        // API answers: network only, never stored
  if (request.mode === "navigate") {                        // pages: network only; offline page on failure
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE)));
    return;
  }
  if (SHELL.includes(url.pathname + url.search)) {          // the shell's own files: cache first
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
  // Everything else is left to the browser and never put in the cache.
});
