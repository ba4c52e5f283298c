// The page a password-reset link opens. The secret comes in the URL's fragment, which the
// browser never sends to a server, and leaves the address bar at once.

const secret = new URLSearchParams(location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", location.pathname);

const form = document.getElementById("reset-form");
const error = document.getElementById("reset-error");
const done = document.getElementById("reset-done");

const MESSAGES = {
  "auth.reset_token_invalid": "This link has expired or was used already. Ask for a new one.",
  "validation.password": "The password must be 8 to 128 characters.",
  rate_limited: "Too many attempts. Wait a moment and try again.",
};

if (!secret) error.textContent = MESSAGES["auth.reset_token_invalid"];

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const { password, again } = Object.fromEntries(new FormData(form));
  if (password !== again) {
    error.textContent = "The two passwords differ.";
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch("/user/resetPassword", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ resetToken: secret, password }),
    });
    const reply = await response.json();
    if (reply.code === 0) {
      form.querySelectorAll("label, .row").forEach((el) => { el.hidden = true; });
      done.hidden = false;
      return;
    }
    error.textContent = MESSAGES[reply.error] || reply.message || "Something went wrong.";
  } catch {
    error.textContent = "The server could not be reached. Try again.";
  } finally {
    button.disabled = false;
  }
});
