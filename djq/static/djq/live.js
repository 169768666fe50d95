// Live list and job pages: every few seconds the page fetches itself (the same URL, the same
// server-rendered HTML) and swaps in the parts named by data-djq-live (CSS selectors). Paused by
// the button, while the tab is hidden, while rows are ticked for an action, and (a job's page)
// once the job has finished.
(function () {
    "use strict";
    function start() {
        var box = document.querySelector("[data-djq-live]");
        if (!box) { return; }
        var parts = box.dataset.djqLive.split(",");
        var every = Math.max(parseInt(box.dataset.refresh, 10) || 3, 1) * 1000;
        var button = document.getElementById("djq-live-toggle");
        var text = document.getElementById("djq-live-text");
        var dot = document.getElementById("djq-live-dot");
        var paused = false, busy = false;

        function finished() { return !!document.querySelector("[data-djq-finished]"); }
        function ticked() { return !!document.querySelector("input.action-select:checked"); }
        function show(label, stopped) {
            if (text) { text.textContent = label; }
            if (dot) { dot.classList.toggle("paused", stopped); }
        }
        function refresh() {
            if (paused || busy || document.hidden || ticked() || finished()) { return; }
            busy = true;
            fetch(location.href, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
                .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
                .then(function (html) {
                    var fresh = new DOMParser().parseFromString(html, "text/html");
                    parts.forEach(function (sel) {
                        var old = document.querySelector(sel), now = fresh.querySelector(sel);
                        if (old && now) { old.replaceWith(now); }
                    });
                    box.dataset.refreshed = Date.now();
                    if (finished()) { show("Finished: no more refreshes", true); }
                })
                .catch(function (err) { show("Refresh failed (" + err.message + "); retrying", false); })
                .finally(function () { busy = false; });
        }
        if (button) {
            button.addEventListener("click", function () {
                paused = !paused;
                button.textContent = paused ? "Resume" : "Pause";
                show(paused ? "Paused" : "Live: refreshes every " + every / 1000 + " s", paused);
                if (!paused) { refresh(); }
            });
        }
        if (finished()) { show("Finished: no more refreshes", true); }
        setInterval(refresh, every);
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();
