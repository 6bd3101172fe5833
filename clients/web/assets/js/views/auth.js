// First-run setup, sign-in and registration (contract 3.2-3.4).

import { h, uniqueId } from "../dom.js";

function field(label, input, hint) {
  const id = uniqueId("field");
  input.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
  );
}

function accountFields() {
  return [
    field(
      "Username",
      h("input", { name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 32,
        pattern: "[A-Za-z0-9_.\\-]+" }),
      "3–32 letters, digits, dots, dashes or underscores.",
    ),
    field("Email", h("input", { name: "email", type: "email", autocomplete: "email", required: true })),
    field("Display name (optional)", h("input", { name: "display_name", autocomplete: "name", maxlength: 64 })),
    field(
      "Password",
      h("input", { name: "password", type: "password", autocomplete: "new-password", required: true,
        minlength: 8 }),
      "At least 8 characters.",
    ),
  ];
}

function values(form) {
  const data = Object.fromEntries(new FormData(form).entries());
  if (!data.display_name?.trim()) delete data.display_name;
  return data;
}

/**
 * mode: "setup" | "login" | "register". actions: {submit(mode, data) -> Promise, switchTo(mode)}.
 * notice: an optional line above the form (e.g. about a pending invite).
 */
export function renderAuth(mode, actions, notice) {
  const error = h("p", { class: "form-error", role: "alert" });
  const titles = {
    setup: ["Set up Threadline", "Create the first account. It becomes the administrator."],
    login: ["Sign in", "Welcome back to Threadline."],
    register: ["Create an account", "Join the conversations on this Threadline."],
  };
  const [title, lead] = titles[mode];
  const buttonText = { setup: "Create administrator", login: "Sign in", register: "Create account" }[mode];
  const fields =
    mode === "login"
      ? [
          field("Email or username", h("input", { name: "email", autocomplete: "username", required: true })),
          field(
            "Password",
            h("input", { name: "password", type: "password", autocomplete: "current-password", required: true }),
          ),
        ]
      : accountFields();
  const submit = h("button", { type: "submit", class: "primary" }, buttonText);
  const form = h(
    "form",
    {
      class: "auth-form",
      "aria-labelledby": "auth-title",
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        submit.disabled = true;
        try {
          await actions.submit(mode, values(form));
        } catch (problem) {
          error.textContent = problem.friendly || String(problem);
          submit.disabled = false;
        }
      },
    },
    fields,
    error,
    submit,
  );
  const switcher =
    mode === "login"
      ? h("p", { class: "switch" }, "New here? ",
          h("button", { type: "button", class: "link", onclick: () => actions.switchTo("register") },
            "Create an account"))
      : mode === "register"
        ? h("p", { class: "switch" }, "Already have an account? ",
            h("button", { type: "button", class: "link", onclick: () => actions.switchTo("login") }, "Sign in"))
        : null;
  return h(
    "section",
    { class: "auth-card" },
    h("h1", { id: "auth-title" }, title),
    h("p", { class: "lead" }, lead),
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    form,
    switcher,
  );
}
