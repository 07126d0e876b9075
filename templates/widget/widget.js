/* postdesk contact widget: a floating button that opens a small form and
 * posts it to the postdesk server this script was loaded from.
 *
 *   <script src="https://help.example.com/widget.js" async></script>
 *
 * Optional attributes on the tag: data-label="Need help?" (the button),
 * data-category="support" (preselected category), data-open (the form is
 * open when the page loads). The site's origin must be
 * listed in [http] allowed_origins. Plain JavaScript, no dependencies. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__postdeskWidget) return;
  window.__postdeskWidget = true;
  var base = new URL(script.src, location.href).origin;
  var label = script.getAttribute("data-label") || "Contact us";
  var preset = script.getAttribute("data-category") || "support";

  var css =
    ".pdw-btn{position:fixed;right:20px;bottom:20px;z-index:2147483000;background:#2680c2;color:#fff;border:0;border-radius:24px;padding:12px 20px;font:600 15px system-ui,sans-serif;box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer}" +
    ".pdw-panel{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-width:calc(100vw - 40px);max-height:calc(100vh - 100px);overflow:auto;background:#fff;color:#1f2933;border-radius:10px;box-shadow:0 8px 30px rgba(0,0,0,.3);padding:16px;font:14px/1.4 system-ui,sans-serif;box-sizing:border-box}" +
    ".pdw-panel[hidden]{display:none}" +
    ".pdw-panel h2{margin:0 0 8px;font-size:17px}" +
    ".pdw-panel label{display:block;font-weight:600;margin:8px 0 3px}" +
    ".pdw-panel input,.pdw-panel select,.pdw-panel textarea{width:100%;box-sizing:border-box;font:inherit;padding:6px;border:1px solid #bcccdc;border-radius:5px}" +
    ".pdw-panel textarea{min-height:90px}" +
    ".pdw-panel button{margin-top:10px;background:#2680c2;color:#fff;border:0;border-radius:5px;padding:8px 14px;font:600 14px system-ui,sans-serif;cursor:pointer}" +
    ".pdw-trap{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}" +
    ".pdw-ok{color:#0e7c3a}.pdw-err{color:#c0392b}";
  var style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);

  var btn = document.createElement("button");
  btn.type = "button";
  btn.className = "pdw-btn";
  btn.textContent = label;

  var panel = document.createElement("div");
  panel.className = "pdw-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", label);

  var form = document.createElement("form");
  function field(name, text, el) {
    var l = document.createElement("label");
    l.textContent = text;
    l.htmlFor = "pdw-" + name;
    el.id = "pdw-" + name;
    el.name = name;
    form.appendChild(l);
    form.appendChild(el);
    return el;
  }
  function input(type) { var i = document.createElement("input"); i.type = type; i.required = true; return i; }
  var h = document.createElement("h2");
  h.textContent = label;
  form.appendChild(h);
  field("name", "Your name", input("text"));
  field("email", "Your e-mail address", input("email"));
  var sel = document.createElement("select");
  [["support", "I need help"], ["issue", "Something is broken"], ["service_request", "A service request"],
   ["question", "A question before buying"], ["quote", "A price quote"]].forEach(function (o) {
    var opt = document.createElement("option");
    opt.value = o[0]; opt.textContent = o[1];
    if (o[0] === preset) opt.selected = true;
    sel.appendChild(opt);
  });
  field("category", "What is it about?", sel);
  field("subject", "Subject", input("text"));
  var ta = document.createElement("textarea");
  ta.required = true;
  field("message", "Message", ta);
  var files = document.createElement("input");
  files.type = "file"; files.multiple = true;
  field("attachments", "Files (optional)", files);
  // Bot traps: a field people never see, and the time the form opened.
  var trap = document.createElement("div");
  trap.className = "pdw-trap";
  trap.setAttribute("aria-hidden", "true");
  var hp = document.createElement("input");
  hp.name = "website"; hp.tabIndex = -1; hp.autocomplete = "off";
  trap.appendChild(hp);
  form.appendChild(trap);
  var t = document.createElement("input");
  t.type = "hidden"; t.name = "t";
  form.appendChild(t);
  var page = document.createElement("input");
  page.type = "hidden"; page.name = "page"; page.value = location.href.slice(0, 300);
  form.appendChild(page);
  var send = document.createElement("button");
  send.type = "submit"; send.textContent = "Send";
  form.appendChild(send);
  var result = document.createElement("p");
  result.setAttribute("role", "status");
  form.appendChild(result);
  panel.appendChild(form);

  btn.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) { t.value = String(Math.floor(Date.now() / 1000)); }
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    send.disabled = true;
    result.className = ""; result.textContent = "Sending…";
    fetch(base + "/api/v1/tickets", { method: "POST", body: new FormData(form), headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (x) {
        send.disabled = false;
        if (x.ok) {
          form.reset();
          result.className = "pdw-ok";
          result.textContent = "Thank you! Request " + (x.j.number || "") + " received; a confirmation is on its way by mail.";
        } else {
          result.className = "pdw-err";
          result.textContent = x.j.error || "Not sent; please try again.";
        }
      })
      .catch(function () { send.disabled = false; result.className = "pdw-err"; result.textContent = "Not sent; please try again."; });
  });

  function mount() {
    document.body.appendChild(btn);
    document.body.appendChild(panel);
    if (script.hasAttribute("data-open")) btn.click();
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
