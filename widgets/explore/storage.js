// homl-edge: Model Explorer runs in a sandboxed frame (an opaque origin, no access to the notebook's cookies or
// the Jupyter API), where window.localStorage throws a SecurityError. The app keeps only view settings there:
// give it a store in memory for the life of the frame. Loaded as a classic script before the app's modules.
(function () {
  try {
    window.localStorage.getItem("homl-edge");
    return;  // a real store is usable (the folder served on its own): keep it
  } catch (e) { /* sandboxed: fall through */ }
  var items = new Map();
  var store = {
    getItem: function (k) { k = String(k); return items.has(k) ? items.get(k) : null; },
    setItem: function (k, v) { items.set(String(k), String(v)); },
    removeItem: function (k) { items.delete(String(k)); },
    clear: function () { items.clear(); },
    key: function (i) { return Array.from(items.keys())[i] ?? null; },
    get length() { return items.size; },
  };
  Object.defineProperty(window, "localStorage", { value: store, configurable: true });
})();
