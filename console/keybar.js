// The key form: a key pasted once, kept in sessionStorage for this tab only (api.keys), shown
// afterwards only by its first characters (as the API shows a key's `prefix`).

import { keys, onKeysChanged } from "/console/api.js";
import { h, fill } from "/console/ui.js";

/** which: "user" | "admin". Returns an element that redraws itself when the key changes. */
export function keyBar(which, { id, label, hint }) {
  const root = h("div", { class: "keybar", id });
  const draw = () => {
    const key = keys[which];
    if (key) {
      const forget = h("button", { type: "button", class: "small", text: "Forget key", dataset: { action: "forget-key" } });
      forget.addEventListener("click", () => {
        keys[which] = "";
      });
      fill(
        root,
        h(
          "p",
          { class: "key-saved" },
          h("span", { class: "key-dot", "aria-hidden": "true" }),
          `${label}: `,
          h("code", { class: "key-prefix", text: `${key.slice(0, 10)}…` }),
          h("small", { class: "hint", text: " kept in this tab only (sessionStorage)" }),
        ),
        forget,
      );
      return;
    }
    const input = h("input", {
      type: "password",
      id: `${id}-input`,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: which === "admin" ? "sk-admin-…" : "sk-sy-…",
      required: true,
    });
    const form = h(
      "form",
      { class: "key-form", "aria-label": label },
      h("label", { for: input.id, text: label }),
      h("div", { class: "inline" }, input, h("button", { type: "submit", class: "primary", text: "Use key" })),
      hint ? h("small", { class: "hint", text: hint }) : null,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = input.value.trim();
      input.value = "";
      if (value) keys[which] = value;
    });
    fill(root, form);
  };
  draw();
  onKeysChanged(draw);
  return root;
}
