// The dashboard refreshes itself: every few seconds it fetches its body (?partial=1, the same
// server-rendered HTML) and swaps it in. Paused while the tab is hidden or by the button.
(function () {
    "use strict";
    function start() {
        var box = document.getElementById("djq-live");
        if (!box) { return; }
        var every = Math.max(parseInt(box.dataset.refresh, 10) || 5, 1) * 1000;
        var button = document.getElementById("djq-refresh-toggle");
        var dot = document.getElementById("djq-live-dot");
        var text = document.getElementById("djq-live-text");
        var paused = false, busy = false;

        function refresh() {
            if (paused || busy || document.hidden) { return; }
            busy = true;
            fetch(box.dataset.url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
                .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
                .then(function (html) { box.innerHTML = html; box.dataset.refreshed = Date.now(); })
                .catch(function (err) { text.textContent = "Refresh failed (" + err.message + "); retrying"; })
                .finally(function () { busy = false; });
        }
        if (button) {
            button.addEventListener("click", function () {
                paused = !paused;
                button.textContent = paused ? "Resume" : "Pause";
                dot.classList.toggle("paused", paused);
                text.textContent = paused ? "Paused" : "Live: refreshes every " + every / 1000 + " s";
                if (!paused) { refresh(); }
            });
        }
        setInterval(refresh, every);
    }
    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();
