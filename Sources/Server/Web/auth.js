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
      if (response.ok && (body.auth === "off" || body.role === role)) return body;
      problem = response.ok ? `This token is for a ${body.role}; this page needs a ${role} token.` : (body.reason || body.error);
    } catch (error) {
      // Relay unreachable: let the connection attempt fail and back off as usual.
      return null;
    }
    sessionStorage.removeItem(KEY);
    sessionStorage.setItem(KEY, await askForToken(role, problem));
  }
}

function askForToken(role, problem) {
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
    why.textContent = problem && problem !== "a token is required" ? `Not accepted: ${problem}` : "";
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
    if (connection) {
      connection.dataset.state = "reconnecting";
      connection.textContent = "token needed";
    }
    const empty = document.getElementById("empty");
    const emptyWasHidden = empty ? empty.hidden : true;
    if (empty) empty.hidden = true;
    form.addEventListener("submit", () => {
      if (empty) empty.hidden = emptyWasHidden;
    });
    document.querySelector("main").prepend(form);
    input.focus();
  });
}
