// The hosted QuickBooks callback (see web/README.md). Intuit sends the browser here with
// code, state and realmId (or error) in the address; this script checks them and moves the
// browser on to the `sidequest reauth-qb` window on this computer:
//   http://127.0.0.1:<port>/callback?<the same parameters>
// where <port> is the number after the last "." of state (reauth-qb sends "<nonce>.<port>").
// It stores nothing, sends nothing anywhere else and logs nothing. When the browser cannot
// be moved on, the page shows its own address with a Copy button: `reauth-qb` accepts the
// address pasted into the terminal.
"use strict";

(function () {
  var FORWARDED = ["code", "state", "realmId", "error", "error_description"];
  // reauth-qb's state: a URL-safe random nonce, ".", the listener's port.
  var STATE_SHAPE = /^[A-Za-z0-9_-]{16,256}\.([0-9]{1,5})$/;
  var PROBE_WAIT_MS = 3000; // a probe that neither answers nor fails: forward anyway
  // Still on this page this long after forwarding: offer the copy box. The listener holds the
  // browser's request while reauth-qb finishes (usually a second or two), so not too early.
  var STILL_HERE_MS = 20000;

  var params = new URLSearchParams(window.location.search);
  var SECTIONS = ["forwarding", "fallback", "denied", "failed"];

  function el(id) {
    return document.getElementById(id);
  }

  function show(id) {
    SECTIONS.forEach(function (name) {
      el(name).hidden = name !== id;
    });
  }

  function value(key) {
    var v = params.get(key);
    return v === null ? "" : v;
  }

  // The port, or null when state does not have reauth-qb's shape.
  function portOf(state) {
    var match = STATE_SHAPE.exec(state);
    if (!match || !/^[1-9][0-9]*$/.test(match[1])) {
      return null;
    }
    var port = Number(match[1]);
    return port >= 1024 && port <= 65535 ? port : null;
  }

  function listenerUrl(port, path) {
    return "http://127.0.0.1:" + port + path;
  }

  function forwardUrl(port) {
    var query = new URLSearchParams();
    FORWARDED.forEach(function (key) {
      if (params.has(key)) {
        query.set(key, params.get(key));
      }
    });
    return listenerUrl(port, "/callback?" + query.toString());
  }

  function fallback(why) {
    el("fallback-why").textContent = why;
    el("address").value = window.location.href;
    show("fallback");
  }

  function copyAddress() {
    var box = el("address");
    var status = el("copy-status");
    function copied() {
      status.textContent = "Copied. Now paste it into the terminal window and press Enter.";
    }
    function byHand() {
      box.focus();
      box.select();
      try {
        if (document.execCommand("copy")) {
          copied();
          return;
        }
      } catch (ignored) {
        // fall through to the instruction below
      }
      status.textContent = "Select the whole address above and copy it (Ctrl+C, or Cmd+C on a Mac).";
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(box.value).then(copied, byHand);
    } else {
      byHand();
    }
  }

  function isLoopbackHost(host) {
    return host === "localhost" || /\.localhost$/.test(host) || /^127\./.test(host) || host === "[::1]";
  }

  // Whether asking the listener "are you there?" can happen without a permission prompt.
  // A page on a public site that fetches from 127.0.0.1 makes Chrome (142+) ask the user
  // about "devices on your local network"; a top-level navigation never does. So the probe
  // runs only where it is silent: this page itself on a loopback host, or the permission
  // already granted. Elsewhere the browser is moved on directly.
  function probeIsSilent() {
    if (isLoopbackHost(window.location.hostname)) {
      return Promise.resolve(true);
    }
    if (!navigator.permissions || !navigator.permissions.query) {
      return Promise.resolve(false);
    }
    function granted(name) {
      return navigator.permissions.query({ name: name }).then(function (status) {
        return status.state === "granted";
      });
    }
    return granted("loopback-network")
      .catch(function () {
        return granted("local-network-access");
      })
      .catch(function () {
        return false;
      });
  }

  // "up", "down" (refused, blocked) or "unknown" (no answer in time). The request goes to
  // this computer only, carries no parameter, and the listener answers it without a trace.
  function probe(port) {
    return new Promise(function (resolve) {
      var settled = false;
      function settle(result) {
        if (!settled) {
          settled = true;
          resolve(result);
        }
      }
      window.setTimeout(function () {
        settle("unknown");
      }, PROBE_WAIT_MS);
      window
        .fetch(listenerUrl(port, "/favicon.ico"), {
          mode: "no-cors",
          cache: "no-store",
          credentials: "omit",
          referrerPolicy: "no-referrer",
        })
        .then(
          function () {
            settle("up");
          },
          function () {
            settle("down");
          }
        );
    });
  }

  function forward(port) {
    window.setTimeout(function () {
      // Still showing: the browser did not leave (blocked, or the window does not answer).
      fallback(
        "The SideQuest window on this computer has not answered yet. If the terminal window still says " +
          "it is waiting for the sign-in, pass it on by hand."
      );
    }, STILL_HERE_MS);
    window.location.replace(forwardUrl(port));
  }

  function start() {
    el("copy").addEventListener("click", copyAddress);
    var error = value("error");
    var code = value("code");
    var port = portOf(value("state"));

    if (error) {
      if (error === "access_denied") {
        show("denied");
      } else {
        el("failed-error").textContent = error;
        show("failed");
      }
      if (port === null) {
        return;
      }
      // Tell the waiting window too, so it stops waiting and says the same.
      el("denied-terminal").hidden = false;
      probeIsSilent()
        .then(function (silent) {
          return silent ? probe(port) : "unknown";
        })
        .then(function (result) {
          if (result !== "down") {
            window.location.replace(forwardUrl(port));
          }
        });
      return;
    }
    if (!code || !value("realmId")) {
      fallback(
        "This address does not hold a complete QuickBooks sign-in reply (a sign-in code and a company)."
      );
      return;
    }
    if (port === null) {
      fallback("This address does not say which SideQuest window on this computer is waiting for it.");
      return;
    }
    show("forwarding");
    probeIsSilent()
      .then(function (silent) {
        return silent ? probe(port) : "unknown";
      })
      .then(function (result) {
        if (result === "down") {
          fallback(
            "The SideQuest window that started this sign-in does not answer on this computer: it may " +
              "have been closed, it may be running on another computer, or the browser blocked the connection."
          );
        } else {
          forward(port);
        }
      });
  }

  start();
})();
