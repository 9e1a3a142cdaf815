// gatehouse's passkeys: the browser's half of a WebAuthn ceremony. Served from
// our own origin (the CSP allows no inline script). Elements marked
// `data-passkey` stay hidden until this script finds WebAuthn in the browser; with
// JavaScript off they never show, and the pages offer what works without it.
//
// Each ceremony is two requests: `POST <url>/begin` answers `{ceremony, options}`
// (the options as JSON, binary fields in base64url), the browser asks the
// authenticator, and `POST <url>` sends `{ceremony, credential, ...}` back; the
// answer is `{location}` to go to, or `{error}` to show.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function decode(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function encode(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // The page's CSRF token, from the headers it gives htmx.
  function csrfToken() {
    try {
      var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
      return headers["x-csrf-token"] || "";
    } catch (e) {
      return "";
    }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRF-Token": csrfToken()
      },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () {
        return {};
      }).then(function (data) {
        if (!response.ok) {
          throw new Error(data.error || "The server answered " + response.status + ". Reload the page and try again.");
        }
        return data;
      });
    });
  }

  function creationOptions(publicKey) {
    publicKey.challenge = decode(publicKey.challenge);
    publicKey.user.id = decode(publicKey.user.id);
    (publicKey.excludeCredentials || []).forEach(function (c) {
      c.id = decode(c.id);
    });
    return publicKey;
  }

  function requestOptions(publicKey) {
    publicKey.challenge = decode(publicKey.challenge);
    (publicKey.allowCredentials || []).forEach(function (c) {
      c.id = decode(c.id);
    });
    return publicKey;
  }

  // The credential as the server reads it, its `response` already encoded.
  function credentialJson(credential, response) {
    return {
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults(),
      response: response
    };
  }

  function registration(credential) {
    var response = credential.response;
    return credentialJson(credential, {
      attestationObject: encode(response.attestationObject),
      clientDataJSON: encode(response.clientDataJSON),
      transports: response.getTransports ? response.getTransports() : undefined
    });
  }

  function assertion(credential) {
    var response = credential.response;
    return credentialJson(credential, {
      authenticatorData: encode(response.authenticatorData),
      clientDataJSON: encode(response.clientDataJSON),
      signature: encode(response.signature),
      userHandle: response.userHandle ? encode(response.userHandle) : null
    });
  }

  function showError(root, message) {
    var alert = root.querySelector("[data-passkey-error]");
    if (alert) {
      alert.textContent = message;
      alert.hidden = !message;
    }
  }

  // Runs one ceremony for `root` (a form or a section marked data-passkey).
  function run(root, extra) {
    var url = root.getAttribute("data-passkey-url");
    var kind = root.getAttribute("data-passkey");
    var buttons = root.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    showError(root, "");
    return post(url + "/begin", {}).then(function (begun) {
      if (kind === "register") {
        return navigator.credentials.create({ publicKey: creationOptions(begun.options.publicKey) })
          .then(function (credential) {
            return { ceremony: begun.ceremony, credential: registration(credential) };
          });
      }
      return navigator.credentials.get({ publicKey: requestOptions(begun.options.publicKey) })
        .then(function (credential) {
          return { ceremony: begun.ceremony, credential: assertion(credential) };
        });
    }).then(function (body) {
      Object.keys(extra).forEach(function (k) { body[k] = extra[k]; });
      return post(url, body);
    }).then(function (done) {
      window.location.assign(done.location);
    }).catch(function (error) {
      var message = error && error.name === "NotAllowedError"
        ? "The passkey was not used (cancelled, or it took too long)."
        : (error && error.message) || String(error);
      showError(root, message);
    }).then(function () {
      buttons.forEach(function (b) { b.disabled = false; });
    });
  }

  // The fields that go along: the root's own, and those of the form named by
  // `data-passkey-also` (the login form's "Remember me").
  function fieldValues(root) {
    var values = {};
    var also = document.getElementById(root.getAttribute("data-passkey-also") || "");
    [root, also].forEach(function (scope) {
      if (!scope) {
        return;
      }
      scope.querySelectorAll("input[data-passkey-field]").forEach(function (input) {
        values[input.name] = input.type === "checkbox" ? input.checked : input.value;
      });
    });
    return values;
  }

  document.addEventListener("submit", function (event) {
    var root = event.target.closest("[data-passkey]");
    if (root) {
      event.preventDefault();
      run(root, fieldValues(root));
    }
  });

  function reveal() {
    document.querySelectorAll("[data-passkey]").forEach(function (el) {
      el.hidden = false;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reveal);
  } else {
    reveal();
  }
})();
