// Runs before first paint: the saved theme (or the system's) on <html data-theme>.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("flowtide.theme"); } catch (e) { /* storage disabled */ }
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved || (dark ? "dark" : "light");
})();
