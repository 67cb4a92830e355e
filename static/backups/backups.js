// While a backup is being taken or verified, refresh the table every 2 s. A file, not an
// inline script, so the Content-Security-Policy (script-src 'self') allows it.
(function () {
  const box = document.getElementById("backup-rows");
  if (!box) return;
  setInterval(async function () {
    const response = await fetch(box.dataset.rowsUrl, {credentials: "same-origin"});
    if (response.ok) box.innerHTML = await response.text();
  }, 2000);
})();
