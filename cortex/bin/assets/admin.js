// Progressive enhancement only: every page works without this file.
// Forms marked data-confirm ask before they submit (deleting, revoking).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
// The first invalid field of a form that came back with errors gets the focus.
window.addEventListener("DOMContentLoaded", () => {
  const invalid = document.querySelector(".field.invalid input, .field.invalid select, .field.invalid textarea");
  if (invalid instanceof HTMLElement) invalid.focus();
});
