// Suggestions for the filter bar's sender and receiver: the integration's known values (its
// config's, and those of its newest failures) as <datalist>s on the two inputs. The filters match
// by case-insensitive prefix, so a suggestion need not be typed in full. Works on whatever filter
// bar holds inputs with data-filter="sender" / "receiver"; does nothing when the call fails.

import { api } from "../api.js";
import { h, uid } from "../dom.js";

export function attachSuggestions(container, integration) {
  const lists = {};
  for (const key of ["sender", "receiver"]) {
    const input = container.querySelector(`[data-filter="${key}"]`);
    if (!input) continue;
    const list = h("datalist", { id: uid(`${key}-suggestions`), "data-testid": `${key}-suggestions` });
    input.setAttribute("list", list.id);
    input.after(list);
    lists[key] = list;
  }
  let disposed = false;
  api.facets(integration).then(
    (facets) => {
      if (disposed) return;
      const values = { sender: facets.senders, receiver: facets.receivers };
      for (const [key, list] of Object.entries(lists)) list.replaceChildren(...values[key].map((value) => h("option", { value })));
    },
    () => {}, // suggestions are a convenience: without them the inputs still take any text
  );
  return {
    destroy() {
      disposed = true;
    },
  };
}
