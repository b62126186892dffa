// A tiny client-side router: nginx answers every unknown path with index.html
// (try_files ... /index.html), and this script picks the view from the URL.
"use strict";

const views = {
  "/": () => "Welcome. This is the app's home.",
  "/app/status": () => `Host ${location.host}: the app loaded, so nginx serves it.`,
  "/app/settings": () => "Nothing to configure: this app is a practice target.",
};

function render() {
  const view = views[location.pathname];
  const text = view ? view() : `No view for ${location.pathname}, but the deep link reached the app.`;
  const paragraph = document.createElement("p");
  paragraph.textContent = text;
  document.getElementById("view").replaceChildren(paragraph);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-route]");
  if (!link) return;
  event.preventDefault();
  history.pushState(null, "", link.getAttribute("href"));
  render();
});

window.addEventListener("popstate", render);
render();
