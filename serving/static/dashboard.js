// The dashboard's only script: refresh the page's parts from its JSON, and send traffic changes.
(function () {
  "use strict";
  var body = document.body;
  var partsUrl = body.getAttribute("data-parts");
  var every = Number(body.getAttribute("data-poll-ms")) || 3000;
  var count = 0;
  var timer = null;

  function showError(text) {
    var el = document.getElementById("refresh-error");
    if (el) { el.textContent = text; el.className = text ? "error" : ""; }
  }

  function refresh() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    fetch(partsUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (res) {
        if (!res.ok) { throw new Error("the service answered " + res.status); }
        return res.json();
      })
      .then(function (doc) {
        Object.keys(doc.parts).forEach(function (id) {
          var el = document.getElementById(id);
          if (el) { el.innerHTML = doc.parts[id]; }
        });
        count += 1;
        var counter = document.getElementById("refreshes");
        if (counter) { counter.textContent = String(count); counter.setAttribute("data-count", String(count)); }
        showError("");
      })
      .catch(function (err) { showError("(last refresh failed: " + err.message + ")"); })
      .then(function () { timer = setTimeout(refresh, every); });
  }
  if (partsUrl) { timer = setTimeout(refresh, every); }

  var form = document.getElementById("traffic-form");
  if (!form) { return; }
  var result = document.getElementById("traffic-result");

  function say(text, ok) { result.textContent = text; result.className = ok ? "ok" : "error"; }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = document.getElementById("admin-token").value.trim();
    if (!token) { say("Read-only: enter the admin token to change traffic.", false); return; }
    var payload = { reason: document.getElementById("reason").value };
    if (event.submitter && event.submitter.value === "apply") {
      payload.action = "apply";
    } else {
      payload.weights = {};
      form.querySelectorAll("input.weight").forEach(function (input) {
        payload.weights[input.getAttribute("data-arm")] = Number(input.value);
      });
    }
    fetch(form.getAttribute("data-endpoint"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
      body: JSON.stringify(payload)
    })
      .then(function (res) { return res.json().then(function (doc) { return { res: res, doc: doc }; }); })
      .then(function (answer) {
        if (!answer.res.ok) {
          say("Refused (" + answer.res.status + "): " + answer.doc.error.message, false);
          return;
        }
        var d = answer.doc;
        say(d.applied ? "Applied: traffic version " + d.traffic_version + "."
                      : "Nothing changed (traffic version " + d.traffic_version + ")"
                        + (d.reason ? ": " + d.reason : "."), true);
        refresh();
      })
      .catch(function (err) { say("The change was not sent: " + err.message, false); });
  });
})();
