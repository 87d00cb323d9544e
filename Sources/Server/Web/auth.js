// Access tokens for a relay with auth on: asked for once, kept for this tab
// only (sessionStorage), sent as a WebSocket subprotocol (browsers cannot
// set headers on a WebSocket) and as a Bearer header on API requests.
const KEY = "framepipe.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

// WebSocket protocols carrying the token, or none when there is no token.
export function protocols() {
  const t = token();
  return t ? ["framepipe", t] : [];
}

export function apiFetch(path) {
  const t = token();
  return fetch(path, { cache: "no-store", headers: t ? { Authorization: `Bearer ${t}` } : {} });
}

// Resolves with the session (`{auth: "off"}` or the token's role and
// streams) once the relay accepts this tab's token for `role`, asking the
// person at the screen for one as often as needed.
export async function ensureSession(role) {
  for (;;) {
    let problem;
    try {
      const response = await apiFetch("/api/session");
      const body = await response.json();
      if (response.ok && (body.auth === "off" || (body.roles || []).includes(role))) return body;
      problem = response.ok ? `This token is for a ${(body.roles || []).join(" and ")}; this page needs a ${role} token.` : (body.reason || body.error);
    } catch (error) {
      // Relay unreachable: let the connection attempt fail and back off as usual.
      return null;
    }
    sessionStorage.removeItem(KEY);
    sessionStorage.setItem(KEY, await askOnce(role, problem ? `Not accepted: ${problem}` : "", false));
  }
}

// Handles what the relay says about this tab's token on an open socket:
// `token_expiring` asks the person for a fresh token while the pictures keep
// flowing and hands it to the relay over the socket (`refresh`), so the
// socket never closes; a refused refresh asks again with the reason. When
// the old token runs out first the socket closes (4001), and the next
// connection attempt asks through `ensureSession` — the same prompt.
// Returns true when the message was about the token.
export function handleTokenMessage(message, role, send) {
  if (message.type === "token_expiring") {
    askOnce(role, `This tab's token expires in ${message.seconds_left} s. Paste a fresh one to keep watching without a gap.`, true)
      .then((fresh) => {
        sessionStorage.setItem(KEY, fresh);
        send(JSON.stringify({ type: "refresh", token: fresh }));
      });
    return true;
  }
  if (message.type === "token_refreshed") return true;
  if (message.type === "error" && typeof message.reason === "string" && message.reason.startsWith("refresh refused")) {
    askOnce(role, message.reason, true).then((fresh) => {
      sessionStorage.setItem(KEY, fresh);
      send(JSON.stringify({ type: "refresh", token: fresh }));
    });
    return true;
  }
  return false;
}

// One prompt at a time: a warning on an open socket and a reconnect that
// needs a token share it.
let pending = null;
function askOnce(role, note, live) {
  if (!pending) pending = askForToken(role, note, live).finally(() => { pending = null; });
  return pending;
}

function askForToken(role, note, live) {
  return new Promise((resolve) => {
    const form = document.createElement("form");
    form.className = "token-form";
    form.id = "token-form";
    const heading = document.createElement("h2");
    heading.textContent = "Access token needed";
    const text = document.createElement("p");
    text.textContent = `This relay only lets in holders of a ${role} token. Paste the token an operator made with "framepipe token --role ${role}". It is kept for this tab only.`;
    const why = document.createElement("p");
    why.className = "token-problem";
    why.textContent = note && note !== "Not accepted: a token is required" ? note : "";
    const input = document.createElement("input");
    input.type = "password";
    input.id = "token-input";
    input.autocomplete = "off";
    input.required = true;
    input.placeholder = "eyJ…";
    const button = document.createElement("button");
    button.type = "submit";
    button.id = "token-submit";
    button.textContent = "Use token";
    form.append(heading, text, why, input, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      form.remove();
      resolve(input.value.trim());
    });
    // Until there is a token the page knows nothing: say so, rather than
    // "connecting" or an empty grid that would read as "no live streams".
    const connection = document.getElementById("connection");
    if (connection && !live) {
      connection.dataset.state = "reconnecting";
      connection.textContent = "token needed";
    }
    const empty = document.getElementById("empty");
    const emptyWasHidden = empty ? empty.hidden : true;
    if (empty && !live) empty.hidden = true;
    form.addEventListener("submit", () => {
      if (empty) empty.hidden = emptyWasHidden;
    });
    document.querySelector("main").prepend(form);
    input.focus();
  });
}
